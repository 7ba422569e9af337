//! Checkpoints of an aggregation's state, kept in the log itself: an internal topic per query
//! (`_sluice_state_<QUERY_ID>`, one partition, compacted) holds the state as Arrow IPC
//! chunks, then a commit record naming the chunks and the source positions they go with.
//! Chunks alternate between two key sets ("a" and "b"), so a crash while one set is being
//! written leaves the other, still named by the last commit record, whole. A query restores
//! the last committed state and reads on from its positions: the state is exactly what an
//! uninterrupted run had at that point, and the updates emitted since are emitted again
//! (at-least-once output, duplicates only of updates after the last checkpoint).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Int64Array, RecordBatch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;
use sluice_storage::batch::{self, BatchHeader, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, TopicConfig};

use super::{Aggregation, Slot, TableRow};
use crate::engine::EngineError;

/// Chunk size: under the log's default largest message.
const CHUNK_BYTES: usize = 512 * 1024;

/// The internal topic holding a query's checkpoints.
pub(crate) fn topic(query_id: &str) -> String {
    format!("_sluice_state_{query_id}")
}

/// What a restore hands back: the source positions the state goes with.
pub(crate) struct Restored {
    pub positions: Vec<u64>,
}

/// Where the next checkpoint goes, and which key set it uses.
#[derive(Default)]
pub(crate) struct Checkpointer {
    next_set: u8,
}

impl Checkpointer {
    /// Writes the state and `positions` as the query's newest checkpoint.
    pub fn write(
        &mut self,
        log: &dyn EventLog,
        query_id: &str,
        agg: &Aggregation,
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
        let bytes = encode(agg)?;
        let set = if self.next_set == 0 { "a" } else { "b" };
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(0, Some(format!("{set}-{i}").as_bytes()), Some(chunk), &[]);
            let mut out = b.finish()?;
            log.append(&topic, 0, &mut out)?;
        }
        let commit = serde_json::json!({
            "set": set,
            "chunks": chunks.len(),
            "positions": positions,
        })
        .to_string();
        let mut b = BatchBuilder::new(Compression::None);
        b.push(0, Some(b"commit"), Some(commit.as_bytes()), &[]);
        let mut out = b.finish()?;
        log.append(&topic, 0, &mut out)?;
        self.next_set ^= 1;
        Ok(())
    }
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
    // The latest value of each key, as compaction would leave it.
    let mut latest: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut offset = start;
    while offset < end {
        let r = log.read(&topic, 0, offset, 4 << 20)?;
        if r.data.is_empty() {
            break;
        }
        for b in Batches::new(&r.data) {
            let h = BatchHeader::parse(b)?;
            batch::for_each_record(b, |rec| {
                if let (Some(k), Some(v)) = (rec.key, rec.value) {
                    latest.insert(k.to_vec(), v.to_vec());
                }
                Ok(())
            })?;
            offset = h.next_offset();
        }
    }
    let Some(commit) = latest.get(b"commit".as_slice()) else {
        return Ok(None);
    };
    let commit: serde_json::Value = serde_json::from_slice(commit)
        .map_err(|e| EngineError(format!("checkpoint of {query_id} is corrupt: {e}")))?;
    let set = commit["set"].as_str().unwrap_or("a");
    let chunks = commit["chunks"].as_u64().unwrap_or(0);
    let positions: Vec<u64> = commit["positions"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    let mut bytes = Vec::new();
    for i in 0..chunks {
        let chunk = latest
            .get(format!("{set}-{i}").as_bytes())
            .ok_or_else(|| EngineError(format!("checkpoint of {query_id} misses chunk {i}")))?;
        bytes.extend_from_slice(chunk);
    }
    decode(&bytes, agg)?;
    Ok(Some(Restored { positions }))
}

