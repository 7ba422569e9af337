//! Joins of two sources, as ksqlDB runs them: stream-table (a stream record looks up the
//! table's current row for its key), table-table (a change on either side re-joins that
//! key: INNER, LEFT, RIGHT, FULL OUTER, with a tombstone when the key's result goes away)
//! and stream-stream (each record meets the other side's records of its key within
//! `WITHIN (before, after)`; outer joins emit an unmatched record at once, padded with
//! nulls, as ksqlDB does without a grace period).
//!
//! Each step reads what both sides hold past their positions and processes the records in
//! time order. The joined rows are built as an Arrow batch (stream-side columns taken from
//! the read batches, table-side columns from the table state) that the query's WHERE and
//! projection (and GROUP BY, if any) then run over. Table sides are kept in memory and
//! rebuilt from their topics when the query starts; stream sides resume from the query's
//! committed offsets. The join runs as one task over every partition of both sources, so
//! nothing is re-partitioned.
//!
//! A join of more than two sources nests: the left side of `(a ⋈ b) ⋈ c` reads the rows
//! the inner join builds in the same step (its tombstones as a table's deletes), in time
//! order with the right side's records.

pub(crate) mod plan;
mod window;

use std::collections::HashSet;

// Join state is keyed by encoded join keys, hashed once or more per record: hashbrown's
// default hasher (foldhash, as DataFusion's own hash tables) rather than SipHash.
use datafusion::common::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use sluice_sql::ast::{JoinKind, SourceKind};
use sluice_storage::{CommittedOffset, EventLog};

use crate::engine::EngineError;
use crate::processing_log::ProcessingError;
use crate::query::{Evaluated, Pipeline, now_ms};
use crate::schema::arrow_type;
use plan::JoinPlan;

/// The commit metadata that carries a join side's position (see `Join::stream_offsets`).
const JOIN_POSITION: &str = "sluice.join.position=";

/// Which stream-stream records have expired: those older than `before_time` that were
/// kept before the record that expired them (the records after it had not been looked at
/// yet), as if each record's processing ended by dropping what it expired.
#[derive(Clone, Copy)]
struct Expired {
    before_time: i64,
    before_id: u64,
}

impl Expired {
    fn covers(&self, time: i64, id: u64) -> bool {
        time < self.before_time && id < self.before_id
    }
}

/// A side's row kept in state: its columns and join key, as values.
type Row = Arc<[ScalarValue]>;

/// A stream record kept within the join window.
#[derive(Clone, Copy)]
struct Kept {
    time: i64,
    id: u64,
    /// Its row: row `row` of kept batch `batch` (see `KeptBatches`).
    batch: u64,
    row: u32,
    /// Where it was read from (a restart re-reads from the oldest).
    partition: i32,
    offset: i64,
}

/// The read batches (a side's output columns) that kept stream records point into:
/// records stay columnar in the batch they were read in, rather than copied out one value
/// at a time, and a batch goes when the last record kept from it has left its window.
#[derive(Default)]
struct KeptBatches {
    batches: HashMap<u64, KeptBatch>,
    next: u64,
    /// This step's read numbers -> their kept batch (reads are numbered per step).
    of_read: HashMap<usize, u64>,
}

struct KeptBatch {
    columns: Vec<ArrayRef>,
    /// How many of its records are in a window.
    records: usize,
}

impl KeptBatches {
    /// Keeps the batch of read `read` (this step's numbering; registered on first use) for
    /// one more of its records, and says which kept batch it is.
    fn keep(&mut self, read: usize, reads: &[(usize, RecordBatch, Vec<ArrayRef>)]) -> u64 {
        let batch = *self.of_read.entry(read).or_insert_with(|| {
            let batch = self.next;
            self.next += 1;
            self.batches.insert(
                batch,
                KeptBatch {
                    columns: reads[read].2.clone(),
                    records: 0,
                },
            );
            batch
        });
        if let Some(kept) = self.batches.get_mut(&batch) {
            kept.records += 1;
        }
        batch
    }

    /// Column `c` of kept batch `batch`.
    fn column(&self, batch: u64, c: usize) -> Result<&ArrayRef, EngineError> {
        self.batches
            .get(&batch)
            .and_then(|b| b.columns.get(c))
            .ok_or_else(|| EngineError("a kept join row's batch is gone".into()))
    }

    /// One of `batch`'s records has left its window: the batch goes with its last.
    fn release(&mut self, batch: u64) {
        let last = self.batches.get_mut(&batch).is_some_and(|b| {
            b.records = b.records.saturating_sub(1);
            b.records == 0
        });
        if last {
            self.batches.remove(&batch);
        }
    }
}

/// Unmatched outer records held until their window closes: (time, id) -> (partition, row).
type Held = std::collections::BTreeMap<(i64, u64), (i32, Row)>;

/// Where a joined row's side comes from.
#[derive(Clone)]
enum Side {
    None,
    /// Row `1` of read `0` of this step.
    Read(usize, usize),
    /// Row `1` of kept batch `0` (a stream record in a join window).
    Kept(u64, u32),
    Stored(Row),
}

/// One joined row (or a tombstone) before it is built.
struct Out {
    time: i64,
    partition: i32,
    left: Side,
    right: Side,
    delete: bool,
}

impl Out {
    /// A joined row (not a tombstone).
    fn row(time: i64, partition: i32, (left, right): (Side, Side)) -> Out {
        Out {
            time,
            partition,
            left,
            right,
            delete: false,
        }
    }
}

/// A record's join key (Arrow row format), held inline when short, as the keys of most
/// joins (numbers, short strings) are: an event then allocates nothing of its own.
enum JoinKey {
    Inline {
        len: u8,
        bytes: [u8; JoinKey::INLINE],
    },
    Heap(Box<[u8]>),
}

impl JoinKey {
    const INLINE: usize = 30;

