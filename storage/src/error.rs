//! Typed errors of the storage crate. `Corrupted` (bytes on disk or on the wire that do not
//! form a valid Kafka record batch) is kept apart from `Io` (the operating system said no), so
//! callers can tell a damaged log from a full disk.

use std::path::PathBuf;

/// Result alias used throughout the storage crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupted data: {0}")]
    Corrupted(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Whole, well-formed records that a rule of the topic refuses (Kafka's
    /// InvalidRecordException: a record without a key on a compacted topic); `records` are
    /// the refused records' indexes in their batch (Kafka's record errors).
    #[error("{message}")]
    RecordRefused { message: String, records: Vec<u32> },
    #[error("{0}")]
    InvalidTopicName(String),
    #[error("invalid topic config: {0}")]
    InvalidConfig(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("unknown partition {partition} of topic '{topic}' (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error(
        "offset {offset} is out of range for {topic}-{partition}: valid offsets are {start}..={end}"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    #[error("the data directory {dir} is in use by another process (pid {holder})")]
    Locked { dir: PathBuf, holder: String },
    #[error("the log is closed")]
    Closed,
    /// A remote log (a Kafka cluster over the wire protocol) answered with an error.
    #[error("{0}")]
    Remote(String),
}

impl StorageError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corrupted(msg: impl Into<String>) -> Self {
        StorageError::Corrupted(msg.into())
    }

    pub fn invalid_record(msg: impl Into<String>) -> Self {
        StorageError::InvalidRecord(msg.into())
    }
}
