//! FindCoordinator, OffsetCommit, OffsetFetch: this broker coordinates every group; a
//! group's offsets are kept in the log's `__consumer_offsets`.

use super::*;

/// This one broker coordinates every group.
pub(super) fn find_coordinator(
    request: FindCoordinatorRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    let host = StrBytes::from_string(shared.advertised.ip().to_string());
    let port = shared.advertised.port() as i32;
    let response = if version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .map(|k| {
                    Coordinator::default()
                        .with_key(k.clone())
                        .with_node_id(BrokerId(0))
                        .with_host(host.clone())
                        .with_port(port)
                })
                .collect(),
        )
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(0))
            .with_host(host)
            .with_port(port)
    };
    reply(&response, version)
}

/// Commits a group's offsets: a member's of the current generation, or a simple
/// consumer's (generation -1) while the group has no members (Kafka's rules).
pub(super) fn offset_commit(
    request: OffsetCommitRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let group = request.group_id.0.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let allowed = shared.coordinator.may_commit(
        &group,
        &request.member_id,
        request.generation_id_or_member_epoch,
    );
    let mut topics = Vec::new();
    for t in &request.topics {
        let topic_name = t.name.0.to_string();
        let known = shared.log.describe_topic(&topic_name).ok();
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let response = OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index);
                let exists = known.as_ref().is_some_and(|k| {
                    k.partitions
                        .iter()
                        .any(|x| i64::from(x.id) == i64::from(p.partition_index))
                });
                if allowed != NONE {
                    return response.with_error_code(allowed);
                }
                if !exists || p.committed_offset < 0 {
                    return response.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                }
                let offset = sluice_storage::CommittedOffset {
                    topic: topic_name.clone(),
                    partition: p.partition_index as u32,
                    offset: p.committed_offset as u64,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp: now,
                };
                match shared.log.commit_offsets(&group, &[offset]) {
                    Ok(()) => response,
                    Err(e) => response.with_error_code(error_code(&e)),
                }
            })
            .collect();
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    reply(
        &OffsetCommitResponse::default().with_topics(topics),
        version,
    )
}

/// A group's committed offsets (-1 where it has none).
pub(super) fn offset_fetch(
    request: OffsetFetchRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    let group = request.group_id.0.to_string();
    let committed = shared
        .log
        .committed_offsets(&group)
        .map_err(|e| e.to_string())?;
    let partition = |topic: &str, index: i32| {
        let found = committed
            .iter()
            .find(|c| c.topic == topic && i64::from(c.partition) == i64::from(index));
        OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(found.map_or(-1, |c| c.offset as i64))
            .with_metadata(Some(StrBytes::from_string(
                found.map(|c| c.metadata.clone()).unwrap_or_default(),
            )))
    };
    let topics: Vec<OffsetFetchResponseTopic> = match &request.topics {
        Some(wanted) => wanted
            .iter()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|i| partition(&t.name.0, *i))
                            .collect(),
                    )
            })
            .collect(),
        // Every topic the group committed to.
        None => {
            let mut names: Vec<&str> = committed.iter().map(|c| c.topic.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .map(|n| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name(n))
                        .with_partitions(
                            committed
                                .iter()
                                .filter(|c| c.topic == n)
                                .map(|c| partition(n, c.partition as i32))
                                .collect(),
                        )
                })
                .collect()
        }
    };
    reply(&OffsetFetchResponse::default().with_topics(topics), version)
}