/// The state as Arrow IPC: a batch of windows (group columns, bounds, time, whether shown,
/// each accumulator's state), a batch of a table source's rows, and one of scalars.
fn encode(agg: &Aggregation) -> Result<Vec<u8>, EngineError> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut slots: Vec<&Slot> = Vec::new();
    for (k, ss) in &agg.groups {
        for s in ss {
            keys.push(k);
            slots.push(s);
        }
    }
    let mut fields = vec![
        Field::new("group", DataType::Binary, false),
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
        Field::new("time", DataType::Int64, false),
        Field::new("visible", DataType::Boolean, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::from_iter_values(keys.iter())),
        Arc::new(Int64Array::from_iter_values(slots.iter().map(|s| s.start))),
        Arc::new(Int64Array::from_iter_values(slots.iter().map(|s| s.end))),
        Arc::new(Int64Array::from_iter_values(slots.iter().map(|s| s.time))),
        Arc::new(BooleanArray::from(
            slots.iter().map(|s| s.visible).collect::<Vec<_>>(),
        )),
    ];
    for (c, call) in agg.plan.calls.iter().enumerate() {
        let states: Vec<Vec<ScalarValue>> =
            slots.iter().map(|s| s.accumulators[c].state()).collect();
        for (f, ty) in call.function.state_types.iter().enumerate() {
            let values = states.iter().map(|s| s[f].clone());
            let array = if slots.is_empty() {
                datafusion::arrow::array::new_empty_array(ty)
            } else {
                ScalarValue::iter_to_array(values)?
            };
            fields.push(Field::new(
                format!("s{c}_{f}"),
                array.data_type().clone(),
                true,
            ));
            columns.push(array);
        }
    }
    let windows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let mut out = Vec::new();
    write_batch(&mut out, &windows)?;
    // A table source's current rows, their arguments as one encoded batch each.
    let table_rows: Vec<(&Box<[u8]>, &TableRow)> = agg
        .table_rows
        .as_ref()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    let mut fields = vec![
        Field::new("source_key", DataType::Binary, false),
        Field::new("group", DataType::Binary, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::from_iter_values(
            table_rows.iter().map(|(k, _)| k.as_ref()),
        )),
        Arc::new(BinaryArray::from_iter_values(
            table_rows.iter().map(|(_, r)| r.group.as_ref()),
        )),
    ];
    let nargs = table_rows.first().map_or(0, |(_, r)| r.args.len());
    for a in 0..nargs {
        let array = ScalarValue::iter_to_array(table_rows.iter().map(|(_, r)| r.args[a].clone()))?;
        fields.push(Field::new(format!("a{a}"), array.data_type().clone(), true));
        columns.push(array);
    }
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    write_batch(&mut out, &rows)?;
    let scalars = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("stream_time", DataType::Int64, false),
            Field::new("late_records", DataType::Int64, false),
            Field::new("last_close", DataType::Int64, true),
            Field::new("latest_start", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![agg.stream_time])),
            Arc::new(Int64Array::from(vec![agg.late_records as i64])),
            Arc::new(Int64Array::from(vec![agg.last_close])),
            Arc::new(Int64Array::from(vec![agg.latest_start])),
        ],
    )?;
    write_batch(&mut out, &scalars)?;
    Ok(out)
}

/// One IPC stream, length-prefixed (8 bytes, big-endian).
fn write_batch(out: &mut Vec<u8>, batch: &RecordBatch) -> Result<(), EngineError> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    out.extend_from_slice(&(buf.len() as u64).to_be_bytes());
    out.extend_from_slice(&buf);
    Ok(())
}

fn read_batches(mut bytes: &[u8]) -> Result<Vec<RecordBatch>, EngineError> {
    let mut out = Vec::new();
    while bytes.len() >= 8 {
        let len = u64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
        let body = bytes
            .get(8..8 + len)
            .ok_or_else(|| EngineError("checkpoint is truncated".into()))?;
        for b in StreamReader::try_new(body, None)? {
            out.push(b?);
        }
        bytes = &bytes[8 + len..];
    }
    Ok(out)
}

fn column<T: 'static>(b: &RecordBatch, i: usize) -> Result<&T, EngineError> {
    b.column(i)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| EngineError("checkpoint column has an unexpected type".into()))
}

fn decode(bytes: &[u8], agg: &mut Aggregation) -> Result<(), EngineError> {
    let batches = read_batches(bytes)?;
    let [windows, rows, scalars] = batches.as_slice() else {
        return Err(EngineError("checkpoint has an unexpected layout".into()));
    };
    agg.groups.clear();
    let groups = column::<BinaryArray>(windows, 0)?;
    let starts = column::<Int64Array>(windows, 1)?;
    let ends = column::<Int64Array>(windows, 2)?;
    let times = column::<Int64Array>(windows, 3)?;
    let visible = column::<BooleanArray>(windows, 4)?;
    for r in 0..windows.num_rows() {
        let mut accumulators = Vec::with_capacity(agg.plan.calls.len());
        let mut col = 5;
        for call in &agg.plan.calls {
            let mut acc = call.function.accumulator();
            let state = (0..call.function.state_types.len())
                .map(|f| ScalarValue::try_from_array(windows.column(col + f), r))
                .collect::<Result<Vec<_>, _>>()?;
            col += call.function.state_types.len();
            acc.merge(&state).map_err(EngineError)?;
            accumulators.push(acc);
        }
        agg.groups
            .entry(groups.value(r).into())
            .or_default()
            .push(Slot {
                start: starts.value(r),
                end: ends.value(r),
                time: times.value(r),
                visible: visible.value(r),
                accumulators,
            });
    }
    if let Some(table_rows) = agg.table_rows.as_mut() {
        table_rows.clear();
        let keys = column::<BinaryArray>(rows, 0)?;
        let groups = column::<BinaryArray>(rows, 1)?;
        for r in 0..rows.num_rows() {
            let args = (2..rows.num_columns())
                .map(|c| ScalarValue::try_from_array(rows.column(c), r))
                .collect::<Result<Vec<_>, _>>()?;
            table_rows.insert(
                keys.value(r).into(),
                TableRow {
                    group: groups.value(r).into(),
                    args,
                },
            );
        }
    }
    agg.stream_time = column::<Int64Array>(scalars, 0)?.value(0);
    agg.late_records = column::<Int64Array>(scalars, 1)?.value(0) as u64;
    let last_close = column::<Int64Array>(scalars, 2)?;
    agg.last_close = last_close.is_valid(0).then(|| last_close.value(0));
    agg.latest_start = column::<Int64Array>(scalars, 3)?.value(0);
    agg.rebuild_schedules();
    Ok(())
}
