//! The Kafka APIs Sluice answers, each a decode → log calls → encode: ApiVersions,
//! Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics, FindCoordinator,
//! OffsetCommit and OffsetFetch, at the versions current clients negotiate. Fields a version
//! does not have keep their defaults (the codec refuses to write anything else).

mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod topics;
mod versions;

use bytes::Bytes;
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
        ApiKey::Fetch => fetch::fetch(decode(body, version)?, version, shared, runtime),
        ApiKey::ListOffsets => offsets::list_offsets(decode(body, version)?, version, shared),
        ApiKey::CreateTopics => topics::create_topics(decode(body, version)?, version, shared),
        ApiKey::DeleteTopics => topics::delete_topics(decode(body, version)?, version, shared),
        ApiKey::FindCoordinator => {
            groups::find_coordinator(decode(body, version)?, version, shared)
        }
        ApiKey::OffsetCommit => groups::offset_commit(decode(body, version)?, version, shared),
        ApiKey::OffsetFetch => groups::offset_fetch(decode(body, version)?, version, shared),
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
