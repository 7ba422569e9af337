//! The processing log: records a query skipped, and why, written as ksqlDB writes them to
//! the topic behind the `KSQL_PROCESSING_LOG` stream (ksqlDB's name, schema and JSON
//! layout), so a user finds them with `SELECT * FROM KSQL_PROCESSING_LOG EMIT CHANGES`.

use base64::Engine as _;
use serde_json::{Value, json};
use sluice_storage::{BatchBuilder, Compression, EventLog, TopicConfig};

use crate::query::now_ms;

/// ksqlDB's default processing-log topic (`ksql.service.id` "default_" + "ksql_processing_log").
pub const TOPIC: &str = "default_ksql_processing_log";
pub const STREAM: &str = "KSQL_PROCESSING_LOG";

/// The statement that declares the processing-log stream, with ksqlDB's schema.
pub const CREATE_STREAM: &str = "CREATE STREAM KSQL_PROCESSING_LOG (\
LOGGER STRING, LEVEL STRING, TIME BIGINT, \
MESSAGE STRUCT<\
TYPE INT, \
DESERIALIZATIONERROR STRUCT<TARGET STRING, ERRORMESSAGE STRING, RECORDB64 STRING, CAUSE ARRAY<STRING>, `topic` STRING>, \
RECORDPROCESSINGERROR STRUCT<ERRORMESSAGE STRING, RECORD STRING, CAUSE ARRAY<STRING>>, \
PRODUCTIONERROR STRUCT<ERRORMESSAGE STRING>, \
SERIALIZATIONERROR STRUCT<TARGET STRING, ERRORMESSAGE STRING, RECORD STRING, CAUSE ARRAY<STRING>, `topic` STRING>, \
KAFKASTREAMSTHREADERROR STRUCT<ERRORMESSAGE STRING, THREADNAME STRING, CAUSE ARRAY<STRING>>>) \
WITH (KAFKA_TOPIC='default_ksql_processing_log', VALUE_FORMAT='JSON', PARTITIONS=1)";

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessingError {
    /// The key or value did not decode (ksqlDB message type 0).
    Deserialization {
        query_id: String,
        target: &'static str,
        message: String,
        record: Option<Vec<u8>>,
        topic: String,
    },
    /// An expression failed on the record (type 1).
    RecordProcessing {
        query_id: String,
        message: String,
        record: String,
    },
    /// The result did not encode in the sink's format (type 3).
    Serialization {
        query_id: String,
        message: String,
        record: String,
        topic: String,
    },
}

impl ProcessingError {
    /// The processing-log record's value, as ksqlDB's JSON.
    pub fn to_json(&self, time: i64) -> Value {
        let (logger, message) = match self {
            ProcessingError::Deserialization {
                query_id,
                target,
                message,
                record,
                topic,
            } => (
                format!("processing.{query_id}.KsqlTopic.Source.deserializer"),
                json!({
                    "TYPE": 0,
                    "DESERIALIZATIONERROR": {
                        "TARGET": target,
                        "ERRORMESSAGE": message,
                        "RECORDB64": record.as_ref().map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
                        "CAUSE": [],
                        "topic": topic,
                    },
                    "RECORDPROCESSINGERROR": null,
                    "PRODUCTIONERROR": null,
                    "SERIALIZATIONERROR": null,
                    "KAFKASTREAMSTHREADERROR": null,
                }),
            ),
            ProcessingError::RecordProcessing {
                query_id,
                message,
                record,
            } => (
                format!("processing.{query_id}.Project"),
                json!({
                    "TYPE": 1,
                    "DESERIALIZATIONERROR": null,
                    "RECORDPROCESSINGERROR": {
                        "ERRORMESSAGE": message,
                        "RECORD": record,
                        "CAUSE": [],
                    },
                    "PRODUCTIONERROR": null,
                    "SERIALIZATIONERROR": null,
                    "KAFKASTREAMSTHREADERROR": null,
                }),
            ),
            ProcessingError::Serialization {
                query_id,
                message,
                record,
                topic,
            } => (
                format!("processing.{query_id}.KsqlTopic.Sink.serializer"),
                json!({
                    "TYPE": 3,
                    "DESERIALIZATIONERROR": null,
                    "RECORDPROCESSINGERROR": null,
                    "PRODUCTIONERROR": null,
                    "SERIALIZATIONERROR": {
                        "TARGET": "value",
                        "ERRORMESSAGE": message,
                        "RECORD": record,
                        "CAUSE": [],
                        "topic": topic,
                    },
                    "KAFKASTREAMSTHREADERROR": null,
                }),
            ),
        };
        json!({"LOGGER": logger, "LEVEL": "ERROR", "TIME": time, "MESSAGE": message})
    }
}

/// Where skipped records are reported. Disabled, errors only go to the tracing log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingLog {
    pub enabled: bool,
}

impl ProcessingLog {
    /// Creates the topic if needed.
    pub fn ensure_topic(&self, log: &dyn EventLog) -> Result<(), sluice_storage::StorageError> {
        if self.enabled && log.describe_topic(TOPIC).is_err() {
            log.create_topic(TOPIC, 1, TopicConfig::default())?;
        }
        Ok(())
    }

    /// Appends one record per error. Failing to write the processing log never fails the
    /// query: it is reported on stderr instead.
    pub fn write(&self, log: &dyn EventLog, errors: &[ProcessingError]) {
        for e in errors {
            tracing::warn!(error = ?e, "skipped a record");
        }
        if !self.enabled || errors.is_empty() {
            return;
        }
        let time = now_ms();
        let mut b = BatchBuilder::new(Compression::None);
        for e in errors {
            let value = e.to_json(time).to_string();
            b.push(time, None, Some(value.as_bytes()), &[]);
        }
        let result = self
            .ensure_topic(log)
            .and_then(|()| b.finish())
            .and_then(|mut bytes| log.append(TOPIC, 0, &mut bytes).map(|_| ()));
        if let Err(e) = result {
            tracing::error!(error = %e, "writing the processing log failed");
        }
    }
}
