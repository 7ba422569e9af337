//! CreateTopics and DeleteTopics: Kafka's admin calls over the log's topics.

use super::*;

pub(super) fn create_topics(
    request: CreateTopicsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic_name = t.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            // -1: the broker's default (`num.partitions`), or as many as the replica
            // assignments name (their brokers are moot on one node).
            let partitions = match t.num_partitions {
                -1 if !t.assignments.is_empty() => t.assignments.len() as i32,
                -1 => shared.config.default_partitions as i32,
                n => n,
            };
            if partitions < 1 {
                return result
                    .with_error_code(INVALID_PARTITIONS)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Number of partitions must be larger than 0, got {partitions}."
                    ))));
            }
            let config = t
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str(), v.as_str())))
                .try_fold(
                    shared.config.topic_defaults.clone(),
                    |mut config, (k, v)| config.set(k.trim(), v).map(|()| config),
                );
            let created = config.and_then(|config| {
                if request.validate_only {
                    sluice_storage::config::validate_topic_name(&topic_name)
                } else {
                    shared
                        .log
                        .create_topic(&topic_name, partitions as u32, config)
                        .map(|_| ())
                }
            });
            match created {
                Ok(()) => result
                    .with_num_partitions(if version >= 5 { partitions } else { -1 })
                    .with_replication_factor(if version >= 5 { 1 } else { -1 }),
                Err(e) => result
                    .with_error_code(error_code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            }
        })
        .collect();
    reply(
        &CreateTopicsResponse::default().with_topics(topics),
        version,
    )
}

pub(super) fn delete_topics(
    request: DeleteTopicsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    let responses = request
        .topic_names
        .iter()
        .map(|t| {
            let result = DeletableTopicResult::default().with_name(Some(t.clone()));
            shared.producers.forget_topic(&t.0);
            match shared.log.delete_topic(&t.0) {
                Ok(()) => result,
                Err(e) => {
                    let result = result.with_error_code(error_code(&e));
                    if version >= 5 {
                        result.with_error_message(Some(StrBytes::from_string(e.to_string())))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    reply(
        &DeleteTopicsResponse::default().with_responses(responses),
        version,
    )
}

/// CreatePartitions: topics grown to the requested counts (replica assignments are moot on
/// one node and ignored).
pub(super) fn create_partitions(
    request: CreatePartitionsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    let results = request
        .topics
        .iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = shared.log.describe_topic(&t.name.0).and_then(|info| {
                let have = info.partitions.len() as i32;
                if t.count <= have {
                    return Err(StorageError::InvalidConfig(format!(
                        "Topic currently has {have} partitions, which is higher than the requested {}.",
                        t.count
                    )));
                }
                if request.validate_only {
                    return Ok(());
                }
                shared
                    .log
                    .add_partitions(&t.name.0, t.count as u32)
                    .map(|_| ())
            });
            match outcome {
                Ok(()) => result,
                Err(StorageError::InvalidConfig(m)) => result
                    .with_error_code(INVALID_PARTITIONS)
                    .with_error_message(Some(StrBytes::from_string(m))),
                Err(e) => result
                    .with_error_code(error_code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            }
        })
        .collect();
    reply(
        &CreatePartitionsResponse::default().with_results(results),
        version,
    )
}
