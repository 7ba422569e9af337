//! `KafkaLog`: the `EventLog` over the Kafka wire protocol, so that what runs on the local
//! log (the CLI's `topics`, `produce`, `consume`, `groups`) runs the same against a
//! running `sluice server` or an Apache Kafka cluster (`--bootstrap-server host:port`).
//!
//! Requests go where Kafka wants them: produce, fetch and list-offsets to each partition's
//! leader, topic creation and deletion to the controller, group offsets to the group's
//! coordinator; broker addresses and leaders come from Metadata. Calls block; a wait for
//! data is a long-polling Fetch on its own connection and thread, cancelled when its
//! future is dropped. Appends are acknowledged by all in-sync replicas (acks=all).

mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_storage::api::WaitFuture;
use sluice_storage::batch::{BatchHeader, Batches};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{
    AppendInfo, CommittedOffset, EventLog, PartitionInfo, ReadResult, Result, StorageError,
    TopicConfig, TopicInfo,
};

use crate::kafka_codes::{
    DYNAMIC_TOPIC_CONFIG, INVALID_CONFIG, INVALID_PARTITIONS, INVALID_RECORD, INVALID_REQUEST,
    INVALID_TOPIC, OFFSET_OUT_OF_RANGE, RESOURCE_TOPIC, TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
};
use wire::BrokerConnection;

/// The versions of each request sent (served by Kafka 3.x and 4.x and by `sluice server`).
const METADATA: i16 = 9;
const PRODUCE: i16 = 8;
const FETCH: i16 = 11;
const LIST_OFFSETS: i16 = 5;
const CREATE_TOPICS: i16 = 5;
const DELETE_TOPICS: i16 = 4;
const FIND_COORDINATOR: i16 = 3;
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 7;
const LIST_GROUPS: i16 = 4;
const DESCRIBE_CONFIGS: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS: i16 = 1;
const CREATE_PARTITIONS: i16 = 3;

/// ListOffsets' special timestamps.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// How long one long-polling fetch of a wait lasts before the wait looks at its deadline.
const WAIT_SLICE: Duration = Duration::from_millis(500);

pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    bootstrap: String,
    timeout: Duration,
    /// Idle connections by address (taken out while a request is in flight).
    connections: Mutex<HashMap<String, BrokerConnection>>,
    /// Broker id → `host:port`, from the latest Metadata.
    brokers: Mutex<HashMap<i32, String>>,
    controller: Mutex<Option<i32>>,
    /// (topic, partition) → leader broker id.
    leaders: Mutex<HashMap<(String, u32), i32>>,
    /// The next partition of records without a key, per topic (round robin by batch).
    unkeyed: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn remote(message: impl Into<String>) -> StorageError {
    StorageError::Remote(message.into())
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// A Kafka error code of a response about `topic` as a storage error.
fn kafka_error(code: i16, topic: &str, what: &str) -> StorageError {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION => StorageError::UnknownTopic(topic.to_string()),
        INVALID_TOPIC => {
            StorageError::InvalidTopicName(format!("'{topic}' is not a valid topic name"))
        }
        TOPIC_ALREADY_EXISTS => StorageError::TopicExists(topic.to_string()),
        INVALID_CONFIG => {
            StorageError::InvalidConfig(format!("the broker refused {what} of '{topic}'"))
        }
        _ => {
            let error = ResponseError::try_from_code(code)
                .map_or_else(|| code.to_string(), |e| e.to_string());
            remote(format!(
                "{what} of '{topic}' failed: {error} (Kafka error {code})"
            ))
        }
    }
}

impl KafkaLog {
    /// Connects to the cluster at `bootstrap` (`host:port`) and reads its brokers.
    pub fn connect(bootstrap: &str) -> Result<KafkaLog> {
        let log = KafkaLog {
            inner: Arc::new(Inner {
                bootstrap: bootstrap.to_string(),
                timeout: Duration::from_secs(30),
                connections: Mutex::new(HashMap::new()),
                brokers: Mutex::new(HashMap::new()),
                controller: Mutex::new(None),
                leaders: Mutex::new(HashMap::new()),
                unkeyed: AtomicU32::new(0),
            }),
        };
        log.inner.metadata(Some(&[]))?;
        Ok(log)
    }
}

