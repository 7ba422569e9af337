//! Produce: stored batches appended as they are (validated, offsets assigned in place),
//! acknowledged under the topic's flush policy; acks=0 answers nothing.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};

use super::*;

pub(super) fn produce(
    request: ProduceRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let mut responses = Vec::new();
    for t in &request.topic_data {
        let topic_name = t.name.0.to_string();
        let known = topic(shared, &topic_name, true);
        let mut partitions = Vec::new();
        for p in &t.partition_data {
            let mut response = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_log_append_time_ms(-1);
            let appended = known.as_ref().map_err(error_code).and_then(|_| {
                let mut batches = p.records.as_ref().map(|r| r.to_vec()).unwrap_or_default();
                let partition = u32::try_from(p.index).map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
                let info = shared
                    .log
                    .append(&topic_name, partition, &mut batches)
                    .map_err(|e| error_code(&e))?;
                let (start, _) = shared
                    .log
                    .offsets(&topic_name, partition)
                    .map_err(|e| error_code(&e))?;
                Ok((info.base_offset, start))
            });
            response = match appended {
                Ok((base, start)) => response
                    .with_base_offset(base as i64)
                    .with_log_start_offset(if version >= 5 { start as i64 } else { -1 }),
                Err(code) => response.with_error_code(code).with_base_offset(-1),
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions),
        );
    }
    // acks=0: the client waits for nothing; a failure closes the connection, as Kafka does
    // (the only way to tell such a client).
    if request.acks == 0 {
        let failed = responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != NONE);
        return if failed {
            Err("an acks=0 produce failed".into())
        } else {
            Ok(Reply::None)
        };
    }
    reply(
        &ProduceResponse::default().with_responses(responses),
        version,
    )
}
