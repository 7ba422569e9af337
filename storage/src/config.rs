//! Per-topic configuration with Kafka's names and defaults, plus Sluice's `flush.policy`.
//! Parsed from `key=value` pairs, validated, and stored as JSON beside the topic.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// When an append is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushPolicy {
    /// fsync before acknowledging (group commit shares one fsync among concurrent appends).
    Always,
    /// fsync at least every `flush.ms`; a crash may lose up to that much acknowledged data.
    Interval,
    /// fsync only when a segment rolls (and at clean shutdown).
    OnRoll,
}

impl FlushPolicy {
    pub fn name(self) -> &'static str {
        match self {
            FlushPolicy::Always => "always",
            FlushPolicy::Interval => "interval",
            FlushPolicy::OnRoll => "on-roll",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicConfig {
    /// Milliseconds a segment is kept after its newest record; -1 = forever.
    pub retention_ms: i64,
    /// Bytes a partition may keep before old segments go; -1 = unlimited.
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub compact: bool,
    pub delete: bool,
    pub delete_retention_ms: i64,
    pub flush_policy: FlushPolicy,
    pub flush_ms: u64,
    pub max_message_bytes: u64,
    /// Kafka topic configs that Sluice accepts and keeps (and shows) without acting on
    /// them: replication, index and cleaner tuning a single node with its own log does not
    /// have (`KAFKA_ONLY_CONFIGS`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kafka_only: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            retention_ms: 604_800_000,
            retention_bytes: -1,
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            compact: false,
            delete: true,
            delete_retention_ms: 86_400_000,
            flush_policy: FlushPolicy::Always,
            flush_ms: 1000,
            max_message_bytes: 1_048_588,
            kafka_only: BTreeMap::new(),
        }
    }
}

/// Every config name a topic accepts, in the order `describe` prints them.
pub const CONFIG_NAMES: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
    "flush.ms",
    "flush.policy",
    "max.message.bytes",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

/// Kafka's other topic configs: accepted and kept so that tools which set them (Kafka
/// Connect, admin scripts) work, with no effect here. Those whose other values would change
/// what is stored accept only the value that matches what Sluice does
/// (`message.timestamp.type`); `compression.type` takes Kafka's values, but batches stay as
/// their producer compressed them.
pub const KAFKA_ONLY_CONFIGS: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "file.delete.delay.ms",
    "flush.messages",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value.trim().parse().map_err(|_| {
        StorageError::InvalidConfig(format!("invalid value '{value}' for '{key}': not a number"))
    })
}

