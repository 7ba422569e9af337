//! The Kafka APIs Sluice answers, each a decode → log calls → encode: ApiVersions,
//! Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics, FindCoordinator,
//! OffsetCommit and OffsetFetch, at the versions current clients negotiate. Fields a version
//! does not have keep their defaults (the codec refuses to write anything else).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_storage::{StorageError, TopicConfig, TopicInfo};

use super::Shared;

/// What a request gets back: nothing (Produce with acks=0), or a body at a version.
pub(crate) enum Reply {
    None,
    Body(Vec<u8>, i16),
}

/// The APIs and versions Sluice serves (ApiVersions' answer).
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
];

// Kafka's error codes.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC: i16 = 17;
const UNSUPPORTED_VERSION: i16 = 35;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_CONFIG: i16 = 40;
const UNKNOWN_SERVER_ERROR: i16 = -1;

pub(crate) fn handle(
    api: ApiKey,
    header: &RequestHeader,
    body: &mut Bytes,
    shared: &Shared,
    runtime: &tokio::runtime::Runtime,
) -> Result<Reply, String> {
    let version = header.request_api_version;
    if api == ApiKey::ApiVersions {
        return api_versions(version, body);
    }
    let supported = SUPPORTED
        .iter()
        .any(|(k, min, max)| *k == api && (*min..=*max).contains(&version));
    if !supported {
        return Err(format!("{api:?} v{version} is not supported"));
    }
    match api {
        ApiKey::Metadata => metadata(decode(body, version)?, version, shared),
        ApiKey::Produce => produce(decode(body, version)?, version, shared),
        ApiKey::Fetch => fetch(decode(body, version)?, version, shared, runtime),
        ApiKey::ListOffsets => list_offsets(decode(body, version)?, version, shared),
        ApiKey::CreateTopics => create_topics(decode(body, version)?, version, shared),
        ApiKey::DeleteTopics => delete_topics(decode(body, version)?, version, shared),
        ApiKey::FindCoordinator => find_coordinator(decode(body, version)?, version, shared),
        ApiKey::OffsetCommit => offset_commit(decode(body, version)?, version, shared),
        ApiKey::OffsetFetch => offset_fetch(decode(body, version)?, version, shared),
        other => Err(format!("{other:?} is not supported")),
    }
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| e.to_string())
}

fn reply<T: Encodable>(message: &T, version: i16) -> Result<Reply, String> {
    let mut out = bytes::BytesMut::new();
    message
        .encode(&mut out, version)
        .map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(Reply::Body(out.to_vec(), version))
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// Kafka's error code for a storage error.
fn error_code(e: &StorageError) -> i16 {
    match e {
        StorageError::UnknownTopic(_) | StorageError::UnknownPartition { .. } => {
            UNKNOWN_TOPIC_OR_PARTITION
        }
        StorageError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        StorageError::InvalidRecord(_) | StorageError::Corrupted(_) => CORRUPT_MESSAGE,
        StorageError::InvalidTopicName(_) => INVALID_TOPIC,
        StorageError::TopicExists(_) => TOPIC_ALREADY_EXISTS,
        StorageError::InvalidConfig(_) => INVALID_CONFIG,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// A topic by name, created (as `auto.create.topics.enable` does) when missing and allowed.
fn topic(shared: &Shared, topic: &str, create: bool) -> Result<TopicInfo, StorageError> {
    match shared.log.describe_topic(topic) {
        Err(StorageError::UnknownTopic(_)) if create && shared.config.auto_create_topics => {
            match shared.log.create_topic(
                topic,
                shared.config.default_partitions,
                TopicConfig::default(),
            ) {
                // Another connection created it meanwhile.
                Err(StorageError::TopicExists(_)) => shared.log.describe_topic(topic),
                other => other,
            }
        }
        other => other,
    }
}

fn api_versions(version: i16, body: &mut Bytes) -> Result<Reply, String> {
    let keys: Vec<ApiVersion> = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    if !(0..=4).contains(&version) {
        // A client newer than us: answer in v0 so it can read the versions we have.
        let response = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(keys);
        return reply(&response, 0);
    }
    let _request: ApiVersionsRequest = decode(body, version)?;
    reply(
        &ApiVersionsResponse::default()
            .with_error_code(NONE)
            .with_api_keys(keys),
        version,
    )
}

fn metadata(request: MetadataRequest, version: i16, shared: &Shared) -> Result<Reply, String> {
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

fn produce(request: ProduceRequest, version: i16, shared: &Shared) -> Result<Reply, String> {
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

/// One partition's part of a fetch, and how many record bytes it carries.
fn fetch_partition(
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
            (data.with_records(Some(Bytes::from(r.data))), n)
        }
        Err(e) => (data.with_error_code(error_code(&e)), 0),
    }
}

fn fetch(
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
        if total >= min_bytes.max(1) || now >= deadline {
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

fn list_offsets(
    request: ListOffsetsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    const LATEST: i64 = -1;
    const EARLIEST: i64 = -2;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic_name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Ok(partition) = u32::try_from(p.partition_index) else {
                        return response.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    let found = match p.timestamp {
                        LATEST | EARLIEST => shared
                            .log
                            .offsets(&topic_name, partition)
                            .map(|(s, e)| Some(if p.timestamp == LATEST { e } else { s })),
                        ts => shared.log.offset_for_timestamp(&topic_name, partition, ts),
                    };
                    match found {
                        Ok(Some(o)) => response
                            .with_offset(o as i64)
                            .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
                        Ok(None) => response,
                        Err(e) => response.with_error_code(error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    reply(&ListOffsetsResponse::default().with_topics(topics), version)
}

fn create_topics(
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
            // -1: the broker's default (`num.partitions`).
            let partitions = match t.num_partitions {
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
            let config = sluice_storage::TopicConfig::from_pairs(
                t.configs
                    .iter()
                    .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))),
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

fn delete_topics(
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

/// This one broker coordinates every group.
fn find_coordinator(
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

/// Commits a group's offsets. Group membership is not checked yet (no JoinGroup): the
/// commits of simple consumers (generation -1) are what this serves.
fn offset_commit(
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
fn offset_fetch(
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