    fn new(key: &[u8]) -> JoinKey {
        match key.len() {
            len if len <= Self::INLINE => {
                let mut bytes = [0; Self::INLINE];
                bytes[..len].copy_from_slice(key);
                JoinKey::Inline {
                    len: len as u8,
                    bytes,
                }
            }
            _ => JoinKey::Heap(key.into()),
        }
    }
}

impl std::ops::Deref for JoinKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            JoinKey::Inline { len, bytes } => &bytes[..*len as usize],
            JoinKey::Heap(b) => b,
        }
    }
}

/// A record of either side, in the order the step processes them.
struct Event {
    time: i64,
    /// 0: left, 1: right.
    side: usize,
    offset: i64,
    partition: i32,
    /// The row (read, row), or None for a table tombstone.
    row: Option<(usize, usize)>,
    key: Option<JoinKey>,
    /// A foreign-key join's left row: its primary key.
    pk: Option<Vec<u8>>,
}

/// A foreign-key join's index: each left row's foreign key, and the left rows (by primary
/// key, in key order) that name each right key.
#[derive(Default)]
struct ForeignKeys {
    of: HashMap<Vec<u8>, Vec<u8>>,
    subscribers: HashMap<Vec<u8>, std::collections::BTreeSet<Vec<u8>>>,
}

/// A running join: its plan, the table sides' rows and the stream sides' windows.
pub(crate) struct Join {
    pub plan: JoinPlan,
    /// The join whose rows the left side reads (a join of more than two sources).
    nested: Option<Box<Join>>,
    converter: RowConverter,
    /// Per side: a table's current rows by join key.
    tables: [HashMap<Vec<u8>, Row>; 2],
    /// Per side: a stream's records within the join window, by join key.
    windows: [window::Window; 2],
    /// The batches the windows' records point into.
    kept: KeptBatches,
    /// Table-table: keys whose last result was a row (a later miss deletes it).
    shown: HashSet<Vec<u8>>,
    stream_time: i64,
    /// Joined columns the query reads (the others are built as nulls).
    used: HashSet<String>,
    /// Per side: unmatched outer records held until their window closes (GRACE PERIOD).
    held: [Held; 2],
    /// The id of the next stream record kept in a window.
    next_id: u64,
    /// The stream-stream records expired so far (dropped from the windows once per step).
    expired: Expired,
    /// A foreign-key join: the left key's converter (the left table's rows are kept by
    /// their key) and the index from right keys to left rows.
    primary_key: Option<(RowConverter, Vec<usize>)>,
    foreign_keys: ForeignKeys,
    /// Per side and partition: the position the query had reached before a restart. The
    /// records below it are read again only to rebuild state (a table, a join window) and
    /// emit nothing: their results were written before.
    replay_until: [Vec<u64>; 2],
    /// Records read but not processed yet, with the reads they point into: each is later
    /// than a record the other side has not read yet (see `frontier`).
    pending: Pending,
    /// Per side and partition: the latest record time read so far.
    read_time: [Vec<i64>; 2],
    /// All-null columns, by type, that the columns the query does not read are cut from.
    nulls: HashMap<DataType, ArrayRef>,
}

/// Read records held back for a later step, and the reads their rows are in.
#[derive(Default)]
struct Pending {
    reads: Vec<(usize, RecordBatch, Vec<ArrayRef>)>,
    events: Vec<Event>,
}