impl Inner {
    /// Runs `f` on a connection to `address` (made when there is none idle); a connection
    /// whose request failed is dropped.
    fn with_connection<T>(
        &self,
        address: &str,
        f: impl FnOnce(&mut BrokerConnection) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let idle = lock(&self.connections).remove(address);
        let mut connection = match idle {
            Some(c) => c,
            None => BrokerConnection::connect(address, self.timeout).map_err(remote)?,
        };
        let result = f(&mut connection).map_err(remote)?;
        lock(&self.connections).insert(connection.address().to_string(), connection);
        Ok(result)
    }

    fn broker_address(&self, id: i32) -> String {
        lock(&self.brokers)
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.bootstrap.clone())
    }

    /// Metadata of `topics` (all when `None`), remembering brokers, controller and leaders.
    fn metadata(&self, topics: Option<&[&str]>) -> Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response: MetadataResponse = self.with_connection(&self.bootstrap, |c| {
            c.send(ApiKey::Metadata, METADATA, &request)
        })?;
        {
            let mut brokers = lock(&self.brokers);
            for b in &response.brokers {
                brokers.insert(b.node_id.0, format!("{}:{}", b.host, b.port));
            }
        }
        *lock(&self.controller) = Some(response.controller_id.0).filter(|id| *id >= 0);
        let mut leaders = lock(&self.leaders);
        for t in &response.topics {
            let Some(topic) = &t.name else { continue };
            for p in &t.partitions {
                leaders.insert(
                    (topic.0.to_string(), p.partition_index as u32),
                    p.leader_id.0,
                );
            }
        }
        Ok(response)
    }

    /// The leader's address of a partition (from Metadata when not known yet).
    fn leader(&self, topic: &str, partition: u32) -> Result<String> {
        let key = (topic.to_string(), partition);
        if let Some(id) = lock(&self.leaders).get(&key) {
            return Ok(self.broker_address(*id));
        }
        let response = self.metadata(Some(&[topic]))?;
        let t = response
            .topics
            .first()
            .ok_or_else(|| StorageError::UnknownTopic(topic.to_string()))?;
        if t.error_code != 0 {
            return Err(kafka_error(t.error_code, topic, "metadata"));
        }
        let partitions = t.partitions.len() as u32;
        match lock(&self.leaders).get(&key) {
            Some(id) if *id >= 0 => Ok(self.broker_address(*id)),
            Some(_) => Err(remote(format!(
                "partition {topic}-{partition} has no leader now"
            ))),
            None => Err(StorageError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions,
            }),
        }
    }

    /// Where topics are created and deleted.
    fn controller_address(&self) -> String {
        match *lock(&self.controller) {
            Some(id) => self.broker_address(id),
            None => self.bootstrap.clone(),
        }
    }

    fn coordinator(&self, group: &str) -> Result<String> {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let response: FindCoordinatorResponse = self.with_connection(&self.bootstrap, |c| {
            c.send(ApiKey::FindCoordinator, FIND_COORDINATOR, &request)
        })?;
        if response.error_code != 0 {
            return Err(kafka_error(
                response.error_code,
                group,
                "finding the coordinator",
            ));
        }
        Ok(format!("{}:{}", response.host, response.port))
    }

    /// ListOffsets of some partitions of a topic at one timestamp, asked of each leader.
    fn list_offsets(
        &self,
        topic: &str,
        partitions: &[u32],
        timestamp: i64,
    ) -> Result<BTreeMap<u32, i64>> {
        let mut by_leader: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in partitions {
            by_leader
                .entry(self.leader(topic, *p)?)
                .or_default()
                .push(*p);
        }
        let mut offsets = BTreeMap::new();
        for (address, ps) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(topic))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p as i32)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        ),
                ]);
            let response: ListOffsetsResponse = self.with_connection(&address, |c| {
                c.send(ApiKey::ListOffsets, LIST_OFFSETS, &request)
            })?;
            for t in response.topics {
                for p in t.partitions {
                    if p.error_code != 0 {
                        self.forget_leaders(topic);
                        return Err(kafka_error(p.error_code, topic, "listing offsets"));
                    }
                    offsets.insert(p.partition_index as u32, p.offset);
                }
            }
        }
        Ok(offsets)
    }

    fn forget_leaders(&self, topic: &str) {
        lock(&self.leaders).retain(|(t, _), _| t != topic);
    }

    /// A topic's partitions with their offsets (sizes and segments are not known remotely).
    fn topic_info(&self, t: &MetadataResponseTopic) -> Result<TopicInfo> {
        let topic = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        let mut ids: Vec<u32> = t
            .partitions
            .iter()
            .map(|p| p.partition_index as u32)
            .collect();
        ids.sort_unstable();
        let starts = self.list_offsets(&topic, &ids, EARLIEST)?;
        let ends = self.list_offsets(&topic, &ids, LATEST)?;
        Ok(TopicInfo {
            partitions: ids
                .iter()
                .map(|id| PartitionInfo {
                    id: *id,
                    log_start_offset: starts.get(id).copied().unwrap_or(0).max(0) as u64,
                    high_watermark: ends.get(id).copied().unwrap_or(0).max(0) as u64,
                    size_bytes: 0,
                    segments: 0,
                })
                .collect(),
            config: self.topic_config(&topic).unwrap_or_else(|e| {
                tracing::warn!(error = %e, topic, "reading the topic's configs failed");
                TopicConfig::default()
            }),
            internal: t.is_internal,
            name: topic,
        })
    }

    /// A topic's own config overrides (DescribeConfigs), as far as Sluice knows them.
    fn topic_config(&self, topic: &str) -> Result<TopicConfig> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]);
        let response: DescribeConfigsResponse = self.with_connection(&self.bootstrap, |c| {
            c.send(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS, &request)
        })?;
        let mut config = TopicConfig::default();
        for result in response.results {
            for entry in result.configs {
                if entry.config_source != DYNAMIC_TOPIC_CONFIG {
                    continue;
                }
                if let Some(value) = &entry.value {
                    // Settings Sluice has no notion of (a Kafka cluster's) are left out.
                    let _ = config.set(&entry.name, value);
                }
            }
        }
        Ok(config)
    }

    /// One non-waiting fetch of a partition from `offset`.
    fn fetch(
        &self,
        address: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<fetch_response::PartitionData> {
        let request = fetch_request(topic, partition, offset, max_bytes, max_wait);
        let response: FetchResponse =
            self.with_connection(address, |c| c.send(ApiKey::Fetch, FETCH, &request))?;
        if response.error_code != 0 {
            return Err(kafka_error(response.error_code, topic, "fetching"));
        }
        response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index as u32 == partition)
            .ok_or_else(|| remote(format!("the fetch of {topic}-{partition} came back empty")))
    }
}

