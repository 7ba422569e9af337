//! A query's result in numbers a peer's result can be checked against: its row count and
//! the sum of every numeric column. A stream's result is every record of its topic; a
//! table's is the last value of every key (tombstones delete).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use sluice_storage::LogStore;
use sluice_storage::batch::{Batches, for_each_record};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputSummary {
    pub topic: String,
    pub rows: u64,
    /// Column (lower case) -> sum of its numeric values.
    pub sums: BTreeMap<String, f64>,
    /// Rows whose value was not a JSON object.
    pub unreadable: u64,
}

impl OutputSummary {
    pub fn describe(&self) -> String {
        let sums: Vec<String> = self
            .sums
            .iter()
            .map(|(k, v)| format!("sum({k})={}", format_sum(*v)))
            .collect();
        format!("{}: {} rows; {}", self.topic, self.rows, sums.join(", "))
    }
}

pub fn format_sum(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6e}")
    }
}

/// Reads the whole topic and summarises it.
pub fn summarize(store: &LogStore, topic: &str, table: bool) -> Result<OutputSummary> {
    let t = store
        .topic(topic)
        .with_context(|| format!("the query's output topic {topic}"))?;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    for p in &t.partitions {
        let mut offset = p.log_start_offset();
        loop {
            let r = p.read(offset, 4 << 20)?;
            if r.data.is_empty() {
                break;
            }
            for batch in Batches::new(&r.data) {
                for_each_record(batch, |rec| {
                    offset = rec.offset as u64 + 1;
                    let value = rec.value.map(<[u8]>::to_vec);
                    if table {
                        let key = rec.key.map(<[u8]>::to_vec).unwrap_or_default();
                        if !latest.contains_key(&key) {
                            order.push(key.clone());
                        }
                        latest.insert(key, value);
                    } else if let Some(v) = value {
                        rows.push(v);
                    }
                    Ok(())
                })?;
            }
        }
    }
    if table {
        rows = order
            .into_iter()
            .filter_map(|k| latest.remove(&k).flatten())
            .collect();
    }
    let mut summary = OutputSummary {
        topic: topic.to_string(),
        ..Default::default()
    };
    for value in &rows {
        summary.rows += 1;
        match serde_json::from_slice::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(fields)) => {
                for (name, v) in fields {
                    if let Some(n) = v.as_f64() {
                        *summary.sums.entry(name.to_lowercase()).or_default() += n;
                    }
                }
            }
            _ => summary.unreadable += 1,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::{BatchBuilder, Compression, TopicConfig};

    #[test]
    fn streams_count_every_row_and_tables_the_last_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.create_topic("T", 1, TopicConfig::default()).unwrap();
        let mut b = BatchBuilder::new(Compression::None);
        b.push(1, Some(b"a"), Some(br#"{"X":1,"S":"s"}"#), &[]);
        b.push(2, Some(b"b"), Some(br#"{"X":2.5}"#), &[]);
        b.push(3, Some(b"a"), Some(br#"{"X":10}"#), &[]);
        b.push(4, Some(b"c"), Some(br#"{"X":7}"#), &[]);
        b.push(5, Some(b"c"), None, &[]);
        let mut batch = b.finish().unwrap();
        store.append("T", 0, &mut batch).unwrap();
        let stream = summarize(&store, "T", false).unwrap();
        assert_eq!((stream.rows, stream.sums["x"]), (4, 20.5));
        let table = summarize(&store, "T", true).unwrap();
        assert_eq!((table.rows, table.sums["x"]), (2, 12.5));
        assert!(summarize(&store, "missing", false).is_err());
    }
}
