//! `EventLog`: the storage interface the engine and the servers use. `LogStore` (this
//! crate's local log) implements it; a Kafka-cluster client can implement it later so the
//! same engine runs against a remote log. Calls may block for an fsync (appends under
//! `flush.policy=always`): async callers run them on blocking threads. Waiting for new data
//! is async and needs no polling.

use std::future::Future;
use std::pin::Pin;

use crate::batch::SealedBatch;
use crate::config::TopicConfig;
use crate::error::Result;
use crate::groups::CommittedOffset;
use crate::partition::{AppendInfo, ReadResult};
use crate::store::{LogStore, TopicInfo};

/// A future that resolves to true when data past an offset arrived, false at the deadline.
pub type WaitFuture = Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

pub trait EventLog: Send + Sync {
    fn create_topic(&self, name: &str, partitions: u32, config: TopicConfig) -> Result<TopicInfo>;
    fn delete_topic(&self, name: &str) -> Result<()>;
    fn describe_topic(&self, name: &str) -> Result<TopicInfo>;
    fn list_topics(&self) -> Vec<TopicInfo>;
    /// Topic names, sorted (cheaper than `list_topics` where offsets cost requests).
    fn topic_names(&self) -> Vec<String> {
        self.list_topics().into_iter().map(|t| t.name).collect()
    }
    /// Changes a topic's config: each `(name, Some(value))` sets, `(name, None)` resets to
    /// the default. All or nothing.
    fn alter_topic_config(
        &self,
        topic: &str,
        _changes: &[(String, Option<String>)],
    ) -> Result<TopicConfig> {
        Err(crate::StorageError::Remote(format!(
            "changing the config of '{topic}' is not supported here"
        )))
    }
    /// Grows a topic to `count` partitions.
    fn add_partitions(&self, topic: &str, _count: u32) -> Result<TopicInfo> {
        Err(crate::StorageError::Remote(format!(
            "adding partitions to '{topic}' is not supported here"
        )))
    }
    /// Whether sizes and segment counts in `TopicInfo` are known (a remote log has none).
    fn knows_sizes(&self) -> bool {
        true
    }
    /// The partition for a record's key (Kafka's default partitioner).
    fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<u32>;
    /// Appends whole RecordBatch v2 batches; offsets are assigned in place.
    fn append(&self, topic: &str, partition: u32, batches: &mut [u8]) -> Result<AppendInfo>;
    /// Appends batches `BatchBuilder` sealed as one append (one write to a remote log, one
    /// fsync locally, their CRCs not computed again). By default they are joined and
    /// appended as any batches.
    fn append_sealed(
        &self,
        topic: &str,
        partition: u32,
        batches: &mut [SealedBatch],
    ) -> Result<AppendInfo> {
        let mut joined = Vec::with_capacity(batches.iter().map(SealedBatch::len).sum());
        for b in batches.iter() {
            joined.extend_from_slice(b.bytes());
        }
        self.append(topic, partition, &mut joined)
    }
    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one batch).
    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadResult>;
    /// (log start offset, high watermark).
    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)>;
    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<u64>>;
    /// Resolves when the partition's high watermark passes `offset`, or false at `deadline`.
    fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        deadline: tokio::time::Instant,
    ) -> Result<WaitFuture>;
    fn commit_offsets(&self, group: &str, offsets: &[CommittedOffset]) -> Result<()>;
    fn committed_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>>;
    fn list_groups(&self) -> Result<Vec<String>>;
}

impl EventLog for LogStore {
    fn create_topic(&self, name: &str, partitions: u32, config: TopicConfig) -> Result<TopicInfo> {
        LogStore::create_topic(self, name, partitions, config)
    }
    fn delete_topic(&self, name: &str) -> Result<()> {
        LogStore::delete_topic(self, name)
    }
    fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        LogStore::describe_topic(self, name)
    }
    fn list_topics(&self) -> Vec<TopicInfo> {
        self.describe_topics()
    }
    fn topic_names(&self) -> Vec<String> {
        LogStore::topic_names(self)
    }
    fn alter_topic_config(
        &self,
        topic: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<TopicConfig> {
        LogStore::alter_topic_config(self, topic, |config| {
            for (name, value) in changes {
                match value {
                    Some(v) => config.set(name, v)?,
                    None => config.reset(name)?,
                }
            }
            Ok(())
        })
    }
    fn add_partitions(&self, topic: &str, count: u32) -> Result<TopicInfo> {
        LogStore::add_partitions(self, topic, count)
    }
    fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<u32> {
        LogStore::partition_for(self, topic, key)
    }
    fn append(&self, topic: &str, partition: u32, batches: &mut [u8]) -> Result<AppendInfo> {
        LogStore::append(self, topic, partition, batches)
    }
    fn append_sealed(
        &self,
        topic: &str,
        partition: u32,
        batches: &mut [SealedBatch],
    ) -> Result<AppendInfo> {
        LogStore::append_sealed(self, topic, partition, batches)
    }
    fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        LogStore::read(self, topic, partition, offset, max_bytes)
    }
    fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let p = self.partition(topic, partition)?;
        Ok((p.log_start_offset(), p.high_watermark()))
    }
    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<u64>> {
        self.partition(topic, partition)?
            .offset_for_timestamp(timestamp)
    }
    fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        deadline: tokio::time::Instant,
    ) -> Result<WaitFuture> {
        Ok(Box::pin(
            self.partition(topic, partition)?.wait_for(offset, deadline),
        ))
    }
    fn commit_offsets(&self, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        LogStore::commit_offsets(self, group, offsets)
    }
    fn committed_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        Ok(LogStore::committed_offsets(self, group))
    }
    fn list_groups(&self) -> Result<Vec<String>> {
        Ok(self.group_names())
    }
}