impl TopicConfig {
    /// Applies one `name=value` setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |why: &str| {
            StorageError::InvalidConfig(format!("invalid value '{value}' for '{key}': {why}"))
        };
        match key {
            "retention.ms" => {
                self.retention_ms = parse_num(key, value)?;
                if self.retention_ms < -1 {
                    return Err(bad("must be -1 or at least 0"));
                }
            }
            "retention.bytes" => {
                self.retention_bytes = parse_num(key, value)?;
                if self.retention_bytes < -1 {
                    return Err(bad("must be -1 or at least 0"));
                }
            }
            "segment.bytes" => {
                self.segment_bytes = parse_num(key, value)?;
                if self.segment_bytes < 14 || self.segment_bytes > i32::MAX as u64 {
                    return Err(bad("must be between 14 and 2147483647 (as in Kafka)"));
                }
            }
            "segment.ms" => {
                self.segment_ms = parse_num(key, value)?;
                if self.segment_ms < 1 {
                    return Err(bad("must be at least 1"));
                }
            }
            "cleanup.policy" => {
                let mut compact = false;
                let mut delete = false;
                for part in value.split(',').map(str::trim) {
                    match part {
                        "compact" => compact = true,
                        "delete" => delete = true,
                        _ => return Err(bad("expected 'delete', 'compact' or 'compact,delete'")),
                    }
                }
                self.compact = compact;
                self.delete = delete;
            }
            "delete.retention.ms" => {
                self.delete_retention_ms = parse_num(key, value)?;
                if self.delete_retention_ms < 0 {
                    return Err(bad("must be at least 0"));
                }
            }
            "flush.policy" => {
                self.flush_policy = match value.trim() {
                    "always" => FlushPolicy::Always,
                    "interval" => FlushPolicy::Interval,
                    "on-roll" => FlushPolicy::OnRoll,
                    _ => return Err(bad("expected 'always', 'interval' or 'on-roll'")),
                }
            }
            "flush.ms" => {
                self.flush_ms = parse_num(key, value)?;
                if self.flush_ms == 0 {
                    return Err(bad("must be at least 1"));
                }
            }
            "max.message.bytes" => {
                self.max_message_bytes = parse_num(key, value)?;
                if self.max_message_bytes < 100 || self.max_message_bytes > i32::MAX as u64 {
                    return Err(bad("must be between 100 and 2147483647"));
                }
            }
            // Kept, not acted on: batches are stored as their producer compressed them.
            "compression.type"
                if !matches!(
                    value.trim(),
                    "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
                ) =>
            {
                return Err(bad(
                    "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
                ));
            }
            "message.timestamp.type" if value.trim() != "CreateTime" => {
                return Err(bad("Sluice keeps producers' timestamps: only 'CreateTime'"));
            }
            other if KAFKA_ONLY_CONFIGS.contains(&other) => {
                self.kafka_only
                    .insert(other.to_string(), value.trim().to_string());
            }
            other => {
                return Err(StorageError::InvalidConfig(format!(
                    "unknown topic config '{other}' (known: {})",
                    CONFIG_NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Sets `key` back to its default (Kafka's config deletion).
    pub fn reset(&mut self, key: &str) -> Result<()> {
        if KAFKA_ONLY_CONFIGS.contains(&key) {
            self.kafka_only.remove(key);
            return Ok(());
        }
        match TopicConfig::default().get(key) {
            Some(default) => self.set(key, &default),
            None => Err(StorageError::InvalidConfig(format!(
                "unknown topic config '{key}' (known: {})",
                CONFIG_NAMES.join(", ")
            ))),
        }
    }

    /// Builds a config from defaults plus `name=value` overrides.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut c = TopicConfig::default();
        for (k, v) in pairs {
            c.set(k.trim(), v)?;
        }
        Ok(c)
    }

    /// The value of one named setting, as Kafka prints it.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "cleanup.policy" => match (self.compact, self.delete) {
                (true, true) => "compact,delete".into(),
                (true, false) => "compact".into(),
                _ => "delete".into(),
            },
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "flush.policy" => self.flush_policy.name().into(),
            "flush.ms" => self.flush_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            _ => return None,
        })
    }

    /// All settings, name -> value (Kafka-only ones when set).
    pub fn entries(&self) -> BTreeMap<&'static str, String> {
        let kept = KAFKA_ONLY_CONFIGS
            .iter()
            .filter_map(|k| self.kafka_only.get(*k).map(|v| (*k, v.clone())));
        CONFIG_NAMES
            .iter()
            .filter_map(|k| self.get(k).map(|v| (*k, v)))
            .chain(kept)
            .collect()
    }

    /// The settings that differ from the defaults.
    pub fn overrides(&self) -> BTreeMap<&'static str, String> {
        let d = TopicConfig::default().entries();
        self.entries()
            .into_iter()
            .filter(|(k, v)| d.get(k) != Some(v))
            .collect()
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_ms)
    }
}

/// Kafka's topic-name rules (Topic.validate): 1 to 249 characters of ASCII alphanumerics,
/// '.', '_' and '-', and not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<()> {
    let err = |m: String| Err(StorageError::InvalidTopicName(m));
    if name.is_empty() {
        return err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = TopicConfig::from_pairs([("cleanup.policy", "compact"), ("segment.bytes", "1024")])
            .unwrap();
        assert!(c.compact && !c.delete);
        assert_eq!(c.flush_policy, FlushPolicy::Always);
        let o = c.overrides();
        assert_eq!(o.len(), 2);
        assert_eq!(o["cleanup.policy"], "compact");
    }

    #[test]
    fn kafka_only_configs_are_kept_and_reset() {
        let mut c = TopicConfig::from_pairs([
            ("min.insync.replicas", "2"),
            ("compression.type", "producer"),
            ("retention.ms", "5"),
        ])
        .unwrap();
        assert_eq!(c.overrides()["min.insync.replicas"], "2");
        assert_eq!(c.overrides()["compression.type"], "producer");
        assert!(TopicConfig::from_pairs([("compression.type", "gzip")]).is_ok());
        assert!(TopicConfig::from_pairs([("compression.type", "brotli")]).is_err());
        assert!(TopicConfig::from_pairs([("message.timestamp.type", "LogAppendTime")]).is_err());
        c.reset("min.insync.replicas").unwrap();
        c.reset("retention.ms").unwrap();
        assert_eq!(c.retention_ms, TopicConfig::default().retention_ms);
        assert_eq!(
            c.overrides().into_keys().collect::<Vec<_>>(),
            ["compression.type"]
        );
        assert!(c.reset("no.such.config").is_err());
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        assert!(TopicConfig::from_pairs([("retention.days", "1")]).is_err());
        assert!(TopicConfig::from_pairs([("retention.ms", "soon")]).is_err());
        assert!(TopicConfig::from_pairs([("flush.policy", "sometimes")]).is_err());
        assert!(TopicConfig::from_pairs([("cleanup.policy", "compact,shred")]).is_err());
    }

    #[test]
    fn topic_names_follow_kafka() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name("ü").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }
}