fn fetch_request(
    topic: &str,
    partition: u32,
    offset: u64,
    max_bytes: usize,
    max_wait: Duration,
) -> FetchRequest {
    let max_bytes = max_bytes.min(i32::MAX as usize) as i32;
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(if max_wait.is_zero() { 0 } else { 1 })
        .with_max_bytes(max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition as i32)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset as i64)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(max_bytes),
                ]),
        ])
}

/// The whole batches at the front of a fetch's records (a broker may cut the last one).
fn whole_batches(records: &[u8]) -> usize {
    let mut end = 0;
    while records.len() >= end + 12 {
        let length = i32::from_be_bytes([
            records[end + 8],
            records[end + 9],
            records[end + 10],
            records[end + 11],
        ]);
        if length < 0 {
            break;
        }
        let next = end + 12 + length as usize;
        if next > records.len() {
            break;
        }
        end = next;
    }
    end
}

impl EventLog for KafkaLog {
    fn create_topic(&self, topic: &str, partitions: u32, config: TopicConfig) -> Result<TopicInfo> {
        let configs: Vec<CreatableTopicConfig> = config
            .overrides()
            .into_iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str(k))
                    .with_value(Some(StrBytes::from_string(v)))
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions as i32)
                    .with_replication_factor(-1)
                    .with_configs(configs),
            ])
            .with_timeout_ms(self.inner.timeout.as_millis() as i32);
        let address = self.inner.controller_address();
        let response: CreateTopicsResponse = self.inner.with_connection(&address, |c| {
            c.send(ApiKey::CreateTopics, CREATE_TOPICS, &request)
        })?;
        for t in &response.topics {
            if t.error_code != 0 {
                return Err(match (&t.error_message, t.error_code) {
                    (Some(m), INVALID_PARTITIONS | INVALID_CONFIG | INVALID_REQUEST) => {
                        StorageError::InvalidConfig(m.to_string())
                    }
                    _ => kafka_error(t.error_code, topic, "creating"),
                });
            }
        }
        Ok(TopicInfo {
            name: topic.to_string(),
            partitions: (0..partitions)
                .map(|id| PartitionInfo {
                    id,
                    log_start_offset: 0,
                    high_watermark: 0,
                    size_bytes: 0,
                    segments: 0,
                })
                .collect(),
            config,
            internal: false,
        })
    }

    fn delete_topic(&self, topic: &str) -> Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![name(topic)])
            .with_timeout_ms(self.inner.timeout.as_millis() as i32);
        let address = self.inner.controller_address();
        let response: DeleteTopicsResponse = self.inner.with_connection(&address, |c| {
            c.send(ApiKey::DeleteTopics, DELETE_TOPICS, &request)
        })?;
        self.inner.forget_leaders(topic);
        match response.responses.iter().find(|r| r.error_code != 0) {
            Some(r) => Err(kafka_error(r.error_code, topic, "deleting")),
            None => Ok(()),
        }
    }

    fn describe_topic(&self, topic: &str) -> Result<TopicInfo> {
        let response = self.inner.metadata(Some(&[topic]))?;
        let t = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or_else(|| StorageError::UnknownTopic(topic.to_string()))?;
        if t.error_code != 0 {
            return Err(kafka_error(t.error_code, topic, "describing"));
        }
        self.inner.topic_info(t)
    }

    fn list_topics(&self) -> Vec<TopicInfo> {
        let response = match self.inner.metadata(None) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing topics failed");
                return Vec::new();
            }
        };
        let mut topics: Vec<TopicInfo> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| match self.inner.topic_info(t) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(error = %e, "describing a topic failed");
                    None
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    fn topic_names(&self) -> Vec<String> {
        match self.inner.metadata(None) {
            Ok(r) => {
                let mut names: Vec<String> = r
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0)
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect();
                names.sort();
                names
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing topics failed");
                Vec::new()
            }
        }
    }

    fn knows_sizes(&self) -> bool {
        false
    }

    fn alter_topic_config(
        &self,
        topic: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<TopicConfig> {
        let configs = changes
            .iter()
            .map(|(name, value)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    // 0: SET, 1: DELETE (back to the default).
                    .with_config_operation(if value.is_some() { 0 } else { 1 })
                    .with_value(value.clone().map(StrBytes::from_string))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(configs),
        ]);
        let response: IncrementalAlterConfigsResponse =
            self.inner.with_connection(&self.inner.bootstrap, |c| {
                c.send(
                    ApiKey::IncrementalAlterConfigs,
                    INCREMENTAL_ALTER_CONFIGS,
                    &request,
                )
            })?;
        if let Some(r) = response.responses.iter().find(|r| r.error_code != 0) {
            return Err(match (&r.error_message, r.error_code) {
                (Some(m), INVALID_CONFIG) => StorageError::InvalidConfig(m.to_string()),
                _ => kafka_error(r.error_code, topic, "altering the configs"),
            });
        }
        self.inner.topic_config(topic)
    }

    fn add_partitions(&self, topic: &str, count: u32) -> Result<TopicInfo> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(count as i32)
                    .with_assignments(None),
            ])
            .with_timeout_ms(self.inner.timeout.as_millis() as i32);
        let address = self.inner.controller_address();
        let response: CreatePartitionsResponse = self.inner.with_connection(&address, |c| {
            c.send(ApiKey::CreatePartitions, CREATE_PARTITIONS, &request)
        })?;
        if let Some(r) = response.results.iter().find(|r| r.error_code != 0) {
            return Err(match (&r.error_message, r.error_code) {
                (Some(m), INVALID_PARTITIONS) => StorageError::InvalidConfig(m.to_string()),
                _ => kafka_error(r.error_code, topic, "adding partitions"),
            });
        }
        self.inner.forget_leaders(topic);
        self.describe_topic(topic)
    }

    fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<u32> {
        let response = self.inner.metadata(Some(&[topic]))?;
        let partitions = response
            .topics
            .first()
            .filter(|t| t.error_code == 0)
            .map(|t| t.partitions.len() as u32)
            .ok_or_else(|| StorageError::UnknownTopic(topic.to_string()))?;
        if partitions == 0 {
            return Err(StorageError::UnknownTopic(topic.to_string()));
        }
        Ok(match key {
            Some(k) => partition_for_key(k, partitions),
            None => self.inner.unkeyed.fetch_add(1, Ordering::Relaxed) % partitions,
        })
    }

    fn append(&self, topic: &str, partition: u32, batches: &mut [u8]) -> Result<AppendInfo> {
        let mut record_count = 0u64;
        for b in Batches::new(batches) {
            record_count += BatchHeader::parse(b)?.last_offset_delta as u64 + 1;
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(self.inner.timeout.as_millis() as i32)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition as i32)
                            .with_records(Some(Bytes::copy_from_slice(batches))),
                    ]),
            ]);
        let address = self.inner.leader(topic, partition)?;
        let response: ProduceResponse = self
            .inner
            .with_connection(&address, |c| c.send(ApiKey::Produce, PRODUCE, &request))?;
        let p = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index as u32 == partition)
            .ok_or_else(|| remote(format!("no answer for {topic}-{partition} in Produce")))?;
        if p.error_code != 0 {
            self.inner.forget_leaders(topic);
            return Err(match (&p.error_message, p.error_code) {
                (Some(m), INVALID_RECORD) => StorageError::RecordRefused {
                    message: m.to_string(),
                    records: p
                        .record_errors
                        .iter()
                        .map(|e| e.batch_index as u32)
                        .collect(),
                },
                _ => kafka_error(p.error_code, topic, "producing"),
            });
        }
        let base_offset = p.base_offset.max(0) as u64;
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset + record_count.saturating_sub(1),
            record_count,
        })
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        let address = self.inner.leader(topic, partition)?;
        let p = self.inner.fetch(
            &address,
            topic,
            partition,
            offset,
            max_bytes,
            Duration::ZERO,
        )?;
        if p.error_code == OFFSET_OUT_OF_RANGE {
            let (start, end) = self.offsets(topic, partition)?;
            return Err(StorageError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset,
                start,
                end,
            });
        }
        if p.error_code != 0 {
            self.inner.forget_leaders(topic);
            return Err(kafka_error(p.error_code, topic, "fetching"));
        }
        let records = p.records.unwrap_or_default();
        let whole = whole_batches(&records);
        Ok(ReadResult {
            data: records[..whole].to_vec().into(),
            high_watermark: p.high_watermark.max(0) as u64,
            log_start_offset: p.log_start_offset.max(0) as u64,
        })
    }

    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let start = self.inner.list_offsets(topic, &[partition], EARLIEST)?;
        let end = self.inner.list_offsets(topic, &[partition], LATEST)?;
        let get = |m: &BTreeMap<u32, i64>| m.get(&partition).copied().unwrap_or(0).max(0) as u64;
        Ok((get(&start), get(&end)))
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<u64>> {
        let found = self.inner.list_offsets(topic, &[partition], timestamp)?;
        Ok(found
            .get(&partition)
            .copied()
            .filter(|o| *o >= 0)
            .map(|o| o as u64))
    }

    fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        deadline: tokio::time::Instant,
    ) -> Result<WaitFuture> {
        let address = self.inner.leader(topic, partition)?;
        let inner = self.inner.clone();
        let topic = topic.to_string();
        let cancelled = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = cancelled.clone();
        let deadline = deadline.into_std();
        // Its own connection: a long poll holds the connection for its whole wait.
        std::thread::Builder::new()
            .name("kafka-wait".into())
            .spawn(move || {
                let arrived =
                    long_poll(&inner, &address, &topic, partition, offset, deadline, &flag);
                let _ = tx.send(arrived);
            })
            .map_err(|e| remote(format!("cannot start a wait: {e}")))?;
        Ok(Box::pin(Wait { rx, cancelled }))
    }

    fn commit_offsets(&self, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for o in offsets {
            topics.entry(&o.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(o.partition as i32)
                    .with_committed_offset(o.offset as i64)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone()))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let address = self.inner.coordinator(group)?;
        let response: OffsetCommitResponse = self.inner.with_connection(&address, |c| {
            c.send(ApiKey::OffsetCommit, OFFSET_COMMIT, &request)
        })?;
        for t in &response.topics {
            if let Some(p) = t.partitions.iter().find(|p| p.error_code != 0) {
                return Err(kafka_error(
                    p.error_code,
                    &t.name.0,
                    &format!("committing group {group}'s offset"),
                ));
            }
        }
        Ok(())
    }

    fn committed_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None);
        let address = self.inner.coordinator(group)?;
        let response: OffsetFetchResponse = self.inner.with_connection(&address, |c| {
            c.send(ApiKey::OffsetFetch, OFFSET_FETCH, &request)
        })?;
        if response.error_code != 0 {
            return Err(kafka_error(response.error_code, group, "reading offsets"));
        }
        let mut offsets = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                if p.error_code != 0 || p.committed_offset < 0 {
                    continue;
                }
                offsets.push(CommittedOffset {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index as u32,
                    offset: p.committed_offset as u64,
                    metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                    commit_timestamp: 0,
                });
            }
        }
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(offsets)
    }

    fn list_groups(&self) -> Result<Vec<String>> {
        // Each broker lists the groups it coordinates.
        self.inner.metadata(Some(&[]))?;
        let mut addresses: Vec<String> = lock(&self.inner.brokers).values().cloned().collect();
        if addresses.is_empty() {
            addresses.push(self.inner.bootstrap.clone());
        }
        let mut names = Vec::new();
        for address in addresses {
            let response: ListGroupsResponse = self.inner.with_connection(&address, |c| {
                c.send(
                    ApiKey::ListGroups,
                    LIST_GROUPS,
                    &ListGroupsRequest::default(),
                )
            })?;
            if response.error_code != 0 {
                return Err(kafka_error(response.error_code, "", "listing groups"));
            }
            names.extend(
                response
                    .groups
                    .into_iter()
                    .map(|g| g.group_id.0.to_string()),
            );
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Fetches with a long poll until records past `offset` exist (true), the deadline
/// passes or the wait is cancelled (false).
fn long_poll(
    inner: &Inner,
    address: &str,
    topic: &str,
    partition: u32,
    offset: u64,
    deadline: Instant,
    cancelled: &AtomicBool,
) -> bool {
    let mut connection = match BrokerConnection::connect(address, inner.timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "waiting for data failed");
            return false;
        }
    };
    loop {
        let now = Instant::now();
        if cancelled.load(Ordering::SeqCst) || now >= deadline {
            return false;
        }
        let slice = WAIT_SLICE.min(deadline - now);
        let request = fetch_request(topic, partition, offset, 1, slice);
        let response: std::result::Result<FetchResponse, String> =
            connection.send(ApiKey::Fetch, FETCH, &request);
        match response {
            Ok(r) => {
                let arrived = r.responses.iter().flat_map(|t| &t.partitions).any(|p| {
                    // Data past the offset, or an error the reader should see.
                    p.error_code != 0 || p.high_watermark > offset as i64
                });
                if arrived {
                    return true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "waiting for data failed");
                return true;
            }
        }
    }
}

/// The future of a wait: resolves with the waiting thread's answer; dropping it tells the
/// thread to stop at its next slice.
struct Wait {
    rx: tokio::sync::oneshot::Receiver<bool>,
    cancelled: Arc<AtomicBool>,
}

impl Future for Wait {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(false))
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_batch_at_the_end_is_left_out() {
        let mut builder = sluice_storage::BatchBuilder::new(sluice_storage::Compression::None);
        builder.push(1, Some(b"k"), Some(b"v"), &[]);
        let one = builder.finish().unwrap();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(whole_batches(&two), two.len());
        assert_eq!(whole_batches(&two[..two.len() - 1]), one.len());
        assert_eq!(whole_batches(&two[..5]), 0);
        assert_eq!(whole_batches(&[]), 0);
    }
}
