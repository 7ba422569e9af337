//! Writing a query's output: records batched per sink partition (keyed records where
//! Kafka's partitioner puts the key, unkeyed ones in step with the input partition), each
//! batch appended once it nears the topic's largest message; windowed keys laid out as
//! Kafka Streams lays them out.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{BatchBuilder, Compression, EventLog};

use crate::engine::EngineError;
use crate::query::RecordHeaders;

/// Largest batch a query appends to its sink (a topic takes up to about 1 MB by default).
const SINK_BATCH_BYTES: usize = 512 * 1024;

/// A sink's batches being filled, one per partition; a full one is appended at once.
pub(crate) struct SinkBatches<'a> {
    topic: &'a str,
    partitions: u32,
    /// Where unkeyed records go: the input partition's number, modulo the sink's.
    input_partition: u32,
    builders: BTreeMap<u32, BatchBuilder>,
}

impl<'a> SinkBatches<'a> {
    pub(crate) fn new(topic: &'a str, partitions: u32, input_partition: u32) -> Self {
        SinkBatches {
            topic,
            partitions,
            input_partition,
            builders: BTreeMap::new(),
        }
    }

    /// Adds a record: keyed output goes where Kafka's partitioner puts the key, unkeyed
    /// stays in step with the input partition.
    pub(crate) fn push(
        &mut self,
        log: &dyn EventLog,
        time: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<&RecordHeaders>,
    ) -> Result<(), EngineError> {
        let p = key.map_or(self.input_partition % self.partitions, |k| {
            partition_for_key(k, self.partitions)
        });
        let header_refs: Vec<(&str, Option<&[u8]>)> = headers
            .map(|hs| hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect())
            .unwrap_or_default();
        let b = self.builders.entry(p).or_insert_with(new_batch);
        b.push(time, key, value, &header_refs);
        // Batches stay well under the topic's largest message.
        if b.size_estimate() >= SINK_BATCH_BYTES {
            let full = std::mem::replace(b, new_batch());
            let mut bytes = full.finish()?;
            log.append(self.topic, p, &mut bytes)?;
        }
        Ok(())
    }

    /// Appends what is left.
    pub(crate) fn finish(self, log: &dyn EventLog) -> Result<(), EngineError> {
        for (p, b) in self.builders {
            if b.is_empty() {
                continue;
            }
            let mut bytes = b.finish()?;
            log.append(self.topic, p, &mut bytes)?;
        }
        Ok(())
    }
}

/// A sink batch with room for all it will hold (it never grows record by record).
fn new_batch() -> BatchBuilder {
    BatchBuilder::with_capacity(Compression::None, SINK_BATCH_BYTES + 16 * 1024)
}

/// A windowed aggregation's key as Kafka Streams writes it: the key's bytes, then the window
/// start (8 bytes, big-endian) for time windows, or the end then the start for sessions.
pub(crate) fn windowed_key(
    key: Option<&[u8]>,
    kind: &sluice_sql::ast::WindowKind,
    aggregated: &RecordBatch,
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), EngineError> {
    let bound = |i: usize| {
        aggregated
            .column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(row))
            .ok_or_else(|| EngineError("window bounds are not BIGINT".into()))
    };
    out.clear();
    out.extend_from_slice(key.unwrap_or_default());
    if matches!(kind, sluice_sql::ast::WindowKind::Session { .. }) {
        out.extend_from_slice(&bound(4)?.to_be_bytes());
    }
    out.extend_from_slice(&bound(3)?.to_be_bytes());
    Ok(())
}

/// Splits each windowed key into the key's own bytes (left in `keys`) and its window's
/// bounds: (starts, ends). A time window's end is its start plus the window size; a key
/// too short to hold a window keeps its bytes and gets null bounds.
pub(crate) fn split_windows(
    keys: &mut [Option<&[u8]>],
    kind: sluice_sql::ast::WindowKind,
) -> (Int64Array, Int64Array) {
    use sluice_sql::ast::WindowKind;
    let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let mut starts = Vec::with_capacity(keys.len());
    let mut ends = Vec::with_capacity(keys.len());
    for key in keys.iter_mut() {
        let Some(k) = *key else {
            starts.push(None);
            ends.push(None);
            continue;
        };
        match kind {
            WindowKind::Session { .. } if k.len() >= 16 => {
                let at = k.len() - 16;
                ends.push(Some(be(&k[at..at + 8])));
                starts.push(Some(be(&k[at + 8..])));
                *key = Some(&k[..at]);
            }
            WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } if k.len() >= 8 => {
                let at = k.len() - 8;
                let start = be(&k[at..]);
                starts.push(Some(start));
                ends.push(Some(start.saturating_add(size.millis as i64)));
                *key = Some(&k[..at]);
            }
            _ => {
                starts.push(None);
                ends.push(None);
            }
        }
    }
    (Int64Array::from(starts), Int64Array::from(ends))
}
