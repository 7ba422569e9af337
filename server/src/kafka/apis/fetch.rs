//! Fetch: whole stored batches from the one holding the fetch offset, long-polled until
//! `min.bytes` arrived or `max.wait.ms` passed.

use std::time::Duration;

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};

use super::*;

/// One partition's part of a fetch, and how many record bytes it carries.
pub(super) fn fetch_partition(
    shared: &Shared,
    version: i16,
    topic: &str,
    p: &fetch_request::FetchPartition,
    max_bytes: usize,
) -> (PartitionData, usize) {
    let data = PartitionData::default().with_partition_index(p.partition);
    let Ok(partition) = u32::try_from(p.partition) else {
        return (data.with_error_code(UNKNOWN_TOPIC_OR_PARTITION), 0);
    };
    let (start, end) = match shared.log.offsets(topic, partition) {
        Ok(o) => o,
        Err(e) => return (data.with_error_code(error_code(&e)), 0),
    };
    let data = data
        .with_high_watermark(end as i64)
        .with_last_stable_offset(end as i64)
        .with_log_start_offset(if version >= 5 { start as i64 } else { -1 })
        .with_aborted_transactions(Some(Vec::new()));
    let offset = p.fetch_offset;
    if offset < start as i64 || offset > end as i64 {
        return (data.with_error_code(OFFSET_OUT_OF_RANGE), 0);
    }
    if offset == end as i64 || max_bytes == 0 {
        return (data.with_records(Some(Bytes::new())), 0);
    }
    match shared.log.read(topic, partition, offset as u64, max_bytes) {
        Ok(r) => {
            let n = r.data.len();
            (data.with_records(Some(r.data.into_bytes())), n)
        }
        Err(e) => (data.with_error_code(error_code(&e)), 0),
    }
}

pub(super) fn fetch(
    request: FetchRequest,
    version: i16,
    shared: &Shared,
    runtime: &tokio::runtime::Runtime,
) -> Result<Reply, String> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 {
        usize::MAX
    } else {
        request.max_bytes as usize
    };
    loop {
        let mut total = 0usize;
        // A partition's error is answered at once, as Kafka does, not after the wait.
        let mut failed = false;
        let mut topics = Vec::new();
        for t in &request.topics {
            let topic_name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    // Past the request's max_bytes a partition still gets its first batch
                    // only if nothing was returned yet (Kafka's rule: progress is possible).
                    let room = if total >= max_bytes {
                        0
                    } else {
                        (p.partition_max_bytes.max(0) as usize).min(max_bytes - total)
                    };
                    let (data, n) = fetch_partition(shared, version, &topic_name, p, room);
                    total += n;
                    failed |= data.error_code != NONE;
                    data
                })
                .collect();
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions),
            );
        }
        let now = tokio::time::Instant::now();
        if failed || total >= min_bytes.max(1) || now >= deadline {
            return reply(
                &FetchResponse::default()
                    .with_responses(topics)
                    .with_session_id(0),
                version,
            );
        }
        // Long poll: wake when any partition gets data past its fetch offset.
        let mut waits = tokio::task::JoinSet::new();
        for t in &request.topics {
            for p in &t.partitions {
                let Ok(partition) = u32::try_from(p.partition) else {
                    continue;
                };
                let offset = p.fetch_offset.max(0) as u64;
                if let Ok(w) = shared
                    .log
                    .wait_for_data(&t.topic.0, partition, offset, deadline)
                {
                    waits.spawn_on(w, runtime.handle());
                }
            }
        }
        if waits.is_empty() {
            runtime.block_on(tokio::time::sleep_until(deadline));
        } else {
            runtime.block_on(async { waits.join_next().await });
        }
    }
}
