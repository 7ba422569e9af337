//! Checkpoints of an aggregation's state, kept in the log itself as a changelog, the way
//! ksqlDB keeps state stores in changelog topics: an internal compacted topic per query
//! (`_sluice_state_<QUERY_ID>`, one partition). A checkpoint appends a record per window
//! (or table row) changed since the last one, a tombstone per window gone, then a commit
//! record with the source positions and the stream-time scalars. Restoring takes, for each
//! key, its latest record before the last commit record: exactly the state an
//! uninterrupted run had when that commit was written (a crash in the middle of a
//! checkpoint leaves records after the last commit, which are ignored). The query then
//! reads on from the committed positions, so the updates emitted after the last checkpoint
//! are emitted again: at-least-once output, with state that counts every record once.
//!
//! Record keys: `w` + group key (Arrow row format) + window start + end (8 bytes each,
//! big-endian) for a window; `t` + source key (Arrow row format) for a table source's row;
//! `commit`. Values: the window's time and shown flag, then each accumulator's state values
//! (see `write_scalar`). The row format ties a checkpoint to the Arrow version that wrote it.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;
use sluice_storage::batch::{self, BatchHeader, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, TopicConfig};

use super::{Aggregation, Slot, TableRow};
use crate::engine::EngineError;

/// Records per appended batch (batches stay well under the largest message).
const RECORDS_PER_BATCH: usize = 2000;
const COMMIT_KEY: &[u8] = b"commit";

/// The internal topic holding a query's checkpoints.
pub(crate) fn topic(query_id: &str) -> String {
    format!("_sluice_state_{query_id}")
}

/// The checkpoint key of `group`'s window [start, end).
pub(crate) fn window_key(group: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 17);
    k.push(b'w');
    k.extend_from_slice(group);
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(&end.to_be_bytes());
    k
}

/// The checkpoint key of a table source's row.
pub(crate) fn table_key(source_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(source_key.len() + 1);
    k.push(b't');
    k.extend_from_slice(source_key);
    k
}

/// What a restore hands back: the source positions the state goes with.
pub(crate) struct Restored {
    pub positions: Vec<u64>,
}

/// Appends records in batches of `RECORDS_PER_BATCH`.
struct Appender<'a> {
    log: &'a dyn EventLog,
    topic: &'a str,
    builder: BatchBuilder,
}

impl Appender<'_> {
    fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        self.builder.push(0, Some(key), value, &[]);
        if self.builder.len() >= RECORDS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.builder, BatchBuilder::new(Compression::None));
        let mut bytes = full.finish()?;
        self.log.append(self.topic, 0, &mut bytes)?;
        Ok(())
    }
}

/// Writes what changed in `agg` since its last checkpoint, then the commit record with
/// `positions`; clears the change marks.
pub(crate) fn write(
    log: &dyn EventLog,
    query_id: &str,
    agg: &mut Aggregation,
    positions: &[u64],
) -> Result<(), EngineError> {
    let topic = topic(query_id);
    if log.describe_topic(&topic).is_err() {
        let config = TopicConfig {
            compact: true,
            delete: false,
            ..TopicConfig::default()
        };
        log.create_topic(&topic, 1, config)?;
    }
    let mut out = Appender {
        log,
        topic: &topic,
        builder: BatchBuilder::new(Compression::None),
    };
    // Removals first: a window removed and made again since comes after its tombstone.
    for key in std::mem::take(&mut agg.removed) {
        out.push(&key, None)?;
    }
    let mut value = Vec::new();
    for (group, slots) in agg.groups.iter_mut() {
        for slot in slots.iter_mut().filter(|s| s.dirty) {
            value.clear();
            value.extend_from_slice(&slot.time.to_be_bytes());
            value.push(slot.visible as u8);
            for acc in &slot.accumulators {
                for v in acc.state() {
                    write_scalar(&mut value, &v)?;
                }
            }
            out.push(&window_key(group, slot.start, slot.end), Some(&value))?;
            slot.dirty = false;
        }
    }
    if let Some(rows) = agg.table_rows.as_mut() {
        for (source_key, row) in rows.iter_mut().filter(|(_, r)| r.dirty) {
            value.clear();
            value.extend_from_slice(&(row.group.len() as u32).to_be_bytes());
            value.extend_from_slice(&row.group);
            for v in &row.args {
                write_scalar(&mut value, v)?;
            }
            out.push(&table_key(source_key), Some(&value))?;
            row.dirty = false;
        }
    }
    let commit = serde_json::json!({
        "positions": positions,
        "stream_time": agg.stream_time,
        "late_records": agg.late_records,
        "last_close": agg.last_close,
        "latest_start": agg.latest_start,
    })
    .to_string();
    out.push(COMMIT_KEY, Some(commit.as_bytes()))?;
    out.flush()
}

