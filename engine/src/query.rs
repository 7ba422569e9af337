//! Query execution over the log: a `Pipeline` reads what a source's partitions hold past its
//! positions (a step's bytes in cache-sized windows, each decoded before the next is read),
//! decodes it into Arrow batches (`ROWTIME, ROWPARTITION, ROWOFFSET`, key columns, value
//! columns), filters and projects them with DataFusion physical expressions. A
//! `PersistentQuery` writes a pipeline's rows to a sink topic and commits its positions; a
//! `PushQuery` hands them to its caller. Records that fail are skipped and reported as
//! processing-log entries, never the end of a query.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::kernels::boolean::not;
use datafusion::arrow::compute::{filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::physical_expr::PhysicalExpr;
use sluice_storage::batch::{self, BatchHeader, Batches};
use sluice_storage::{CommittedOffset, EventLog};

use sluice_sql::ast::SourceKind;

use crate::catalog::{Column, Source};
use crate::codec::{Scratch, Serde};
use crate::engine::EngineError;
use crate::processing_log::{ProcessingError, ProcessingLog};
use crate::row_filter::keep_rows;
use crate::schema::arrow_type;
use crate::sink::{SinkBatches, windowed_key};

/// Bytes read from one partition per step: large enough to amortize, small enough that
/// queries sharing a thread take turns.
const READ_BYTES: usize = 4 << 20;

/// A step reads in windows of this many bytes, each decoded and evaluated before the
/// next is read: its records are then still in the CPU's cache (a core's L2 here is 1 MB)
/// from the read's checksum pass when they are iterated and decoded, instead of read back
/// from memory after the whole step's bytes have streamed through.
const READ_WINDOW: usize = 1 << 20;

/// The planned part of a query: its source, how to decode it, WHERE and the projection.
pub(crate) struct Pipeline {
    pub source: Source,
    pub source_key: Serde,
    pub source_value: Serde,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// One expression per output column, in `output` order.
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    pub input_schema: Arc<Schema>,
    /// The output columns (key columns first).
    pub output: Vec<Column>,
    /// Per output column, whether it is a table function's arrays to explode (empty when
    /// the projection has no table function).
    pub exploded: Vec<bool>,
    /// Whether the key is new (`PARTITION BY`) rather than the source's, passed through.
    pub rekeyed: bool,
    /// Next offset to read per source partition.
    pub positions: Vec<u64>,
    /// A GROUP BY query's state: what the pipeline computes goes through it.
    pub aggregation: Option<Box<Aggregated>>,
}

/// The stateful stage of an aggregating pipeline.
pub(crate) struct Aggregated {
    pub aggregation: crate::aggregate::Aggregation,
    /// A table source's keys (to take back a row's previous version).
    pub source_keys: Option<crate::aggregate::SourceKeys>,
}

/// What one read of one partition produced.
pub(crate) struct Evaluated {
    /// Headers of the records read that had any, by input offset.
    pub headers: HashMap<i64, RecordHeaders>,
    pub partition: u32,
    /// Offset to read next.
    pub next: u64,
    /// Records read (including skipped ones).
    pub read: usize,
    /// Kept rows (their input columns, for ROWTIME) and one output array per output column.
    pub rows: Vec<(RecordBatch, Vec<ArrayRef>)>,
    /// Records with a null value, passed through as null values: (offset, timestamp, key
    /// bytes).
    pub tombstones: Vec<(i64, i64, Option<Vec<u8>>)>,
    /// Offsets of stream records with a null value: they go through the query like any
    /// row (their value columns null) and come out with a null value.
    pub null_values: HashSet<i64>,
    /// Table rows the WHERE rejected (their input columns and output key columns): each
    /// becomes a tombstone, since an earlier version of the row may have passed.
    pub rejected: Vec<(RecordBatch, Vec<ArrayRef>)>,
    pub errors: Vec<ProcessingError>,
}

/// Where a record's key or value lies: in the read buffer itself (uncompressed batches:
/// no copy) or in the buffer of decompressed payloads.
#[derive(Clone)]
enum Span {
    Read(Range<usize>),
    Copied(Range<usize>),
}

/// The records of one read: timestamps, offsets, and spans of their keys and values.
#[derive(Default)]
struct ReadRecords {
    /// Payloads of compressed batches, copied out of their decompression buffers.
    copied: Vec<u8>,
    timestamps: Vec<i64>,
    offsets: Vec<i64>,
    keys: Vec<Option<Span>>,
    values: Vec<Option<Span>>,
    /// The headers of the records that have any, by row (most records have none).
    headers: Vec<(usize, RecordHeaders)>,
}

/// One record header: its key and value.
pub(crate) type Header = (String, Option<Vec<u8>>);
/// A record's headers, in order.
pub(crate) type RecordHeaders = Vec<Header>;

impl ReadRecords {
    fn reserve(&mut self, records: usize) {
        self.timestamps.reserve(records);
        self.offsets.reserve(records);
        self.keys.reserve(records);
        self.values.reserve(records);
    }

    /// Notes one record of `read`.
    fn push(&mut self, read: &[u8], rec: batch::Record<'_>) -> sluice_storage::Result<()> {
        self.timestamps.push(rec.timestamp);
        self.offsets.push(rec.offset);
        let k = self.span(read, rec.key);
        self.keys.push(k);
        let v = self.span(read, rec.value);
        self.values.push(v);
        // Most records have no headers: nothing to read.
        let headers = if rec.header_count() == 0 {
            Vec::new()
        } else {
            rec.headers()?
        };
        if !headers.is_empty() {
            self.headers.push((
                self.offsets.len() - 1,
                headers
                    .into_iter()
                    .map(|(k, v)| (k, v.map(<[u8]>::to_vec)))
                    .collect(),
            ));
        }
        Ok(())
    }

    /// Notes where `b` is: a slice of `read` is kept as a span of it, anything else (a
    /// decompressed payload) is copied.
    fn span(&mut self, read: &[u8], b: Option<&[u8]>) -> Option<Span> {
        b.map(|b| {
            let off = (b.as_ptr() as usize).wrapping_sub(read.as_ptr() as usize);
            if off <= read.len() && b.len() <= read.len() - off {
                Span::Read(off..off + b.len())
            } else {
                let start = self.copied.len();
                self.copied.extend_from_slice(b);
                Span::Copied(start..self.copied.len())
            }
        })
    }

    fn slices<'a>(&'a self, read: &'a [u8], spans: &'a [Option<Span>]) -> Vec<Option<&'a [u8]>> {
        spans
            .iter()
            .map(|s| {
                s.as_ref().map(|s| match s {
                    Span::Read(r) => &read[r.clone()],
                    Span::Copied(r) => &self.copied[r.clone()],
                })
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.offsets.len()
    }
}

impl Pipeline {
    /// Reads and evaluates what partition `p` holds past the pipeline's position, without
    /// moving the position (the caller does once the rows are safely delivered).
    pub fn poll_partition(
        &self,
        log: &dyn EventLog,
        p: u32,
        query_id: &str,
    ) -> Result<Option<Evaluated>, EngineError> {
        let topic = &self.source.topic;
        let mut from = self.positions[p as usize];
        let (start, end) = log.offsets(topic, p)?;
        if from >= end {
            return Ok(None);
        }
        // Retention may have removed what the query had not read yet: go on from the start.
        from = from.max(start);
        let mut out = Evaluated {
            partition: p,
            next: from,
            read: 0,
            rows: Vec::new(),
            tombstones: Vec::new(),
            null_values: HashSet::new(),
            rejected: Vec::new(),
            errors: Vec::new(),
            headers: HashMap::new(),
        };
        let mut bytes_read = 0;
        while bytes_read < READ_BYTES && out.next < end {
            let r = log.read(topic, p, out.next, READ_WINDOW)?;
            if r.data.is_empty() {
                break;
            }
            bytes_read += r.data.len();
            let window_from = out.next;
            let mut recs = ReadRecords::default();
            // Room for every record of the window up front (the vectors never grow record
            // by record).
            let records: usize = Batches::new(&r.data)
                .filter_map(|b| BatchHeader::parse(b).ok())
                .map(|h| h.records_count.max(0) as usize)
                .sum();
            recs.reserve(records);
            let data: &[u8] = &r.data;
            for b in Batches::new(data) {
                let h = BatchHeader::parse(b)?;
                if !h.is_control() {
                    batch::for_each_record(b, |rec| {
                        if rec.offset as u64 >= window_from {
                            recs.push(data, rec)?;
                        }
                        Ok(())
                    })?;
                }
                out.next = h.next_offset();
            }
            if out.next <= window_from {
                break;
            }
            out.read += recs.len();
            if recs.len() > 0 {
                self.evaluate_records(recs, &r.data, p, query_id, &mut out)?;
            }
            r.data.recycle();
        }
        if out.next <= from {
            return Ok(None);
        }
        Ok(Some(out))
    }

    fn evaluate_records(
        &self,
        mut recs: ReadRecords,
        read: &[u8],
        partition: u32,
        query_id: &str,
        out: &mut Evaluated,
    ) -> Result<(), EngineError> {
        let headers = std::mem::take(&mut recs.headers);
        // The pseudo-columns take the read's vectors as they are (no copy).
        let timestamps = Int64Array::from(std::mem::take(&mut recs.timestamps));
        let offsets = Int64Array::from(std::mem::take(&mut recs.offsets));
        let mut keys = recs.slices(read, &recs.keys);
        let values = recs.slices(read, &recs.values);
        // A windowed source's keys end with their window: split off into two columns.
        let bounds = self
            .source
            .window
            .map(|kind| crate::sink::split_windows(&mut keys, kind));
        let (key_arrays, key_errors) = self.source_key.decode(&keys)?;
        let (value_arrays, value_errors) = self.source_value.decode(&values)?;
        let mut bad: HashSet<usize> = HashSet::new();
        for (target, errors, payloads) in [
            ("key", &key_errors, &keys),
            ("value", &value_errors, &values),
        ] {
            for (row, message) in errors {
                bad.insert(*row);
                out.errors.push(ProcessingError::Deserialization {
                    query_id: query_id.to_string(),
                    target,
                    message: message.to_string(),
                    record: payloads[*row].map(<[u8]>::to_vec),
                    topic: self.source.topic.clone(),
                });
            }
        }
        let n = offsets.len();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(timestamps.clone()),
            Arc::new(Int32Array::from(vec![partition as i32; n])),
            Arc::new(offsets.clone()),
        ];
        if let Some((starts, ends)) = bounds {
            columns.push(Arc::new(starts));
            columns.push(Arc::new(ends));
        }
        columns.extend(key_arrays);
        columns.extend(value_arrays);
        if self.source.header_columns().next().is_some() {
            let mut per_row: Vec<&[Header]> = vec![&[]; n];
            for (row, h) in &headers {
                per_row[*row] = h;
            }
            for (column, header) in self.source.header_columns() {
                columns.push(crate::headers::header_array(column, header, &per_row)?);
            }
        }
        // Output records carry their input record's headers, as in ksqlDB.
        for (row, h) in headers {
            out.headers.insert(offsets.value(row), h);
        }
        if let Some(spec) = &self.source.timestamp {
            // ROWTIME comes from a column: records without a valid time are skipped.
            let index = self.input_schema.index_of(&spec.column)?;
            let mut times = Vec::with_capacity(n);
            for (row, t) in crate::timestamps::extract(&columns[index], spec)
                .into_iter()
                .enumerate()
            {
                match t {
                    Ok(ms) => times.push(ms),
                    // A null value (a tombstone) keeps the record's own time.
                    Err(_) if values[row].is_none() => times.push(timestamps.value(row)),
                    Err(message) => {
                        times.push(0);
                        if bad.insert(row) {
                            out.errors.push(ProcessingError::RecordProcessing {
                                query_id: query_id.to_string(),
                                message,
                                record: format!("offset {}", offsets.value(row)),
                            });
                        }
                    }
                }
            }
            columns[0] = Arc::new(Int64Array::from(times));
        }
        let batch = RecordBatch::try_new(self.input_schema.clone(), columns)?;
        // A table's rows need a key: records without one are dropped, as ksqlDB does.
        let table = self.source.kind == SourceKind::Table;
        let keyless = |r: usize| table && keys[r].is_none();
        // A table's null value deletes its key: forwarded as is. A stream's goes through the
        // query with null value columns and comes out with a null value, except that a WHERE
        // clause never matches it and an aggregation never counts it (ksqlDB filters a null
        // row out).
        let skips_null = self.filter.is_some() || self.aggregation.is_some();
        let dropped_null = |r: usize| !table && skips_null && values[r].is_none();
        for (r, v) in values.iter().enumerate() {
            if v.is_none() && !bad.contains(&r) && !keyless(r) && !dropped_null(r) {
                if table {
                    out.tombstones.push((
                        offsets.value(r),
                        timestamps.value(r),
                        keys[r].map(<[u8]>::to_vec),
                    ));
                } else {
                    out.null_values.insert(offsets.value(r));
                }
            }
        }
        let batch = if bad.is_empty() && values.iter().all(Option::is_some) && !table {
            batch
        } else {
            let keep: BooleanArray = (0..n)
                .map(|r| {
                    Some(
                        !bad.contains(&r)
                            && (values[r].is_some() || !table)
                            && !keyless(r)
                            && !dropped_null(r),
                    )
                })
                .collect();
            filter_record_batch(&batch, &keep)?
        };
        // A batch whose expressions fail is retried row by row, where each failing
        // expression is logged and counts as ksqlDB counts it (see `filter_and_project_row`).
        match self.filter_and_project(&batch, &mut out.rejected) {
            Ok(x) => out.rows.push(x),
            Err(_) => {
                for r in 0..batch.num_rows() {
                    let row = batch.slice(r, 1);
                    let mut fail = |e: EngineError| {
                        out.errors.push(ProcessingError::RecordProcessing {
                            query_id: query_id.to_string(),
                            message: e.to_string(),
                            record: describe_row(&row),
                        })
                    };
                    match self.filter_and_project_row(&row, &mut out.rejected, &mut fail) {
                        Ok(Some(x)) => out.rows.push(x),
                        Ok(None) => {}
                        Err(e) => fail(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// One row through WHERE and the projection as ksqlDB evaluates it: a WHERE that fails
    /// counts as false (the row is dropped), a projected expression that fails is null; each
    /// failure is reported to `fail`.
    fn filter_and_project_row(
        &self,
        row: &RecordBatch,
        rejected: &mut Vec<(RecordBatch, Vec<ArrayRef>)>,
        fail: &mut dyn FnMut(EngineError),
    ) -> Result<Option<(RecordBatch, Vec<ArrayRef>)>, EngineError> {
        if let Some(f) = &self.filter {
            match evaluate(f.as_ref(), row) {
                Ok(mask) => {
                    let keep = mask
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .is_some_and(|m| m.is_valid(0) && m.value(0));
                    if !keep {
                        if self.source.kind == SourceKind::Table {
                            // A table row the WHERE rejects deletes its key downstream.
                            return match self.filter_and_project(row, rejected) {
                                Ok(_) => Ok(None),
                                Err(e) => Err(e),
                            };
                        }
                        return Ok(None);
                    }
                }
                Err(e) => {
                    fail(e);
                    return Ok(None);
                }
            }
        }
        let mut outputs = Vec::with_capacity(self.projection.len());
        for (e, column) in self.projection.iter().zip(&self.output) {
            match evaluate(e.as_ref(), row) {
                Ok(a) => outputs.push(a),
                Err(err) => {
                    fail(err);
                    let ty = match e.data_type(&row.schema()) {
                        Ok(t) => t,
                        Err(_) => arrow_type(&column.ty).ok_or_else(|| {
                            EngineError(format!("unsupported type {}", column.ty))
                        })?,
                    };
                    outputs.push(datafusion::arrow::array::new_null_array(&ty, 1));
                }
            }
        }
        if self.exploded.is_empty() {
            return Ok(Some((row.clone(), outputs)));
        }
        crate::explode::explode(row, outputs, &self.exploded).map(Some)
    }

    /// Applies WHERE and the projection to a batch: the rows kept, and one output column
    /// per output column.
    pub(crate) fn filter_and_project(
        &self,
        batch: &RecordBatch,
        rejected: &mut Vec<(RecordBatch, Vec<ArrayRef>)>,
    ) -> Result<(RecordBatch, Vec<ArrayRef>), EngineError> {
        let mut batch = batch.clone();
        if let Some(f) = &self.filter {
            let mask = evaluate(f.as_ref(), &batch)?;
            let mask = mask
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| EngineError("WHERE must be a boolean expression".into()))?;
            // NULL counts as false, as in SQL.
            let mask = match mask.null_count() {
                0 => mask.clone(),
                _ => prep_null_mask_filter(mask),
            };
            if self.source.kind == SourceKind::Table {
                let out = keep_rows(&batch, &not(&mask)?)?;
                if out.num_rows() > 0 {
                    let nkeys = self.output.iter().filter(|c| c.key).count();
                    let keys = self.projection[..nkeys]
                        .iter()
                        .map(|e| evaluate(e.as_ref(), &out))
                        .collect::<Result<Vec<_>, _>>()?;
                    rejected.push((out, keys));
                }
            }
            batch = keep_rows(&batch, &mask)?;
        }
        let outputs = self
            .projection
            .iter()
            .map(|e| evaluate(e.as_ref(), &batch))
            .collect::<Result<_, _>>()?;
        if self.exploded.is_empty() {
            return Ok((batch, outputs));
        }
        crate::explode::explode(&batch, outputs, &self.exploded)
    }

    /// Per output key column, whether a new key's expression reads the source's value
    /// columns (so it is null for a record whose value is null).
    pub fn key_reads_value(&self) -> Vec<bool> {
        let values: HashSet<&str> = self
            .source
            .value_columns()
            .map(|c| c.name.as_str())
            .collect();
        self.output
            .iter()
            .zip(&self.projection)
            .filter(|(c, _)| c.key)
            .map(|(_, e)| {
                self.rekeyed
                    && datafusion::physical_expr::utils::collect_columns(e)
                        .iter()
                        .any(|c| values.contains(c.name()))
            })
            .collect()
    }

    /// Folds what a read evaluated into an aggregating pipeline's state: the updates it
    /// emits replace the read's rows. Other pipelines hand the read back as it is.
    pub fn aggregate(&mut self, ev: Evaluated, query_id: &str) -> Result<Evaluated, EngineError> {
        let Some(agg) = self.aggregation.as_mut() else {
            return Ok(ev);
        };
        if let Some(keys) = agg.source_keys.as_mut() {
            keys.collect_deleted(&ev, &self.source_key)?;
        }
        agg.aggregation
            .apply(ev, agg.source_keys.as_ref(), query_id)
    }

    /// The query's result columns (an aggregation's, else the projection's).
    pub fn result_columns(&self) -> &[Column] {
        match &self.aggregation {
            Some(a) => &a.aggregation.plan.output,
            None => &self.output,
        }
    }

    /// The Arrow schema of the result columns.
    pub fn output_schema(&self) -> Result<Arc<Schema>, EngineError> {
        let fields = self
            .result_columns()
            .iter()
            .map(|c| {
                arrow_type(&c.ty)
                    .map(|t| Field::new(&c.name, t, true))
                    .ok_or_else(|| EngineError(format!("unsupported type {}", c.ty)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Whether every partition has been read up to its high watermark.
    pub fn lag(&self, log: &dyn EventLog) -> Result<u64, EngineError> {
        let mut lag = 0;
        for (p, &pos) in self.positions.iter().enumerate() {
            let (_, end) = log.offsets(&self.source.topic, p as u32)?;
            lag += end.saturating_sub(pos);
        }
        Ok(lag)
    }
}

/// An output record before it is placed: (input offset, timestamp, key, value).
type OutRecord = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// The ROWTIME and ROWOFFSET columns of an input batch.
fn times_and_offsets(batch: &RecordBatch) -> Result<(&Int64Array, &Int64Array), EngineError> {
    let column = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| EngineError("pseudo-columns are not BIGINT columns".into()))
    };
    Ok((column(0)?, column(2)?))
}

/// A row's input values as text, for the processing log.
fn describe_row(row: &RecordBatch) -> String {
    let schema = row.schema();
    let mut parts = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let v = datafusion::arrow::util::display::array_value_to_string(row.column(i), 0)
            .unwrap_or_default();
        parts.push(format!("{}={}", f.name(), v));
    }
    parts.join(", ")
}

/// Evaluates an expression over a batch. A function that panics on some input (a library
/// bug) fails this batch with an error instead of taking the process down.
pub(crate) fn evaluate(e: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<ArrayRef, EngineError> {
    let run = || {
        e.evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => Ok(r?),
        Err(_) => Err(EngineError(format!("evaluating {e} failed"))),
    }
}

/// Counters a running query updates and `SHOW QUERIES` reads.
#[derive(Debug, Default)]
pub struct QueryStats {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub errors: AtomicU64,
}

/// A persistent query: a pipeline writing to a sink topic.
pub(crate) struct PersistentQuery {
    pub id: String,
    pub pipeline: Pipeline,
    pub sink: Source,
    pub sink_key: Serde,
    pub sink_value: Serde,
    /// Partitions of the sink topic (fixed once the topic exists).
    pub sink_partitions: u32,
    pub stats: Arc<QueryStats>,
    /// A join's sides and state (the pipeline then runs over joined rows).
    pub join: Option<Box<crate::join::Join>>,
    /// For an aggregating query (whose state is checkpointed with its positions): when it
    /// last wrote a checkpoint, and how often it writes one.
    pub checkpoints: Option<(std::time::Instant, std::time::Duration)>,
}

/// How often an aggregating query checkpoints its state while it makes progress, unless
/// `commit.interval.ms` says otherwise (ksqlDB's default).
pub(crate) const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl PersistentQuery {
    /// One step: everything each partition holds now, written to the sink, positions
    /// committed (after the sink append: at-least-once). Returns whether it read anything.
    pub fn step(
        &mut self,
        log: &dyn EventLog,
        processing_log: &ProcessingLog,
    ) -> Result<bool, EngineError> {
        if self.join.is_some() {
            return self.step_join(log, processing_log);
        }
        let mut progressed = false;
        for p in 0..self.pipeline.positions.len() as u32 {
            let Some(ev) = self.pipeline.poll_partition(log, p, &self.id)? else {
                continue;
            };
            let ev = self.pipeline.aggregate(ev, &self.id)?;
            self.write(log, &ev, processing_log)?;
            self.pipeline.positions[p as usize] = ev.next;
            self.stats
                .records_in
                .fetch_add(ev.read as u64, Ordering::Relaxed);
            progressed = true;
            if self.checkpoints.is_some() {
                // Positions are committed with the state they go with (`checkpoint`).
                continue;
            }
            log.commit_offsets(
                &self.id,
                &[CommittedOffset {
                    topic: self.pipeline.source.topic.clone(),
                    partition: p,
                    offset: ev.next,
                    metadata: String::new(),
                    commit_timestamp: now_ms(),
                }],
            )?;
        }
        if progressed
            && let Some((last, interval)) = &self.checkpoints
            && last.elapsed() >= *interval
        {
            self.checkpoint(log)?;
        }
        Ok(progressed)
    }

    /// One step of a join: what both sides hold, joined, written; the stream sides'
    /// positions committed after the sink append (at-least-once).
    fn step_join(
        &mut self,
        log: &dyn EventLog,
        processing_log: &ProcessingLog,
    ) -> Result<bool, EngineError> {
        let Some(join) = self.join.as_mut() else {
            return Ok(false);
        };
        let Some(ev) = join.poll(log, &self.pipeline, &self.id)? else {
            return Ok(false);
        };
        let read = ev.read as u64;
        let ev = self.pipeline.aggregate(ev, &self.id)?;
        self.write(log, &ev, processing_log)?;
        // An aggregation over a join keeps no checkpoint (its sides' state is not in one):
        // it commits nothing and so starts over from its recorded start after a restart,
        // rebuilding the same state and emitting its updates again.
        if let Some(join) = &self.join
            && self.pipeline.aggregation.is_none()
        {
            join.commit(log, &self.id)?;
        }
        self.stats.records_in.fetch_add(read, Ordering::Relaxed);
        Ok(true)
    }

    /// The topics the query reads and its positions in each (what its thread waits on).
    pub fn wait_targets(&self) -> Vec<(String, Vec<u64>)> {
        match &self.join {
            Some(join) => join.wait_targets(),
            None => vec![(
                self.pipeline.source.topic.clone(),
                self.pipeline.positions.clone(),
            )],
        }
    }

    /// Writes an aggregating query's state with its positions, then commits the positions
    /// (so `SHOW QUERIES` lag and consumer-group tools see them). Nothing for other queries.
    pub fn checkpoint(&mut self, log: &dyn EventLog) -> Result<(), EngineError> {
        let (Some((last, _)), Some(agg)) = (
            self.checkpoints.as_mut(),
            self.pipeline.aggregation.as_mut(),
        ) else {
            return Ok(());
        };
        crate::aggregate::checkpoint::write(
            log,
            &self.id,
            &mut agg.aggregation,
            &self.pipeline.positions,
        )?;
        *last = std::time::Instant::now();
        let offsets: Vec<CommittedOffset> = self
            .pipeline
            .positions
            .iter()
            .enumerate()
            .map(|(p, &offset)| CommittedOffset {
                topic: self.pipeline.source.topic.clone(),
                partition: p as u32,
                offset,
                metadata: String::new(),
                commit_timestamp: now_ms(),
            })
            .collect();
        log.commit_offsets(&self.id, &offsets)?;
        Ok(())
    }

    fn write(
        &self,
        log: &dyn EventLog,
        ev: &Evaluated,
        processing_log: &ProcessingLog,
    ) -> Result<(), EngineError> {
        let mut errors = ev.errors.clone();
        let nkeys = self.sink_key.columns.len();
        let partitions = self.sink_partitions;
        // (input offset, timestamp, key, value), so output keeps the input's order, where
        // rows and deletions must be merged by offset; otherwise rows go straight into the
        // sink's batches as they are encoded (no copy per record).
        let mut out: Vec<OutRecord> = Vec::new();
        let interleaved = !ev.tombstones.is_empty() || !ev.rejected.is_empty();
        let mut sink = SinkBatches::new(&self.sink.topic, partitions, ev.partition);
        let (mut key_scratch, mut value_scratch) = (Scratch::default(), Scratch::default());
        let mut written = 0u64;
        // A windowed key (the key's bytes and the window's), rebuilt for each row.
        let mut windowed: Vec<u8> = Vec::new();
        let reads_value = self.pipeline.key_reads_value();
        // The sink's TIMESTAMP column, if it has one: (its output position, its spec).
        let sink_time = self.sink.timestamp.as_ref().and_then(|spec| {
            let at = self
                .sink
                .columns
                .iter()
                .position(|c| c.name == spec.column)?;
            Some((at, spec))
        });
        for (batch, outputs) in &ev.rows {
            let (rowtime, offsets) = times_and_offsets(batch)?;
            let times = sink_time.map(|(at, spec)| crate::timestamps::extract(&outputs[at], spec));
            let (keys, values) = (
                self.sink_key.rows(&outputs[..nkeys]),
                self.sink_value.rows(&outputs[nkeys..]),
            );
            for row in 0..batch.num_rows() {
                let time = match times.as_ref().map(|t| &t[row]) {
                    None => rowtime.value(row),
                    Some(Ok(ms)) => *ms,
                    Some(Err(message)) => {
                        errors.push(ProcessingError::RecordProcessing {
                            query_id: self.id.clone(),
                            message: message.clone(),
                            record: describe_row(&batch.slice(row, 1)),
                        });
                        continue;
                    }
                };
                // A null key stays null; a new key (PARTITION BY) of several columns is an
                // object even when they are all null.
                let all_null = outputs[..nkeys].iter().all(|a| a.is_null(row));
                let null_value = ev.null_values.contains(&offsets.value(row));
                // A new key computed from a null row's value columns is null, as in ksqlDB
                // (even `PARTITION BY x IS NULL`); one from its key columns is computed.
                let all_null = all_null
                    || (null_value
                        && (0..nkeys).all(|k| outputs[k].is_null(row) || reads_value[k]));
                let key = if all_null && (nkeys == 1 || !self.pipeline.rekeyed) {
                    Ok(None)
                } else {
                    keys.encode_to(row, &mut key_scratch)
                };
                let key = match (key, &self.sink.window) {
                    (Ok(k), Some(kind)) => {
                        windowed_key(k, kind, batch, row, &mut windowed)?;
                        Ok(Some(windowed.as_slice()))
                    }
                    (k, _) => k,
                };
                let headers = ev.headers.get(&offsets.value(row));
                // The common record (a value, no headers, written in input order) is
                // encoded straight into its batch.
                let in_place =
                    !null_value && !interleaved && headers.is_none() && values.writes_in_place();
                let outcome = match key {
                    Err(e) => Err(e),
                    Ok(k) if in_place => {
                        sink.push_writing(log, time, k, |out| values.write_into(row, out))?
                    }
                    Ok(k) => {
                        let value = if null_value {
                            Ok(None)
                        } else {
                            values.encode_to(row, &mut value_scratch)
                        };
                        match value {
                            Ok(v) if interleaved => {
                                out.push((
                                    offsets.value(row),
                                    time,
                                    k.map(<[u8]>::to_vec),
                                    v.map(<[u8]>::to_vec),
                                ));
                                Ok(())
                            }
                            Ok(v) => {
                                sink.push(log, time, k, v, headers)?;
                                written += 1;
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                match outcome {
                    Ok(()) if in_place => written += 1,
                    Ok(()) => {}
                    Err(e) => errors.push(ProcessingError::Serialization {
                        query_id: self.id.clone(),
                        message: e.to_string(),
                        record: describe_row(&batch.slice(row, 1)),
                        topic: self.sink.topic.clone(),
                    }),
                }
            }
        }
        for (offset, ts, key) in &ev.tombstones {
            out.push((*offset, *ts, key.clone(), None));
        }
        for (batch, keys) in &ev.rejected {
            let (rowtime, offsets) = times_and_offsets(batch)?;
            for row in 0..batch.num_rows() {
                if let Ok(Some(k)) = self.sink_key.encode(keys, row) {
                    out.push((offsets.value(row), rowtime.value(row), Some(k), None));
                }
            }
        }
        if interleaved {
            out.sort_by_key(|o| o.0);
        }
        for (offset, ts, key, value) in &out {
            sink.push(
                log,
                *ts,
                key.as_deref(),
                value.as_deref(),
                ev.headers.get(offset),
            )?;
        }
        written += out.len() as u64;
        sink.finish(log)?;
        self.stats.records_out.fetch_add(written, Ordering::Relaxed);
        if !errors.is_empty() {
            self.stats
                .errors
                .fetch_add(errors.len() as u64, Ordering::Relaxed);
            processing_log.write(log, &errors);
        }
        Ok(())
    }
}

/// A push query (`SELECT … EMIT CHANGES`): a pipeline whose rows go to the caller.
pub struct PushQuery {
    pub(crate) pipeline: Pipeline,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) processing_log: ProcessingLog,
    pub(crate) id: String,
    /// Rows still to deliver before the query ends (`LIMIT`).
    pub(crate) remaining: Option<u64>,
    /// The query's LIMIT.
    pub(crate) limit: Option<u64>,
    /// Stop at these offsets (a query over a stream without `EMIT CHANGES`).
    pub(crate) until: Option<Vec<u64>>,
    pub(crate) schema: Arc<Schema>,
    pub(crate) waiter: Waiter,
    /// Rows computed before the first poll (a pull query's answer).
    pub(crate) pending: Vec<RecordBatch>,
    /// A join's sides and state (the pipeline then runs over joined rows).
    pub(crate) join: Option<Box<crate::join::Join>>,
}

impl PushQuery {
    /// The output columns' names and types.
    pub fn columns(&self) -> Vec<(String, String)> {
        self.pipeline
            .result_columns()
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect()
    }

    /// The output columns (key columns marked), as a REST header names them.
    pub fn output_columns(&self) -> &[Column] {
        self.pipeline.result_columns()
    }

    /// The transient query's id (`transient_<SOURCE>_<n>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A pull query over a table: it answers from a snapshot and ends.
    pub fn is_pull(&self) -> bool {
        self.until.as_ref().is_some_and(|u| u.is_empty())
    }

    /// Whether the query ends by itself (a pull query, over a table or a stream), rather
    /// than streaming changes.
    pub fn ends(&self) -> bool {
        self.until.is_some()
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Whether the query delivered as many rows as its LIMIT allows.
    pub fn limit_reached(&self) -> bool {
        self.remaining == Some(0)
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// Whether the query has delivered all it will (its LIMIT, or the end it was bound to).
    pub fn is_done(&self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        if self.remaining == Some(0) {
            return true;
        }
        match &self.until {
            Some(until) => self
                .pipeline
                .positions
                .iter()
                .zip(until)
                .all(|(pos, end)| pos >= end),
            None => false,
        }
    }

    /// Rows available now, as batches of the output columns (empty when none).
    pub fn poll(&mut self) -> Result<Vec<RecordBatch>, EngineError> {
        let mut out = std::mem::take(&mut self.pending);
        if let Some(join) = self.join.as_mut() {
            if self.remaining == Some(0) {
                return Ok(out);
            }
            if let Some(ev) = join.poll(self.log.as_ref(), &self.pipeline, &self.id)? {
                let ev = self.pipeline.aggregate(ev, &self.id)?;
                self.deliver(ev, &mut out)?;
            }
            return Ok(out);
        }
        for p in 0..self.pipeline.positions.len() as u32 {
            if self.is_done() {
                break;
            }
            if let Some(until) = &self.until
                && self.pipeline.positions[p as usize] >= until[p as usize]
            {
                continue;
            }
            let Some(ev) = self
                .pipeline
                .poll_partition(self.log.as_ref(), p, &self.id)?
            else {
                continue;
            };
            let ev = self.pipeline.aggregate(ev, &self.id)?;
            self.pipeline.positions[p as usize] = ev.next;
            self.deliver(ev, &mut out)?;
        }
        Ok(out)
    }

    /// Hands a read's rows to the caller (up to the LIMIT), its failures to the
    /// processing log.
    fn deliver(&mut self, ev: Evaluated, out: &mut Vec<RecordBatch>) -> Result<(), EngineError> {
        if !ev.errors.is_empty() {
            self.processing_log.write(self.log.as_ref(), &ev.errors);
        }
        for (_, arrays) in ev.rows {
            let mut b = RecordBatch::try_new(self.schema.clone(), arrays)?;
            if let Some(rem) = self.remaining.as_mut() {
                let take = (*rem).min(b.num_rows() as u64);
                b = b.slice(0, take as usize);
                *rem -= take;
            }
            if b.num_rows() > 0 {
                out.push(b);
            }
        }
        Ok(())
    }

    /// Waits until a source partition has data past the query's position, or `deadline`.
    pub fn wait(&self, deadline: std::time::Instant) -> bool {
        if let Some(join) = &self.join {
            return self
                .waiter
                .wait_many(self.log.as_ref(), &join.wait_targets(), deadline);
        }
        self.waiter.wait_any(
            self.log.as_ref(),
            &self.pipeline.source.topic,
            &self.pipeline.positions,
            deadline,
        )
    }
}

/// Waits for new data without polling: a small single-threaded tokio runtime driving the
/// log's async tail waits. One per waiting thread.
pub(crate) struct Waiter {
    rt: Option<tokio::runtime::Runtime>,
}

impl Waiter {
    pub fn new() -> Self {
        Waiter {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok(),
        }
    }

    /// Blocks until any partition of any of `targets` (topic, positions) has data past its
    /// position, or the deadline. Returns whether data arrived.
    pub fn wait_many(
        &self,
        log: &dyn EventLog,
        targets: &[(String, Vec<u64>)],
        deadline: std::time::Instant,
    ) -> bool {
        let Some(rt) = &self.rt else {
            // No runtime (could not be built): fall back to a short pause.
            std::thread::sleep(std::time::Duration::from_millis(10));
            return true;
        };
        let tokio_deadline = tokio::time::Instant::from_std(deadline);
        let mut waits = tokio::task::JoinSet::new();
        for (topic, positions) in targets {
            for (p, &pos) in positions.iter().enumerate() {
                match log.wait_for_data(topic, p as u32, pos, tokio_deadline) {
                    Ok(f) => {
                        waits.spawn_on(f, rt.handle());
                    }
                    // The topic went away: nothing to wait for; the next read says why.
                    Err(_) => return true,
                }
            }
        }
        rt.block_on(async {
            while let Some(r) = waits.join_next().await {
                if r.unwrap_or(true) {
                    return true;
                }
            }
            false
        })
    }

    /// Blocks until any partition of `topic` has data past its position, or the deadline.
    /// Returns whether data arrived.
    pub fn wait_any(
        &self,
        log: &dyn EventLog,
        topic: &str,
        positions: &[u64],
        deadline: std::time::Instant,
    ) -> bool {
        self.wait_many(log, &[(topic.to_string(), positions.to_vec())], deadline)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
