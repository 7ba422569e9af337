//! The Kafka APIs Sluice answers, each a decode → log or coordinator calls → encode:
//! ApiVersions, Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
//! FindCoordinator, OffsetCommit, OffsetFetch, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups and InitProducerId (idempotent producers; no transactions),
//! at the versions current clients negotiate. Fields a version does not have keep their
//! defaults (the codec refuses to write anything else).

mod configs;
mod fetch;
mod groups;
mod membership;
mod metadata;
mod offsets;
mod produce;
mod topics;
mod versions;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_storage::{StorageError, TopicConfig, TopicInfo};

use super::Shared;
use super::coordinator;

/// What a connection's requests share: the runtime for long-poll waits and who is asking.
pub(crate) struct Conn {
    pub runtime: tokio::runtime::Runtime,
    /// The client's address (DescribeGroups' client host).
    pub peer_host: String,
}

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
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
];

pub(crate) use crate::kafka_codes::*;

pub(crate) fn handle(
    api: ApiKey,
    header: &RequestHeader,
    body: &mut Bytes,
    shared: &Shared,
    conn: &Conn,
) -> Result<Reply, String> {
    let version = header.request_api_version;
    if api == ApiKey::ApiVersions {
        return versions::api_versions(version, body);
    }
    let supported = SUPPORTED
        .iter()
        .any(|(k, min, max)| *k == api && (*min..=*max).contains(&version));
    if !supported {
        return Err(format!("{api:?} v{version} is not supported"));
    }
    match api {
        ApiKey::Metadata => metadata::metadata(decode(body, version)?, version, shared),
        ApiKey::Produce => produce::produce(decode(body, version)?, version, shared),
        ApiKey::Fetch => fetch::fetch(decode(body, version)?, version, shared, &conn.runtime),
        ApiKey::ListOffsets => offsets::list_offsets(decode(body, version)?, version, shared),
        ApiKey::CreateTopics => topics::create_topics(decode(body, version)?, version, shared),
        ApiKey::DeleteTopics => topics::delete_topics(decode(body, version)?, version, shared),
        ApiKey::FindCoordinator => {
            groups::find_coordinator(decode(body, version)?, version, shared)
        }
        ApiKey::OffsetCommit => groups::offset_commit(decode(body, version)?, version, shared),
        ApiKey::OffsetFetch => groups::offset_fetch(decode(body, version)?, version, shared),
        ApiKey::JoinGroup => {
            membership::join_group(decode(body, version)?, version, header, shared, conn)
        }
        ApiKey::SyncGroup => membership::sync_group(decode(body, version)?, version, shared),
        ApiKey::Heartbeat => membership::heartbeat(decode(body, version)?, version, shared),
        ApiKey::LeaveGroup => membership::leave_group(decode(body, version)?, version, shared),
        ApiKey::ListGroups => membership::list_groups(decode(body, version)?, version, shared),
        ApiKey::DescribeGroups => {
            membership::describe_groups(decode(body, version)?, version, shared)
        }
        ApiKey::DescribeConfigs => {
            configs::describe_configs(decode(body, version)?, version, shared)
        }
        ApiKey::AlterConfigs => configs::alter_configs(decode(body, version)?, version, shared),
        ApiKey::IncrementalAlterConfigs => {
            configs::incremental_alter_configs(decode(body, version)?, version, shared)
        }
        ApiKey::CreatePartitions => {
            topics::create_partitions(decode(body, version)?, version, shared)
        }
        ApiKey::InitProducerId => {
            produce::init_producer_id(decode(body, version)?, version, shared)
        }
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
        StorageError::RecordRefused { .. } => INVALID_RECORD,
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
                shared.config.topic_defaults.clone(),
            ) {
                // Another connection created it meanwhile.
                Err(StorageError::TopicExists(_)) => shared.log.describe_topic(topic),
                other => other,
            }
        }
        other => other,
    }
}
