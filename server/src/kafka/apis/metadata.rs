//! Metadata: one broker (this one) leading every partition; requested topics are created
//! when missing and allowed (`auto.create.topics.enable`).

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};

use super::*;

pub(super) fn metadata(
    request: MetadataRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    // Before v4 every Metadata request may create topics.
    let create = version < 4 || request.allow_auto_topic_creation;
    let topics: Vec<Result<TopicInfo, (String, StorageError)>> = match &request.topics {
        None => shared.log.list_topics().into_iter().map(Ok).collect(),
        Some(wanted) => wanted
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .map(|n| topic(shared, &n, create).map_err(|e| (n, e)))
            .collect(),
    };
    let topics = topics
        .into_iter()
        .map(|t| match t {
            Ok(info) => MetadataResponseTopic::default()
                .with_name(Some(name(&info.name)))
                .with_is_internal(info.internal && version >= 1)
                .with_partitions(
                    info.partitions
                        .iter()
                        .map(|p| {
                            MetadataResponsePartition::default()
                                .with_partition_index(p.id as i32)
                                .with_leader_id(BrokerId(0))
                                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                                .with_replica_nodes(vec![BrokerId(0)])
                                .with_isr_nodes(vec![BrokerId(0)])
                        })
                        .collect(),
                ),
            Err((n, e)) => MetadataResponseTopic::default()
                .with_name(Some(name(&n)))
                .with_error_code(error_code(&e)),
        })
        .collect();
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(0))
        .with_host(StrBytes::from_string(shared.advertised.ip().to_string()))
        .with_port(shared.advertised.port() as i32);
    // Fields a version does not have must keep their defaults (the codec refuses others).
    let response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id((version >= 2).then(|| StrBytes::from_static_str("sluice")))
        .with_controller_id(BrokerId(if version >= 1 { 0 } else { -1 }))
        .with_topics(topics);
    reply(&response, version)
}
