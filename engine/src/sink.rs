//! Writing a query's output: records batched per sink partition (keyed records where
//! Kafka's partitioner puts the key, unkeyed ones in step with the input partition), a
//! batch closed once it nears the topic's largest message, and a partition's batches of one
//! write appended together (one fsync, the group commit); windowed keys laid out as Kafka
//! Streams lays them out.

use datafusion::arrow::array::{Int64Array, RecordBatch};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{BatchBuilder, Compression, EventLog, SealedBatch};

use crate::engine::EngineError;
use crate::query::RecordHeaders;

/// Largest batch a query appends to its sink (a topic takes up to about 1 MB by default).
const SINK_BATCH_BYTES: usize = 512 * 1024;

/// Closed batches a partition holds before they are appended even though the write goes
/// on: bounds the memory a write that makes much output holds.
const SINK_APPEND_BYTES: usize = 16 << 20;

/// A sink's batches: per partition, the one being filled and the closed ones not appended
/// yet. Each partition's are appended together when the write finishes (or once they
/// reach `SINK_APPEND_BYTES`), so a write costs one fsync per partition, not one per batch.
pub(crate) struct SinkBatches<'a> {
    topic: &'a str,
    partitions: u32,
    /// Where unkeyed records go: the input partition's number, modulo the sink's.
    input_partition: u32,
    /// Indexed by partition number, grown to the highest one written (a lookup per record
    /// is then an index, not a search).
    builders: Vec<PartitionBatches>,
}

#[derive(Default)]
struct PartitionBatches {
    filling: Option<BatchBuilder>,
    closed: Vec<SealedBatch>,
    closed_bytes: usize,
}

impl PartitionBatches {
    /// Appends the closed batches (and the one being filled, when `all`) as one append.
    fn append(
        &mut self,
        log: &dyn EventLog,
        topic: &str,
        p: u32,
        all: bool,
    ) -> Result<(), EngineError> {
        if all && let Some(b) = self.filling.take().filter(|b| !b.is_empty()) {
            self.closed.push(b.seal()?);
        }
        if self.closed.is_empty() {
            return Ok(());
        }
        log.append_sealed(topic, p, &mut self.closed)?;
        self.closed.clear();
        self.closed_bytes = 0;
        Ok(())
    }
}

impl<'a> SinkBatches<'a> {
    pub(crate) fn new(topic: &'a str, partitions: u32, input_partition: u32) -> Self {
        SinkBatches {
            topic,
            partitions,
            input_partition,
            builders: Vec::new(),
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
        let header_refs: Vec<(&str, Option<&[u8]>)> = match headers {
            Some(hs) => hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect(),
            None => Vec::new(),
        };
        let p = self.partition_of(key);
        self.filling(p).push(time, key, value, &header_refs);
        self.close_if_full(log, p)
    }

    /// `push` of a record without headers whose value `write` appends straight into the
    /// batch (`BatchBuilder::push_writing`). Its error is the caller's to report: the
    /// record is then left out.
    pub(crate) fn push_writing<E>(
        &mut self,
        log: &dyn EventLog,
        time: i64,
        key: Option<&[u8]>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Result<(), E>, EngineError> {
        let p = self.partition_of(key);
        if let Err(e) = self.filling(p).push_writing(time, key, write) {
            return Ok(Err(e));
        }
        self.close_if_full(log, p).map(Ok)
    }

    fn partition_of(&self, key: Option<&[u8]>) -> u32 {
        key.map_or(self.input_partition % self.partitions, |k| {
            partition_for_key(k, self.partitions)
        })
    }

    /// Partition `p`'s batch being filled.
    #[inline]
    fn filling(&mut self, p: u32) -> &mut BatchBuilder {
        let at = p as usize;
        if self.builders.len() <= at {
            self.builders.resize_with(at + 1, PartitionBatches::default);
        }
        self.builders[at].filling.get_or_insert_with(new_batch)
    }

    /// Closes partition `p`'s batch once it nears the largest a batch may be (the next
    /// record, if any, starts a new one: no buffer is made for a write that ends here).
    #[inline]
    fn close_if_full(&mut self, log: &dyn EventLog, p: u32) -> Result<(), EngineError> {
        let full = self.builders[p as usize]
            .filling
            .as_ref()
            .is_some_and(|b| b.size_estimate() >= SINK_BATCH_BYTES);
        if full {
            self.close(log, p)?;
        }
        Ok(())
    }

    /// Closes partition `p`'s batch being filled, and appends the closed ones once they
    /// hold `SINK_APPEND_BYTES`.
    #[cold]
    fn close(&mut self, log: &dyn EventLog, p: u32) -> Result<(), EngineError> {
        let batches = &mut self.builders[p as usize];
        if let Some(full) = batches.filling.take() {
            let full = full.seal()?;
            batches.closed_bytes += full.len();
            batches.closed.push(full);
            if batches.closed_bytes >= SINK_APPEND_BYTES {
                batches.append(log, self.topic, p, false)?;
            }
        }
        Ok(())
    }

    /// Appends what is left: each partition's batches in one append.
    pub(crate) fn finish(self, log: &dyn EventLog) -> Result<(), EngineError> {
        for (p, mut batches) in (0u32..).zip(self.builders) {
            batches.append(log, self.topic, p, true)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::{LogStore, TopicConfig};

    /// A write's batches for a partition reach the log together when it finishes (one
    /// append), in the order pushed, split into batches under the size limit.
    #[test]
    fn a_writes_batches_are_appended_together_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store
            .create_topic("out", 2, TopicConfig::default())
            .unwrap();
        let value = vec![b'v'; 1000];
        let count = 3 * SINK_BATCH_BYTES / value.len();
        let mut sink = SinkBatches::new("out", 2, 1);
        for i in 0..count {
            let mut v = value.clone();
            v[..8].copy_from_slice(&(i as u64).to_be_bytes());
            sink.push(&store, i as i64, None, Some(&v), None).unwrap();
        }
        // Several batches are full, none is in the log yet.
        assert_eq!(store.offsets("out", 1).unwrap(), (0, 0));
        sink.finish(&store).unwrap();
        assert_eq!(store.offsets("out", 0).unwrap(), (0, 0));
        assert_eq!(store.offsets("out", 1).unwrap(), (0, count as u64));
        let read = store.read("out", 1, 0, 64 << 20).unwrap();
        let mut batches = 0;
        let mut next = 0u64;
        for b in sluice_storage::batch::Batches::new(&read.data) {
            batches += 1;
            assert!(b.len() <= SINK_BATCH_BYTES + 16 * 1024);
            for r in sluice_storage::batch::records(b).unwrap() {
                let v = r.value.unwrap();
                assert_eq!(u64::from_be_bytes(v[..8].try_into().unwrap()), next);
                assert_eq!(r.offset as u64, next);
                next += 1;
            }
        }
        assert_eq!(next, count as u64);
        assert!(batches >= 3, "{batches} batches");
    }
}
