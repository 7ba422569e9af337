//! The command topic `_sluice_commands`: the durable catalog. Every statement that changes
//! the catalog (CREATE, DROP, INSERT INTO … SELECT, TERMINATE, types) is appended once it was
//! accepted, with the properties in effect and, for a statement that starts a query, the
//! source offsets the query starts from. An engine opening a data directory replays the
//! topic in order, so streams, tables, types and queries come back as they were and a
//! query's start never depends on when the replay happens.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_storage::batch::{self, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, TopicConfig};

use crate::engine::EngineError;

pub const TOPIC: &str = "_sluice_commands";

/// One accepted statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Command {
    pub statement: String,
    /// Session properties in effect (`SET`), which can change what a statement means.
    pub properties: BTreeMap<String, String>,
    /// Start offset per source partition of the query the statement started, if any.
    pub start_offsets: Option<Vec<u64>>,
}

impl Command {
    fn to_json(&self) -> Value {
        json!({
            "statement": self.statement,
            "properties": self.properties,
            "start_offsets": self.start_offsets,
        })
    }

    fn from_json(v: &Value) -> Option<Command> {
        Some(Command {
            statement: v.get("statement")?.as_str()?.to_string(),
            properties: v
                .get("properties")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            start_offsets: v
                .get("start_offsets")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<u64>>()),
        })
    }
}

/// Creates the command topic if it does not exist: one partition, kept forever, every
/// append fsynced before it is acknowledged.
pub fn ensure_topic(log: &dyn EventLog) -> Result<(), EngineError> {
    if log.describe_topic(TOPIC).is_err() {
        let config = TopicConfig {
            retention_ms: -1,
            retention_bytes: -1,
            flush_policy: sluice_storage::FlushPolicy::Always,
            ..TopicConfig::default()
        };
        log.create_topic(TOPIC, 1, config)?;
    }
    Ok(())
}

/// Appends a command durably.
pub fn append(log: &dyn EventLog, command: &Command) -> Result<(), EngineError> {
    let mut b = BatchBuilder::new(Compression::None);
    let value = command.to_json().to_string();
    b.push(crate::query::now_ms(), None, Some(value.as_bytes()), &[]);
    let mut bytes = b.finish()?;
    log.append(TOPIC, 0, &mut bytes)?;
    Ok(())
}

/// Every command in the topic, in order. A record that is not a command (written by
/// something else) is skipped with a warning.
pub fn read_all(log: &dyn EventLog) -> Result<Vec<Command>, EngineError> {
    let (mut offset, end) = log.offsets(TOPIC, 0)?;
    let mut out = Vec::new();
    while offset < end {
        let r = log.read(TOPIC, 0, offset, 1 << 20)?;
        let mut next = offset;
        for b in Batches::new(&r.data) {
            let h = batch::BatchHeader::parse(b)?;
            batch::for_each_record(b, |rec| {
                if (rec.offset as u64) < offset {
                    return Ok(());
                }
                let parsed = rec
                    .value
                    .and_then(|v| serde_json::from_slice::<Value>(v).ok())
                    .and_then(|v| Command::from_json(&v));
                match parsed {
                    Some(c) => out.push(c),
                    None => tracing::warn!(
                        offset = rec.offset,
                        "skipping a record of {TOPIC} that is not a command"
                    ),
                }
                Ok(())
            })?;
            next = h.next_offset();
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(out)
}