/// Restores the last committed checkpoint of `query_id` into `agg`, if there is one.
pub(crate) fn restore(
    log: &dyn EventLog,
    query_id: &str,
    agg: &mut Aggregation,
) -> Result<Option<Restored>, EngineError> {
    let topic = topic(query_id);
    let Ok((start, end)) = log.offsets(&topic, 0) else {
        return Ok(None);
    };
    // Each key's latest value (None: deleted), as of the last commit record.
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut committed: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut commit: Option<Vec<u8>> = None;
    let mut offset = start;
    while offset < end {
        let r = log.read(&topic, 0, offset, 4 << 20)?;
        if r.data.is_empty() {
            break;
        }
        for b in Batches::new(&r.data) {
            let h = BatchHeader::parse(b)?;
            batch::for_each_record(b, |rec| {
                let Some(k) = rec.key else {
                    return Ok(());
                };
                if k == COMMIT_KEY {
                    commit = rec.value.map(<[u8]>::to_vec);
                    for (k, v) in latest.drain() {
                        committed.insert(k, v);
                    }
                } else {
                    latest.insert(k.to_vec(), rec.value.map(<[u8]>::to_vec));
                }
                Ok(())
            })?;
            offset = h.next_offset();
        }
    }
    let Some(commit) = commit else {
        return Ok(None);
    };
    let corrupt = |e: String| EngineError(format!("checkpoint of {query_id} is corrupt: {e}"));
    let commit: serde_json::Value =
        serde_json::from_slice(&commit).map_err(|e| corrupt(e.to_string()))?;
    agg.groups.clear();
    if let Some(t) = agg.table_rows.as_mut() {
        t.clear();
    }
    for (key, value) in committed {
        let Some(value) = value else {
            continue;
        };
        match key.first() {
            Some(b'w') if key.len() >= 17 => {
                let at = key.len() - 16;
                let group = key[1..at].to_vec();
                let start = i64::from_be_bytes(key[at..at + 8].try_into().unwrap_or([0; 8]));
                let end = i64::from_be_bytes(key[at + 8..].try_into().unwrap_or([0; 8]));
                let slot = read_slot(agg, start, end, &value).map_err(corrupt)?;
                agg.groups.entry(group).or_default().push(slot);
            }
            Some(b't') => {
                let row = read_table_row(&value).map_err(corrupt)?;
                if let Some(t) = agg.table_rows.as_mut() {
                    t.insert(key[1..].into(), row);
                }
            }
            _ => return Err(corrupt(format!("unknown key {key:?}"))),
        }
    }
    for slots in agg.groups.values_mut() {
        slots.sort_by_key(|s| (s.start, s.end));
    }
    agg.stream_time = commit["stream_time"].as_i64().unwrap_or(i64::MIN);
    agg.late_records = commit["late_records"].as_u64().unwrap_or(0);
    agg.last_close = commit["last_close"].as_i64();
    agg.latest_start = commit["latest_start"].as_i64().unwrap_or(i64::MIN);
    agg.removed.clear();
    agg.rebuild_schedules();
    let positions = commit["positions"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    Ok(Some(Restored { positions }))
}

fn read_slot(agg: &Aggregation, start: i64, end: i64, value: &[u8]) -> Result<Slot, String> {
    let mut r = Reader { bytes: value };
    let time = r.i64()?;
    let visible = r.u8()? != 0;
    let mut accumulators = Vec::with_capacity(agg.plan.calls.len());
    for call in &agg.plan.calls {
        let state = (0..call.function.state_types.len())
            .map(|_| r.scalar())
            .collect::<Result<Vec<_>, _>>()?;
        let mut acc = call.function.accumulator();
        acc.merge(&state)?;
        accumulators.push(acc);
    }
    Ok(Slot {
        start,
        end,
        time,
        visible,
        dirty: false,
        accumulators,
    })
}

fn read_table_row(value: &[u8]) -> Result<TableRow, String> {
    let mut r = Reader { bytes: value };
    let n = r.u32()? as usize;
    let group = r.take(n)?.into();
    let mut args = Vec::new();
    while !r.bytes.is_empty() {
        args.push(r.scalar()?);
    }
    Ok(TableRow {
        group,
        args,
        dirty: false,
    })
}

/// A value with a tag byte: 0 null, 1 BIGINT, 2 DOUBLE, 3 INT, 4 DECIMAL (i128, precision,
/// scale), 5 STRING, 6 BOOLEAN, 7 anything else as a one-row Arrow IPC stream.
fn write_scalar(out: &mut Vec<u8>, v: &ScalarValue) -> Result<(), EngineError> {
    match v {
        v if v.is_null() => {
            out.push(0);
            // The type of a null, for a table row's arguments (their type is not known
            // where they are read back).
            write_ipc(out, v)?;
        }
        ScalarValue::Int64(Some(x)) => {
            out.push(1);
            out.extend_from_slice(&x.to_be_bytes());
        }
        ScalarValue::Float64(Some(x)) => {
            out.push(2);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        ScalarValue::Int32(Some(x)) => {
            out.push(3);
            out.extend_from_slice(&x.to_be_bytes());
        }
        ScalarValue::Decimal128(Some(x), p, s) => {
            out.push(4);
            out.extend_from_slice(&x.to_be_bytes());
            out.push(*p);
            out.push(*s as u8);
        }
        ScalarValue::Utf8(Some(x)) => {
            out.push(5);
            out.extend_from_slice(&(x.len() as u32).to_be_bytes());
            out.extend_from_slice(x.as_bytes());
        }
        ScalarValue::Boolean(Some(x)) => {
            out.push(6);
            out.push(*x as u8);
        }
        other => {
            out.push(7);
            write_ipc(out, other)?;
        }
    }
    Ok(())
}

fn write_ipc(out: &mut Vec<u8>, v: &ScalarValue) -> Result<(), EngineError> {
    let array = v.to_array()?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "v",
        array.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![array])?;
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, &schema)?;
        w.write(&batch)?;
        w.finish()?;
    }
    out.extend_from_slice(&(buf.len() as u32).to_be_bytes());
    out.extend_from_slice(&buf);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("value is truncated".into());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }

    fn ipc(&mut self) -> Result<ScalarValue, String> {
        let n = self.u32()? as usize;
        let body = self.take(n)?;
        let mut reader = StreamReader::try_new(body, None).map_err(|e| e.to_string())?;
        let batch = reader
            .next()
            .ok_or("empty value")?
            .map_err(|e| e.to_string())?;
        ScalarValue::try_from_array(batch.column(0), 0).map_err(|e| e.to_string())
    }

    /// One tagged value (see `write_scalar`).
    fn scalar(&mut self) -> Result<ScalarValue, String> {
        Ok(match self.u8()? {
            0 | 7 => self.ipc()?,
            1 => ScalarValue::Int64(Some(self.i64()?)),
            2 => ScalarValue::Float64(Some(f64::from_bits(self.i64()? as u64))),
            3 => ScalarValue::Int32(Some(i32::from_be_bytes(
                self.take(4)?.try_into().unwrap_or([0; 4]),
            ))),
            4 => {
                let x = i128::from_be_bytes(self.take(16)?.try_into().unwrap_or([0; 16]));
                let p = self.u8()?;
                let s = self.u8()? as i8;
                ScalarValue::Decimal128(Some(x), p, s)
            }
            5 => {
                let n = self.u32()? as usize;
                let text = std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())?;
                ScalarValue::Utf8(Some(text.to_string()))
            }
            6 => ScalarValue::Boolean(Some(self.u8()? != 0)),
            t => return Err(format!("unknown value tag {t}")),
        })
    }
}
