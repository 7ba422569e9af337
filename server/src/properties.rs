//! `server.properties`: the Kafka broker settings a user already has, read into Sluice's
//! (the listener, the data directory, topic defaults, auto-creation, group timings). The
//! file is Java's properties format; settings Sluice has no use for (replication, ZooKeeper,
//! SASL…) are listed back to the caller, which reports them, never an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_storage::TopicConfig;

use crate::kafka::KafkaConfig;

/// What a properties file sets.
#[derive(Debug, Default)]
pub struct BrokerProperties {
    /// The first PLAINTEXT listener's `host:port` (`listeners`).
    pub listener: Option<String>,
    /// The first of `log.dirs` (or `log.dir`).
    pub log_dir: Option<PathBuf>,
    /// Settings read into the Kafka listener's config (defaults for the rest).
    pub kafka: KafkaConfig,
    /// Keys present in the file that Sluice does not use.
    pub ignored: Vec<String>,
}

/// Reads a properties file; a value Sluice cannot use is an error naming the key.
pub fn load(path: &Path) -> Result<BrokerProperties, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    from_text(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn from_text(text: &str) -> Result<BrokerProperties, String> {
    let pairs = parse(text);
    let mut out = BrokerProperties::default();
    let mut topic = TopicConfig::default();
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str| -> Result<Option<i64>, String> {
        get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("'{key}' must be a number, got '{v}'"))
            })
            .transpose()
    };
    let topic_setting = |topic: &mut TopicConfig, name: &str, value: &str, key: &str| {
        topic.set(name, value).map_err(|e| format!("'{key}': {e}"))
    };
    // Retention: Kafka takes .ms over .minutes over .hours.
    let retention_ms = match (
        number("log.retention.ms")?,
        number("log.retention.minutes")?,
        number("log.retention.hours")?,
    ) {
        (Some(ms), _, _) => Some(ms),
        (None, Some(m), _) => Some(m.saturating_mul(60_000)),
        (None, None, Some(h)) => Some(h.saturating_mul(3_600_000)),
        _ => None,
    };
    if let Some(ms) = retention_ms {
        topic_setting(
            &mut topic,
            "retention.ms",
            &ms.to_string(),
            "log.retention.*",
        )?;
    }
    let roll_ms = match (number("log.roll.ms")?, number("log.roll.hours")?) {
        (Some(ms), _) => Some(ms),
        (None, Some(h)) => Some(h.saturating_mul(3_600_000)),
        _ => None,
    };
    if let Some(ms) = roll_ms {
        topic_setting(&mut topic, "segment.ms", &ms.to_string(), "log.roll.*")?;
    }
    for (key, name) in [
        ("log.retention.bytes", "retention.bytes"),
        ("log.segment.bytes", "segment.bytes"),
        ("log.cleanup.policy", "cleanup.policy"),
        ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
        ("message.max.bytes", "max.message.bytes"),
    ] {
        if let Some(v) = get(key) {
            topic_setting(&mut topic, name, v, key)?;
        }
    }
    if let Some(v) = get("log.flush.interval.ms") {
        topic_setting(
            &mut topic,
            "flush.policy",
            "interval",
            "log.flush.interval.ms",
        )?;
        topic_setting(&mut topic, "flush.ms", v, "log.flush.interval.ms")?;
    }
    out.kafka.topic_defaults = topic;
    if let Some(v) = get("auto.create.topics.enable") {
        out.kafka.auto_create_topics = match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(format!(
                    "'auto.create.topics.enable' must be true or false, got '{v}'"
                ));
            }
        };
    }
    if let Some(n) = number("num.partitions")? {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            return Err(format!("'num.partitions' must be at least 1, got {n}"));
        }
        out.kafka.default_partitions = n as u32;
    }
    if let Some(n) = number("socket.request.max.bytes")? {
        if n < 1 {
            return Err(format!(
                "'socket.request.max.bytes' must be positive, got {n}"
            ));
        }
        out.kafka.max_request_bytes = n as usize;
    }
    let millis = |key: &str| -> Result<Option<Duration>, String> {
        match number(key)? {
            Some(n) if n < 0 => Err(format!("'{key}' must not be negative, got {n}")),
            Some(n) => Ok(Some(Duration::from_millis(n as u64))),
            None => Ok(None),
        }
    };
    let groups = &mut out.kafka.groups;
    if let Some(d) = millis("group.initial.rebalance.delay.ms")? {
        groups.initial_rebalance_delay = d;
    }
    if let Some(d) = millis("group.min.session.timeout.ms")? {
        groups.min_session_timeout = d;
    }
    if let Some(d) = millis("group.max.session.timeout.ms")? {
        groups.max_session_timeout = d;
    }
    if let Some(v) = get("listeners") {
        out.listener = Some(plaintext_listener(v)?);
    }
    out.log_dir = get("log.dirs")
        .or_else(|| get("log.dir"))
        .and_then(|v| v.split(',').map(str::trim).find(|d| !d.is_empty()))
        .map(PathBuf::from);
    let mut ignored: Vec<String> = pairs
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !USED.contains(&k.as_str()))
        .collect();
    ignored.sort();
    ignored.dedup();
    out.ignored = ignored;
    Ok(out)
}

