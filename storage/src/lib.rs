//! sluice-storage: Sluice's event log. Topics are split into partitions; a partition is a
//! directory of segments holding Kafka RecordBatch v2 bytes exactly as Kafka writes them,
//! with sparse offset and time indexes. Appends are durable under a per-topic flush policy
//! (with group commit), recovery truncates at the first torn or corrupt batch, retention and
//! compaction follow Kafka's rules, and consumer-group offsets live in `__consumer_offsets`.
//! It knows nothing of SQL, schemas or Arrow. The on-disk format is in docs/format.md.

pub mod api;
pub mod batch;
mod cleaner;
pub mod compression;
pub mod config;
pub mod error;
pub mod fs;
pub mod groups;
pub mod index;
pub mod partition;
pub mod partitioner;
pub mod read_buffers;
pub mod read_bytes;
mod retention;
pub mod segment;
pub mod sim_fs;
pub mod store;
pub mod varint;

pub use api::EventLog;
pub use batch::{BatchBuilder, BatchHeader, OwnedRecord, Record, SealedBatch};
pub use cleaner::CleanStats;
pub use compression::Compression;
pub use config::{FlushPolicy, TopicConfig};
pub use error::{Result, StorageError};
pub use groups::CommittedOffset;
pub use partition::{AppendInfo, PartitionLog, ReadResult};
pub use read_bytes::ReadBytes;
pub use sim_fs::SimFs;
pub use store::{LogStore, MaintenanceOptions, PartitionInfo, StoreOptions, TopicInfo};
