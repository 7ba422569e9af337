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
    /// Counts one row and adds its numeric columns to the sums.
    fn add(&mut self, value: &[u8]) {
        self.rows += 1;
        match serde_json::from_slice::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(fields)) => {
                for (name, v) in fields {
                    if let Some(n) = v.as_f64() {
                        *self.sums.entry(name.to_lowercase()).or_default() += n;
                    }
                }
            }
            _ => self.unreadable += 1,
        }
    }
}

pub fn format_sum(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6e}")
    }
}

/// Reads the whole topic and summarises it: a stream's records as they are read, a
/// table's last value per key at the end.
pub fn summarize(store: &LogStore, topic: &str, table: bool) -> Result<OutputSummary> {
    let t = store
        .topic(topic)
        .with_context(|| format!("the query's output topic {topic}"))?;
    let mut summary = OutputSummary {
        topic: topic.to_string(),
        ..Default::default()
    };
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
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
                    if table {
                        let key = rec.key.map(<[u8]>::to_vec).unwrap_or_default();
                        latest.insert(key, rec.value.map(<[u8]>::to_vec));
                    } else if let Some(value) = rec.value {
                        summary.add(value);
                    }
                    Ok(())
                })?;
            }
        }
    }
    for value in latest.values().flatten() {
        summary.add(value);
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