/// Every key `from_text` reads.
const USED: &[&str] = &[
    "listeners",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "auto.create.topics.enable",
    "socket.request.max.bytes",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.segment.bytes",
    "log.cleanup.policy",
    "log.cleaner.delete.retention.ms",
    "message.max.bytes",
    "log.flush.interval.ms",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
];

/// `PLAINTEXT://host:port` (the first plaintext one of a list) as `host:port`; an empty
/// host means every interface, as in Kafka.
fn plaintext_listener(value: &str) -> Result<String, String> {
    for listener in value.split(',').map(str::trim) {
        let Some((name, address)) = listener.split_once("://") else {
            return Err(format!("'listeners': '{listener}' is not NAME://host:port"));
        };
        if name.eq_ignore_ascii_case("PLAINTEXT") {
            let address = match address.strip_prefix(':') {
                Some(port) => format!("0.0.0.0:{port}"),
                None => address.to_string(),
            };
            return Ok(address);
        }
    }
    Err(format!(
        "'listeners': no PLAINTEXT listener in '{value}' (Sluice serves plaintext only)"
    ))
}

/// Java properties: `key=value`, `key: value` or `key value`; `#` and `!` comments; a
/// trailing backslash continues the line; escapes `\t \n \\ \=` and `\uXXXX`.
fn parse(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        pairs.push(split_pair(&logical));
        logical.clear();
    }
    if !logical.is_empty() {
        pairs.push(split_pair(&logical));
    }
    pairs
}

fn split_pair(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(e) = chars.next() {
                    key.push(unescape(e, &mut chars));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // Whitespace, then optionally one separator.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(e) = chars.next() {
                value.push(unescape(e, &mut chars));
            }
        } else {
            value.push(c);
        }
    }
    (key, value.trim_end().to_string())
}

fn unescape(e: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    match e {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        'u' => {
            let hex: String = (0..4).filter_map(|_| rest.next()).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}')
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_settings_of_a_kafka_server_properties() {
        let text = "\
# Kafka's sample, trimmed
broker.id=0
listeners=PLAINTEXT://127.0.0.1:19092,SSL://:9093
log.dirs=/var/lib/kafka-logs,/other
num.partitions = 3
log.retention.hours=168
log.retention.minutes=90
log.segment.bytes: 1048576
auto.create.topics.enable=false
zookeeper.connect=localhost:2181
group.initial.rebalance.delay.ms=0
log.cleanup.policy=compact,\\
    delete
";
        let p = from_text(text).unwrap();
        assert_eq!(p.listener.as_deref(), Some("127.0.0.1:19092"));
        assert_eq!(p.log_dir, Some(PathBuf::from("/var/lib/kafka-logs")));
        assert_eq!(p.kafka.default_partitions, 3);
        assert!(!p.kafka.auto_create_topics);
        // minutes win over hours
        assert_eq!(p.kafka.topic_defaults.retention_ms, 90 * 60_000);
        assert_eq!(p.kafka.topic_defaults.segment_bytes, 1_048_576);
        assert!(p.kafka.topic_defaults.compact && p.kafka.topic_defaults.delete);
        assert_eq!(p.kafka.groups.initial_rebalance_delay, Duration::ZERO);
        assert_eq!(p.ignored, vec!["broker.id", "zookeeper.connect"]);
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let e = from_text("num.partitions=many").unwrap_err();
        assert!(e.contains("num.partitions"), "{e}");
        let e = from_text("log.segment.bytes=3").unwrap_err();
        assert!(e.contains("log.segment.bytes"), "{e}");
        let e = from_text("listeners=SSL://:9093").unwrap_err();
        assert!(e.contains("PLAINTEXT"), "{e}");
        let e = from_text("auto.create.topics.enable=yes").unwrap_err();
        assert!(e.contains("auto.create.topics.enable"), "{e}");
    }

    #[test]
    fn empty_host_listens_everywhere() {
        let p = from_text("listeners=PLAINTEXT://:9092").unwrap();
        assert_eq!(p.listener.as_deref(), Some("0.0.0.0:9092"));
    }
}