impl Join {
    /// A join whose joined rows `joined` (the query's pipeline over them) reads.
    pub fn new(mut plan: JoinPlan, joined: &Pipeline) -> Result<Join, EngineError> {
        let nested = match plan.nested.take() {
            Some(inner) => Some(Box::new(Join::new(*inner, &plan.left.planned.pipeline)?)),
            None => None,
        };
        let mut used: HashSet<String> = HashSet::new();
        for e in joined.projection.iter().chain(joined.filter.iter()) {
            for c in datafusion::physical_expr::utils::collect_columns(e) {
                used.insert(c.name().to_string());
            }
        }
        // Each side decodes only what the query and the join key read.
        for side in [&mut plan.left, &mut plan.right] {
            if side.alias.is_empty() {
                // An inner join's rows: built, not decoded.
                continue;
            }
            let pipeline = &mut side.planned.pipeline;
            let mut read: HashSet<String> = side
                .columns
                .iter()
                .filter(|c| used.contains(&format!("{}_{}", side.alias, c.name)))
                .map(|c| c.name.clone())
                .collect();
            if let Some(key) = pipeline.projection.last() {
                for c in datafusion::physical_expr::utils::collect_columns(key) {
                    read.insert(c.name().to_string());
                }
            }
            if let Some(t) = &pipeline.source.timestamp {
                read.insert(t.column.clone());
            }
            pipeline.source_value.skip_unread(&read);
        }
        let key = plan
            .left
            .planned
            .pipeline
            .output
            .last()
            .and_then(|c| arrow_type(&c.ty))
            .ok_or_else(|| EngineError("join side has no join key".into()))?;
        let primary_key = if plan.foreign_key {
            let columns: Vec<usize> = (0..plan.left.columns.len())
                .filter(|c| plan.left.columns[*c].key)
                .collect();
            let fields = columns
                .iter()
                .map(|c| {
                    arrow_type(&plan.left.columns[*c].ty)
                        .map(SortField::new)
                        .ok_or_else(|| EngineError("key column has no type".into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some((RowConverter::new(fields)?, columns))
        } else {
            None
        };
        Ok(Join {
            plan,
            nested,
            primary_key,
            foreign_keys: ForeignKeys::default(),
            replay_until: [Vec::new(), Vec::new()],
            pending: Pending::default(),
            read_time: [Vec::new(), Vec::new()],
            nulls: HashMap::new(),
            converter: RowConverter::new(vec![SortField::new(key)])?,
            tables: [HashMap::new(), HashMap::new()],
            windows: Default::default(),
            kept: KeptBatches::default(),
            shown: HashSet::new(),
            stream_time: i64::MIN,
            used,
            held: [Held::new(), Held::new()],
            next_id: 0,
            expired: Expired {
                before_time: i64::MIN,
                before_id: 0,
            },
        })
    }

    /// Side 0 (left) or 1 (right).
    fn side(&self, side: usize) -> &plan::JoinSide {
        if side == 0 {
            &self.plan.left
        } else {
            &self.plan.right
        }
    }

    fn side_pipeline(&self, side: usize) -> &Pipeline {
        &self.side(side).planned.pipeline
    }

    fn side_pipeline_mut(&mut self, side: usize) -> &mut Pipeline {
        if side == 0 {
            &mut self.plan.left.planned.pipeline
        } else {
            &mut self.plan.right.planned.pipeline
        }
    }

    /// The topics the join reads and its positions in each (to wait on).
    pub fn wait_targets(&self) -> Vec<(String, Vec<u64>)> {
        let mut targets = match &self.nested {
            Some(inner) => inner.wait_targets(),
            None => {
                let left = self.side_pipeline(0);
                vec![(left.source.topic.clone(), left.positions.clone())]
            }
        };
        let right = self.side_pipeline(1);
        targets.push((right.source.topic.clone(), right.positions.clone()));
        targets
    }

    /// The sources' names, left to right.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = match &self.nested {
            Some(inner) => inner.source_names(),
            None => vec![self.plan.left.planned.source.name.clone()],
        };
        names.push(self.plan.right.planned.source.name.clone());
        names
    }

    /// Reads what both sides hold, joins it in time order and runs `joined` (the query's
    /// WHERE and projection over joined rows) over the result. None when nothing was read.
    pub fn poll(
        &mut self,
        log: &dyn EventLog,
        joined: &Pipeline,
        query_id: &str,
    ) -> Result<Option<Evaluated>, EngineError> {
        // What an earlier step held back comes first (its reads keep their indexes).
        let Pending {
            mut reads,
            mut events,
        } = std::mem::take(&mut self.pending);
        self.kept.of_read.clear();
        // The partitions whose records wait for the other side read no further.
        let waiting: HashSet<(usize, i32)> = events.iter().map(|e| (e.side, e.partition)).collect();
        let mut errors: Vec<ProcessingError> = Vec::new();
        let mut read = 0;
        let mut advanced: Vec<(usize, u32, u64)> = Vec::new();
        let mut nested_read = false;
        if let Some(inner) = self.nested.as_mut()
            && let Some(ev) = inner.poll(log, &self.plan.left.planned.pipeline, query_id)?
        {
            // The inner join's rows, as the left side's records (its tombstones as a
            // table's deletes).
            nested_read = true;
            read += ev.read;
            errors.extend(ev.errors);
            for (batch, outputs) in ev.rows {
                let partitions = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .ok_or_else(|| EngineError("pseudo-column is not INT".into()))?;
                let each = |r: usize| {
                    let delete = ev.null_values.contains(&(r as i64));
                    Some((r as i64, partitions.value(r), delete))
                };
                self.batch_events(0, reads.len(), (&batch, &outputs), each, &mut events)?;
                reads.push((0, batch, outputs));
            }
        }
        for side in 0..2 {
            if side == 0 && self.nested.is_some() {
                continue;
            }
            let partitions = self.side_pipeline(side).positions.len();
            self.read_time[side].resize(partitions, i64::MIN);
            for p in 0..partitions as u32 {
                if waiting.contains(&(side, p as i32)) {
                    continue;
                }
                let pipeline = self.side_pipeline(side);
                let Some(ev) = pipeline.poll_partition(log, p, query_id)? else {
                    continue;
                };
                let latest = column_i64_max(&ev.rows)?;
                let pipeline = self.side_pipeline(side);
                advanced.push((side, p, ev.next));
                read += ev.read;
                errors.extend(ev.errors);
                for (batch, outputs) in ev.rows {
                    let offsets = column_i64(&batch, 2)?;
                    // A stream record without a value joins nothing (Kafka Streams skips
                    // it).
                    let each = |r: usize| {
                        let offset = offsets.value(r);
                        (!ev.null_values.contains(&offset)).then_some((offset, p as i32, false))
                    };
                    self.batch_events(side, reads.len(), (&batch, &outputs), each, &mut events)?;
                    reads.push((side, batch, outputs));
                }
                let latest = ev
                    .tombstones
                    .iter()
                    .map(|(_, time, _)| *time)
                    .fold(latest, i64::max);
                for (offset, time, key) in &ev.tombstones {
                    let (arrays, errs) = pipeline.source_key.decode(&[key.as_deref()])?;
                    if !errs.is_empty() || arrays.is_empty() {
                        continue;
                    }
                    let (key, pk) = match &self.primary_key {
                        // A foreign-key join's left row goes by its primary key.
                        Some((converter, columns)) if side == 0 => {
                            if arrays.len() < columns.len() {
                                continue;
                            }
                            let pk = converter.convert_columns(&arrays[..columns.len()])?;
                            (None, Some(pk.row(0).as_ref().to_vec()))
                        }
                        _ => {
                            let keys = self.converter.convert_columns(&arrays[..1])?;
                            (Some(JoinKey::new(keys.row(0).as_ref())), None)
                        }
                    };
                    events.push(Event {
                        time: *time,
                        side,
                        offset: *offset,
                        partition: p as i32,
                        row: None,
                        key,
                        pk,
                    });
                }
                let seen = &mut self.read_time[side][p as usize];
                *seen = (*seen).max(latest);
            }
        }
        if advanced.is_empty() && !nested_read && events.is_empty() {
            return Ok(None);
        }
        // Records later than what another partition has yet to deliver wait for it, so
        // both sides meet in event time however far apart their reads reach (a 4 MB read
        // of auctions spans ten times the event time of one of bids).
        for (side, p, next) in advanced {
            self.side_pipeline_mut(side).positions[p as usize] = next;
        }
        let frontier = self.frontier(log)?;
        let mut later: Vec<Event> = Vec::new();
        if frontier < i64::MAX {
            // Per partition in offset order: from its first record past the frontier on,
            // everything waits (a partition is never processed out of its own order).
            events.sort_by_key(|e| (e.side, e.partition, e.offset));
            let nested = self.nested.is_some();
            let mut cut: Option<(usize, i32)> = None;
            let mut now = Vec::with_capacity(events.len());
            for e in events {
                let waits = !(nested && e.side == 0)
                    && (cut == Some((e.side, e.partition)) || e.time > frontier);
                if waits {
                    cut = Some((e.side, e.partition));
                    later.push(e);
                } else {
                    now.push(e);
                }
            }
            events = now;
        }
        // Time order across the sides; where times tie, a table's change first (a row
        // written at the same instant as a stream record is there for it), then the left,
        // then each side's own order.
        let kinds = [self.plan.left.kind, self.plan.right.kind];
        events.sort_by_key(|e| {
            let stream = kinds[e.side] == SourceKind::Stream;
            (e.time, stream, e.side, e.partition, e.offset)
        });
        let mut outs: Vec<Out> = Vec::with_capacity(events.len());
        for e in &events {
            let before = outs.len();
            self.process(e, &reads, &mut outs)?;
            let replayed = self.replay_until[e.side]
                .get(e.partition as usize)
                .is_some_and(|until| e.offset < *until as i64);
            if replayed {
                outs.truncate(before);
            }
        }
        let batch = self.build(&outs, &reads)?;
        // Windows are pruned once per step, not per record: a scan of every key per
        // record would be quadratic; a record kept a little longer matches nothing, as
        // matches are by time range. (After the joined rows are built: they may point into
        // batches that expire.)
        if self.plan.within.is_some() {
            self.expire_windows();
        }
        self.pending = hold(later, reads);
        let mut rejected = Vec::new();
        let (rows, outputs) = joined.filter_and_project(&batch, &mut rejected)?;
        let null_values = outs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.delete)
            .map(|(i, _)| i as i64)
            .collect();
        Ok(Some(Evaluated {
            headers: std::collections::HashMap::new(),
            partition: 0,
            next: 0,
            read,
            rows: vec![(rows, outputs)],
            tombstones: Vec::new(),
            null_values,
            rejected,
            errors,
        }))
    }

    /// The events of one read batch of `side` (read number `read`; `outputs`: the side's
    /// columns, then its join key). `each(r)` gives row `r`'s offset, partition and whether
    /// it deletes its key, or None to skip it.
    fn batch_events(
        &self,
        side: usize,
        read: usize,
        (batch, outputs): (&RecordBatch, &[ArrayRef]),
        each: impl Fn(usize) -> Option<(i64, i32, bool)>,
        events: &mut Vec<Event>,
    ) -> Result<(), EngineError> {
        let key_array = outputs
            .last()
            .ok_or_else(|| EngineError("join side has no join key".into()))?;
        let keys = self
            .converter
            .convert_columns(std::slice::from_ref(key_array))?;
        let times = column_i64(batch, 0)?;
        // Room for the batch's events at once (not grown, and copied, event by event).
        events.reserve(batch.num_rows());
        // A foreign-key join's left rows also go by their primary key.
        let pks = match &self.primary_key {
            Some((converter, columns)) if side == 0 => {
                let arrays = columns
                    .iter()
                    .map(|c| {
                        outputs
                            .get(*c)
                            .cloned()
                            .ok_or_else(|| EngineError("join side lacks its key".into()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(converter.convert_columns(&arrays)?)
            }
            _ => None,
        };
        for r in 0..batch.num_rows() {
            let Some((offset, partition, delete)) = each(r) else {
                continue;
            };
            events.push(Event {
                time: times.value(r),
                side,
                offset,
                partition,
                row: (!delete).then_some((read, r)),
                key: (!key_array.is_null(r)).then(|| JoinKey::new(keys.row(r).as_ref())),
                pk: pks.as_ref().map(|k| k.row(r).as_ref().to_vec()),
            });
        }
        Ok(())
    }

    /// Commits the sides' positions (see `stream_offsets`).
    pub fn commit(&self, log: &dyn EventLog, query_id: &str) -> Result<(), EngineError> {
        log.commit_offsets(query_id, &self.stream_offsets())?;
        Ok(())
    }

    /// What the join commits for each source side, its nested joins' too: the offset to
    /// read again from at a restart (a stream-stream join's oldest record still in a
    /// window, so the window is rebuilt; else the position) with the position itself in
    /// the metadata, below which re-read records rebuild state without emitting. A table
    /// side is re-read from its start whatever is committed.
    fn stream_offsets(&self) -> Vec<CommittedOffset> {
        let mut offsets = match &self.nested {
            Some(inner) => inner.stream_offsets(),
            None => Vec::new(),
        };
        for side in 0..2 {
            if side == 0 && self.nested.is_some() {
                continue;
            }
            let p = self.side_pipeline(side);
            // Records held back were read but not processed: the position to resume at
            // is the first of them.
            let mut positions = p.positions.clone();
            for e in self.pending.events.iter().filter(|e| e.side == side) {
                if let Some(at) = positions.get_mut(e.partition as usize) {
                    *at = (*at).min(e.offset as u64);
                }
            }
            let mut rebuild_from = positions.clone();
            for (p, from) in rebuild_from.iter_mut().enumerate() {
                if let Some(lowest) = self.windows[side].lowest_offset(p) {
                    *from = (*from).min(lowest as u64);
                }
            }
            for (partition, (&position, &offset)) in positions.iter().zip(&rebuild_from).enumerate()
            {
                offsets.push(CommittedOffset {
                    topic: p.source.topic.clone(),
                    partition: partition as u32,
                    offset,
                    metadata: format!("{JOIN_POSITION}{position}"),
                    commit_timestamp: now_ms(),
                });
            }
        }
        offsets
    }

    /// After a restart: where this join's own sides had got to (their re-read records
    /// then only rebuild state). A nested join's rows are not replayed that way: they are
    /// emitted again for the outer join's state, which may repeat results (at least once).
    pub fn resume(&mut self, log: &dyn EventLog, query_id: &str) -> Result<(), EngineError> {
        let committed = log.committed_offsets(query_id)?;
        for side in 0..2 {
            if side == 0 && self.nested.is_some() {
                continue;
            }
            let p = self.side_pipeline(side);
            let mut until = vec![0u64; p.positions.len()];
            for c in &committed {
                if c.topic == p.source.topic
                    && let Some(slot) = until.get_mut(c.partition as usize)
                    && let Some(position) = c
                        .metadata
                        .strip_prefix(JOIN_POSITION)
                        .and_then(|v| v.parse().ok())
                {
                    *slot = position;
                }
            }
            self.replay_until[side] = until;
        }
        Ok(())
    }

    /// The latest time every record up to which can be processed now: the least of the
    /// latest times read from the partitions that have more records to read (what they
    /// hold next is no earlier, as far as their own order goes). `i64::MAX` when every
    /// partition was read to its end.
    fn frontier(&self, log: &dyn EventLog) -> Result<i64, EngineError> {
        let mut frontier = i64::MAX;
        for side in 0..2 {
            if side == 0 && self.nested.is_some() {
                continue;
            }
            let pipeline = self.side_pipeline(side);
            for (p, &position) in pipeline.positions.iter().enumerate() {
                let (_, end) = log.offsets(&pipeline.source.topic, p as u32)?;
                if position < end {
                    let seen = self.read_time[side].get(p).copied().unwrap_or(i64::MIN);
                    frontier = frontier.min(seen);
                }
            }
        }
        Ok(frontier)
    }

    fn kind_of(&self, side: usize) -> SourceKind {
        self.side(side).kind
    }

    /// One record through the join, appending what it emits.
    fn process(
        &mut self,
        e: &Event,
        reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
        outs: &mut Vec<Out>,
    ) -> Result<(), EngineError> {
        if self.plan.foreign_key {
            return self.process_foreign_key(e, reads, outs);
        }
        let kind = self.plan.kind;
        let this = e.side;
        let other = 1 - this;
        let stored = stored_row;
        let pair = |mine: Side, theirs: Side| {
            if this == 0 {
                (mine, theirs)
            } else {
                (theirs, mine)
            }
        };
        // Whether an unmatched record of `side` is still emitted (outer on that side).
        let outer = |side: usize| match kind {
            JoinKind::Inner => false,
            JoinKind::Left => side == 0,
            JoinKind::Right => side == 1,
            JoinKind::Full => true,
        };
        match (self.kind_of(this), self.kind_of(other)) {
            // A table side's change: stream-table joins only update the table.
            (SourceKind::Table, SourceKind::Stream) => {
                if let Some(key) = e.key.as_deref() {
                    match e.row {
                        Some(at) => {
                            let row = stored(reads, at)?;
                            self.tables[this].insert(key.to_vec(), row);
                        }
                        None => {
                            self.tables[this].remove(key);
                        }
                    }
                }
            }
            (SourceKind::Stream, SourceKind::Table) => {
                let Some((b, r)) = e.row else {
                    return Ok(());
                };
                let found = e
                    .key
                    .as_deref()
                    .and_then(|k| self.tables[other].get(k))
                    .cloned();
                match found {
                    Some(row) => {
                        outs.push(Out::row(
                            e.time,
                            e.partition,
                            pair(Side::Read(b, r), Side::Stored(row)),
                        ));
                    }
                    None if outer(this) => {
                        outs.push(Out::row(
                            e.time,
                            e.partition,
                            pair(Side::Read(b, r), Side::None),
                        ));
                    }
                    None => {}
                }
            }
            (SourceKind::Table, SourceKind::Table) => {
                let Some(key) = e.key.as_deref() else {
                    return Ok(());
                };
                let mine = match e.row {
                    Some(at) => {
                        let row = stored(reads, at)?;
                        self.tables[this].insert(key.to_vec(), row.clone());
                        Some(row)
                    }
                    None => {
                        self.tables[this].remove(key);
                        None
                    }
                };
                let theirs = self.tables[other].get(key).cloned();
                let (l, r) = if this == 0 {
                    (mine, theirs)
                } else {
                    (theirs, mine)
                };
                let show = match kind {
                    JoinKind::Inner => l.is_some() && r.is_some(),
                    JoinKind::Left => l.is_some(),
                    JoinKind::Right => r.is_some(),
                    JoinKind::Full => l.is_some() || r.is_some(),
                };
                let side = |x: Option<Row>| x.map_or(Side::None, Side::Stored);
                if show {
                    self.shown.insert(key.to_vec());
                    outs.push(Out::row(e.time, e.partition, (side(l), side(r))));
                } else if self.shown.remove(key) {
                    // The key's result goes away: a tombstone, keyed by the join key.
                    outs.push(Out {
                        time: e.time,
                        partition: e.partition,
                        left: Side::Stored(tombstone_row(key, self, 0)?),
                        right: Side::Stored(tombstone_row(key, self, 1)?),
                        delete: true,
                    });
                }
            }
            (SourceKind::Stream, SourceKind::Stream) => {
                let Some((b, r)) = e.row else {
                    return Ok(());
                };
                let (before, after) = self.plan.within.unwrap_or((0, 0));
                let span = before.max(after);
                // With a GRACE PERIOD, Kafka Streams holds an unmatched outer record until
                // its window closes; an outer side's record later than that is emitted at
                // once, unmatched.
                let held = self.plan.grace_given;
                let late = held
                    && e.time.saturating_add(span).saturating_add(self.plan.grace)
                        < self.stream_time;
                self.stream_time = self.stream_time.max(e.time);
                if late && outer(this) {
                    // Too late to wait: emitted unmatched at once (and kept for the other
                    // side's later records), as Kafka Streams does.
                    outs.push(Out::row(
                        e.time,
                        e.partition,
                        pair(Side::Read(b, r), Side::None),
                    ));
                    if let Some(key) = e.key.as_deref() {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.keep(this, key, e, (b, r), reads, id);
                    }
                    return Ok(());
                }
                // The other side's records this one meets: for a left record at t, right
                // records in [t - before, t + after]; for a right record, the mirror.
                let (lo, hi) = if this == 0 {
                    (e.time.saturating_sub(before), e.time.saturating_add(after))
                } else {
                    (e.time.saturating_sub(after), e.time.saturating_add(before))
                };
                let mut matched = false;
                let id = self.next_id;
                self.next_id += 1;
                if let Some(key) = e.key.as_deref() {
                    {
                        let expired = self.expired;
                        for k in self.windows[other].get(key).filter(|k| {
                            k.time >= lo && k.time <= hi && !expired.covers(k.time, k.id)
                        }) {
                            matched = true;
                            if held {
                                self.held[other].remove(&(k.time, k.id));
                            }
                            outs.push(Out::row(
                                e.time.max(k.time),
                                e.partition,
                                pair(Side::Read(b, r), Side::Kept(k.batch, k.row)),
                            ));
                        }
                    }
                    if !matched && outer(this) && held {
                        let row = stored(reads, (b, r))?;
                        self.held[this].insert((e.time, id), (e.partition, row));
                    }
                    self.keep(this, key, e, (b, r), reads, id);
                }
                if !matched && outer(this) && !(held && e.key.is_some()) {
                    outs.push(Out::row(
                        e.time,
                        e.partition,
                        pair(Side::Read(b, r), Side::None),
                    ));
                }
                self.release_held(span, outs);
                // What has expired now (pruned at the end of the step).
                self.expired = Expired {
                    before_time: self
                        .stream_time
                        .saturating_sub(span.saturating_add(self.plan.grace)),
                    before_id: self.next_id,
                };
            }
        }
        Ok(())
    }

    /// One record through a foreign-key join (as Kafka Streams' KIP-213 join resolves it):
    /// a left row meets the right row its foreign key names; a right row's change
    /// re-joins every left row that names it, in left-key order. An INNER join's left row
    /// without a match deletes its earlier result (a new row without one emits nothing); a
    /// deleted left row's result is deleted.
    fn process_foreign_key(
        &mut self,
        e: &Event,
        reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
        outs: &mut Vec<Out>,
    ) -> Result<(), EngineError> {
        let left_join = self.plan.kind == JoinKind::Left;
        let tombstone = |left: Side| Out {
            time: e.time,
            partition: e.partition,
            left,
            right: Side::None,
            delete: true,
        };
        if e.side == 0 {
            let Some(pk) = &e.pk else {
                return Ok(());
            };
            let old = self.tables[0].remove(pk);
            if let Some(fk) = self.foreign_keys.of.remove(pk)
                && let Some(set) = self.foreign_keys.subscribers.get_mut(&fk)
            {
                set.remove(pk);
                if set.is_empty() {
                    self.foreign_keys.subscribers.remove(&fk);
                }
            }
            let Some((b, r)) = e.row else {
                if let Some(old) = old {
                    outs.push(tombstone(Side::Stored(old)));
                }
                return Ok(());
            };
            let row = stored_row(reads, (b, r))?;
            self.tables[0].insert(pk.clone(), row);
            if let Some(fk) = e.key.as_deref() {
                self.foreign_keys.of.insert(pk.clone(), fk.to_vec());
                self.foreign_keys
                    .subscribers
                    .entry(fk.to_vec())
                    .or_default()
                    .insert(pk.clone());
            }
            let right = e
                .key
                .as_deref()
                .and_then(|k| self.tables[1].get(k))
                .cloned();
            match right {
                Some(right) => outs.push(Out::row(
                    e.time,
                    e.partition,
                    (Side::Read(b, r), Side::Stored(right)),
                )),
                None if left_join => outs.push(Out::row(
                    e.time,
                    e.partition,
                    (Side::Read(b, r), Side::None),
                )),
                None if old.is_some() => outs.push(tombstone(Side::Read(b, r))),
                None => {}
            }
            return Ok(());
        }
        let Some(key) = e.key.as_deref() else {
            return Ok(());
        };
        let right = match e.row {
            Some(at) => {
                let row = stored_row(reads, at)?;
                self.tables[1].insert(key.to_vec(), row.clone());
                Some(row)
            }
            None => {
                self.tables[1].remove(key);
                None
            }
        };
        let Some(subscribers) = self.foreign_keys.subscribers.get(key) else {
            return Ok(());
        };
        for pk in subscribers {
            let Some(left) = self.tables[0].get(pk).cloned() else {
                continue;
            };
            match &right {
                Some(row) => outs.push(Out::row(
                    e.time,
                    e.partition,
                    (Side::Stored(left), Side::Stored(row.clone())),
                )),
                None if left_join => outs.push(Out::row(
                    e.time,
                    e.partition,
                    (Side::Stored(left), Side::None),
                )),
                None => outs.push(tombstone(Side::Stored(left))),
            }
        }
        Ok(())
    }

    /// Keeps a stream record (id `id`, row `r` of read `b`) in its side's join window.
    fn keep(
        &mut self,
        side: usize,
        key: &[u8],
        e: &Event,
        (b, r): (usize, usize),
        reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
        id: u64,
    ) {
        let batch = self.kept.keep(b, reads);
        let kept = Kept {
            time: e.time,
            id,
            batch,
            row: r as u32,
            partition: e.partition,
            offset: e.offset,
        };
        self.windows[side].push(key, kept);
    }

    /// Emits, unmatched, the held outer records whose window has closed, oldest first.
    fn release_held(&mut self, span: i64, outs: &mut Vec<Out>) {
        let close = self
            .stream_time
            .saturating_sub(span)
            .saturating_sub(self.plan.grace);
        let mut due: Vec<(i64, u64, usize, i32, Row)> = Vec::new();
        for side in 0..2 {
            while let Some(entry) = self.held[side].first_entry() {
                if entry.key().0 >= close {
                    break;
                }
                let ((t, id), (partition, row)) = entry.remove_entry();
                due.push((t, id, side, partition, row));
            }
        }
        due.sort_by_key(|d| (d.0, d.1));
        for (t, _, side, partition, row) in due {
            let sides = if side == 0 {
                (Side::Stored(row), Side::None)
            } else {
                (Side::None, Side::Stored(row))
            };
            outs.push(Out::row(t, partition, sides));
        }
    }

    /// Drops stream records no later record can meet any more.
    fn expire_windows(&mut self) {
        let expired = self.expired;
        let kept = &mut self.kept;
        for w in &mut self.windows {
            w.expire(expired, |k| kept.release(k.batch));
        }
    }

    /// The joined rows of `outs` as a batch of the joined source's input schema.
    fn build(
        &mut self,
        outs: &[Out],
        reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
    ) -> Result<RecordBatch, EngineError> {
        let n = outs.len();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(outs.iter().map(|o| o.time))),
            Arc::new(Int32Array::from_iter_values(
                outs.iter().map(|o| o.partition),
            )),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
        ];
        for (s, c) in self.column_order() {
            if self.plan.synthetic_key && s == usize::MAX {
                // ROWKEY: the join key of whichever side is there.
                columns.push(self.side_column(&present_side(outs), reads, (0, None))?);
            } else if self.plan.key_column == Some((s, c)) {
                // The key column holds the join key, whichever side the row has.
                columns.push(self.side_column(&present_side(outs), reads, (0, None))?);
            } else if !self.used.contains(&self.joined_name(s, c)) {
                // Not read by the query: nulls, not a copy (a slice of ones made before).
                let dt = self.column_type(s, c)?;
                columns.push(self.nulls_of(dt, n));
            } else {
                let refs: Vec<(usize, Side)> = outs
                    .iter()
                    .map(|o| {
                        (
                            s,
                            if s == 0 {
                                o.left.clone()
                            } else {
                                o.right.clone()
                            },
                        )
                    })
                    .collect();
                columns.push(self.side_column(&refs, reads, (s, Some(c)))?);
            }
        }
        let schema = crate::engine::Engine::input_schema(&self.joined_source_columns())?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// `n` nulls of type `dt`: a slice of a column of nulls kept for the type, made (twice
    /// as long) when the kept one is too short.
    fn nulls_of(&mut self, dt: DataType, n: usize) -> ArrayRef {
        match self.nulls.get(&dt) {
            Some(nulls) if nulls.len() >= n => nulls.slice(0, n),
            _ => {
                let nulls = datafusion::arrow::array::new_null_array(&dt, n.max(1024) * 2);
                self.nulls.insert(dt, Arc::clone(&nulls));
                nulls.slice(0, n)
            }
        }
    }

    /// The joined columns in the joined source's input order: the key first (ROWKEY,
    /// marked `usize::MAX`, or the key column), then each side's other columns.
    fn column_order(&self) -> Vec<(usize, usize)> {
        let mut order = Vec::new();
        if self.plan.synthetic_key {
            order.push((usize::MAX, 0));
        }
        if let Some(k) = self.plan.key_column {
            order.push(k);
        }
        for (s, side) in [&self.plan.left, &self.plan.right].iter().enumerate() {
            for c in 0..side.columns.len() {
                if self.plan.key_column != Some((s, c)) {
                    order.push((s, c));
                }
            }
        }
        order
    }

    /// A synthetic source of the joined columns (in `column_order`), for its input schema.
    fn joined_source_columns(&self) -> crate::catalog::Source {
        let mut source = self.plan.left.planned.source.clone();
        source.headers = Vec::new();
        source.columns = Vec::new();
        let sides = [&self.plan.left, &self.plan.right];
        for (s, c) in self.column_order() {
            let column = if s == usize::MAX {
                let ty = self
                    .plan
                    .left
                    .planned
                    .pipeline
                    .output
                    .last()
                    .map(|c| c.ty.clone());
                let Some(ty) = ty else { continue };
                crate::catalog::Column {
                    name: self.plan.synthetic_name.clone(),
                    ty,
                    key: true,
                }
            } else {
                let col = &sides[s].columns[c];
                crate::catalog::Column {
                    name: sides[s].joined_name(c),
                    ty: col.ty.clone(),
                    key: self.plan.key_column == Some((s, c))
                        || (self.plan.foreign_key && s == 0 && col.key),
                }
            };
            source.columns.push(column);
        }
        source
    }

    /// One joined column: column `c` of each row's side (`None`: the join key), null where
    /// the side is absent. Taken from the read batches where every row comes from one.
    fn side_column(
        &self,
        refs: &[(usize, Side)],
        reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
        (side0, c): (usize, Option<usize>),
    ) -> Result<ArrayRef, EngineError> {
        let index = |side: usize| c.unwrap_or(self.side_width(side));
        let ty = |side: usize| {
            self.side(side)
                .planned
                .pipeline
                .output
                .get(index(side))
                .and_then(|col| arrow_type(&col.ty))
                .ok_or_else(|| EngineError("join column has no type".into()))
        };
        let dt = ty(side0)?;
        if refs.iter().all(|(_, r)| !matches!(r, Side::Stored(_))) {
            // Interleave from the read batches, with a one-row null array for absent sides.
            let nulls = datafusion::arrow::array::new_null_array(&dt, 1);
            let mut sources: Vec<&dyn Array> = vec![nulls.as_ref()];
            // (kept?, read or kept batch) -> its index in `sources`.
            let mut at: HashMap<(bool, u64), usize> = HashMap::new();
            let mut picks = Vec::with_capacity(refs.len());
            for (s, r) in refs {
                match r {
                    Side::Read(b, row) => {
                        let i = *at.entry((false, *b as u64)).or_insert_with(|| {
                            sources.push(reads[*b].2[index(*s)].as_ref());
                            sources.len() - 1
                        });
                        picks.push((i, *row));
                    }
                    Side::Kept(batch, row) => {
                        let i = match at.get(&(true, *batch)) {
                            Some(i) => *i,
                            None => {
                                sources.push(self.kept.column(*batch, index(*s))?.as_ref());
                                at.insert((true, *batch), sources.len() - 1);
                                sources.len() - 1
                            }
                        };
                        picks.push((i, *row as usize));
                    }
                    _ => picks.push((0, 0)),
                }
            }
            return Ok(datafusion::arrow::compute::interleave(&sources, &picks)?);
        }
        let null = ScalarValue::try_from(&dt)?;
        let values = refs
            .iter()
            .map(|(s, r)| match r {
                Side::None => Ok(null.clone()),
                Side::Read(b, row) => {
                    Ok(ScalarValue::try_from_array(&reads[*b].2[index(*s)], *row)?)
                }
                Side::Stored(v) => Ok(v[index(*s)].clone()),
                Side::Kept(batch, row) => Ok(ScalarValue::try_from_array(
                    self.kept.column(*batch, index(*s))?,
                    *row as usize,
                )?),
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        if values.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&dt));
        }
        let array = ScalarValue::iter_to_array(values)?;
        Ok(if array.data_type() != &dt {
            datafusion::arrow::compute::cast(&array, &dt)?
        } else {
            array
        })
    }

    /// The joined name of side `s`'s column `c`.
    fn joined_name(&self, s: usize, c: usize) -> String {
        self.side(s).joined_name(c)
    }

    fn column_type(
        &self,
        s: usize,
        c: usize,
    ) -> Result<datafusion::arrow::datatypes::DataType, EngineError> {
        let side = self.side(s);
        arrow_type(&side.columns[c].ty)
            .ok_or_else(|| EngineError(format!("unsupported type {}", side.columns[c].ty)))
    }

    /// Columns of a side before its join key.
    fn side_width(&self, side: usize) -> usize {
        self.side(side).columns.len()
    }
}

/// A row of `side` holding only the join key (in its key columns and join-key slot; the
/// rest null), for a tombstone of a key: tables join on their primary key.
fn tombstone_row(key: &[u8], join: &Join, side: usize) -> Result<Row, EngineError> {
    let parser = join.converter.parser();
    let arrays = join.converter.convert_rows([parser.parse(key)])?;
    let value = ScalarValue::try_from_array(&arrays[0], 0)?;
    let s = join.side(side);
    let mut values: Vec<ScalarValue> = s
        .columns
        .iter()
        .map(|c| {
            if c.key {
                Ok(value.clone())
            } else {
                arrow_type(&c.ty).map_or(Ok(ScalarValue::Null), |t| ScalarValue::try_from(&t))
            }
        })
        .collect::<Result<_, _>>()?;
    values.push(value);
    Ok(values.into())
}

/// Row `r` of read `b`'s outputs, as a row kept in state.
fn stored_row(
    reads: &[(usize, RecordBatch, Vec<ArrayRef>)],
    (b, r): (usize, usize),
) -> Result<Row, datafusion::error::DataFusionError> {
    reads[b]
        .2
        .iter()
        .map(|a| ScalarValue::try_from_array(a, r))
        .collect::<Result<Vec<_>, _>>()
        .map(Row::from)
}

/// Each row's side that is there (the left's where both are), for the join key.
fn present_side(outs: &[Out]) -> Vec<(usize, Side)> {
    outs.iter()
        .map(|o| match (&o.left, &o.right) {
            (Side::None, r) => (1, r.clone()),
            (l, _) => (0, l.clone()),
        })
        .collect()
}

fn column_i64(batch: &RecordBatch, i: usize) -> Result<&Int64Array, EngineError> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError("pseudo-column is not BIGINT".into()))
}

/// The held-back records and just the reads they point into (re-indexed).
fn hold(mut events: Vec<Event>, reads: Vec<(usize, RecordBatch, Vec<ArrayRef>)>) -> Pending {
    if events.is_empty() {
        return Pending::default();
    }
    let mut index: Vec<Option<usize>> = vec![None; reads.len()];
    let mut kept = Vec::new();
    let mut reads: Vec<Option<_>> = reads.into_iter().map(Some).collect();
    for e in &mut events {
        if let Some((read, row)) = e.row {
            let new = match index[read] {
                Some(i) => i,
                None => {
                    let i = kept.len();
                    kept.push(reads[read].take());
                    index[read] = Some(i);
                    i
                }
            };
            e.row = Some((new, row));
        }
    }
    Pending {
        reads: kept.into_iter().flatten().collect(),
        events,
    }
}

/// The latest record time of a read (column 0 of each batch).
fn column_i64_max(rows: &[(RecordBatch, Vec<ArrayRef>)]) -> Result<i64, EngineError> {
    let mut latest = i64::MIN;
    for (batch, _) in rows {
        let times = column_i64(batch, 0)?;
        if let Some(t) = datafusion::arrow::compute::max(times) {
            latest = latest.max(t);
        }
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_key_reads_back_as_it_was_given_inline_or_not() {
        for len in [0, 1, 29, 30, 31, 64] {
            let key: Vec<u8> = (0..len as u8).collect();
            assert_eq!(&*JoinKey::new(&key), key.as_slice(), "{len} bytes");
        }
    }

    fn read(values: &[i64]) -> (usize, RecordBatch, Vec<ArrayRef>) {
        let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        let batch = RecordBatch::try_from_iter([("v", column.clone())]).unwrap();
        (0, batch, vec![column])
    }

    #[test]
    fn a_kept_batch_goes_only_when_its_last_record_has_left_the_window() {
        let reads = vec![read(&[1, 2]), read(&[3])];
        let mut kept = KeptBatches::default();
        let a = kept.keep(0, &reads);
        assert_eq!(kept.keep(0, &reads), a, "one kept batch per read");
        let b = kept.keep(1, &reads);
        assert_ne!(a, b);
        kept.release(a);
        assert!(
            kept.batches.contains_key(&a),
            "batch a still holds a record"
        );
        kept.release(a);
        assert!(!kept.batches.contains_key(&a));
        assert!(kept.batches.contains_key(&b));
        kept.release(b);
        assert!(kept.batches.is_empty());
    }
}
