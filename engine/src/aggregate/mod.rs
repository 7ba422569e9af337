//! Streaming aggregation (`GROUP BY`, windows, `HAVING`): the keyed state of a query and the
//! changelog it emits, one update per input row in input order, as ksqlDB emits with record
//! caching off. A pipeline's rows arrive with the group-by values and aggregate arguments
//! already computed (vectorized by DataFusion); this operator only does what must happen per
//! row — find the group, update its accumulators — and then projects the emitted aggregated
//! rows as a batch. A table source's rows replace their previous version: the old row is
//! taken back (`undo`) before the new one is added, each step emitting its own update.

mod accumulators;
pub(crate) mod checkpoint;
pub(crate) mod functions;
pub(crate) mod plan;
mod updates;
pub(crate) mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;
use sluice_sql::ast::WindowKind;

use crate::engine::EngineError;
use crate::processing_log::ProcessingError;
use crate::query::{Evaluated, evaluate};
use functions::Accumulator;
use plan::AggregatePlan;
use updates::Updates;

/// One group's aggregate over one window (the whole stream when not windowed).
struct Slot {
    start: i64,
    end: i64,
    /// The largest record time that went into it (the time of its updates).
    time: i64,
    /// Whether its last update was emitted as a row (passed HAVING): a HAVING miss is a
    /// tombstone only then, as ksqlDB filters a table.
    visible: bool,
    /// Changed since the last checkpoint.
    dirty: bool,
    accumulators: Vec<Box<dyn Accumulator>>,
}

impl Slot {
    /// A new window of a group: no rows yet (so nothing shown), not yet checkpointed.
    fn empty(calls: &[plan::AggregateCall], start: i64, end: i64, time: i64) -> Slot {
        Slot {
            start,
            end,
            time,
            visible: false,
            dirty: true,
            accumulators: calls.iter().map(|c| c.function.accumulator()).collect(),
        }
    }
}

/// What a table source's row last contributed, to take back when it changes.
struct TableRow {
    group: Box<[u8]>,
    /// The row's aggregate arguments, one per pipeline output after the group columns.
    args: Vec<ScalarValue>,
    /// Changed since the last checkpoint.
    dirty: bool,
}

/// A group's window: (group key, start, end). The key is shared by the window's expiry and
/// closing schedules (one allocation per new window, not two).
type WindowRef = (std::sync::Arc<[u8]>, i64, i64);

/// The state and changelog of one aggregation.
pub(crate) struct Aggregation {
    pub plan: AggregatePlan,
    converter: RowConverter,
    groups: datafusion::common::HashMap<Vec<u8>, Vec<Slot>>,
    /// The largest record time seen (Kafka Streams' stream time).
    stream_time: i64,
    /// Windows whose state may go, by the stream time that frees them.
    expiries: BTreeMap<i64, Vec<WindowRef>>,
    /// `EMIT FINAL`: windows not emitted yet, by start (time windows) or end (sessions).
    closings: BTreeMap<i64, Vec<WindowRef>>,
    /// `EMIT FINAL`: the close time of the last emission, and the latest window start put
    /// in the state (Kafka Streams' window store only serves starts within its retention
    /// of that).
    last_close: Option<i64>,
    latest_start: i64,
    /// Table sources: each source key's current row.
    table_rows: Option<datafusion::common::HashMap<Box<[u8]>, TableRow>>,
    /// Records dropped because their window had closed.
    pub late_records: u64,
    /// Checkpoint keys of windows and table rows gone since the last checkpoint.
    removed: Vec<Vec<u8>>,
    windows: Vec<(i64, i64)>,
    /// The update buffers of the last read, cleared, for the next (see `apply`).
    spare_updates: Option<Updates>,
    /// A table row's arguments for one call, as `undo_row` takes them back (kept across
    /// rows: no allocation per undo).
    undo_values: Vec<ScalarValue>,
}

/// Rows of the pipeline's output, with the input they came from.
pub(crate) struct AggregateInput<'a> {
    pub batch: &'a RecordBatch,
    pub outputs: &'a [ArrayRef],
}

impl Aggregation {
    pub fn new(
        plan: AggregatePlan,
        group_types: Vec<datafusion::arrow::datatypes::DataType>,
        table_source: bool,
    ) -> Result<Aggregation, EngineError> {
        let converter = RowConverter::new(group_types.into_iter().map(SortField::new).collect())?;
        Ok(Aggregation {
            plan,
            converter,
            groups: datafusion::common::HashMap::default(),
            stream_time: i64::MIN,
            expiries: BTreeMap::new(),
            closings: BTreeMap::new(),
            last_close: None,
            latest_start: i64::MIN,
            table_rows: table_source.then(datafusion::common::HashMap::new),
            late_records: 0,
            removed: Vec::new(),
            windows: Vec::new(),
            spare_updates: None,
            undo_values: Vec::new(),
        })
    }

    /// How many windows (or groups) the state holds.
    pub fn state_size(&self) -> usize {
        self.groups.values().map(Vec::len).sum()
    }

    /// Folds what a pipeline read into the state and returns the updates it emits, ready to
    /// write: each `rows` entry is (aggregated row, output columns); HAVING misses and
    /// deleted windows are listed in `null_values` (by their position in ROWOFFSET).
    /// `source_keys` gives a table source's key of each input row and of each tombstone.
    pub fn apply(
        &mut self,
        mut ev: Evaluated,
        source_keys: Option<&SourceKeys>,
        query_id: &str,
    ) -> Result<Evaluated, EngineError> {
        // The updates' buffers are kept from the last read: allocating them afresh per read
        // cost a page fault per few updates once the allocator had returned them.
        let mut updates = self
            .spare_updates
            .take()
            .unwrap_or_else(|| Updates::new(&self.plan));
        let partition = ev.partition as i32;
        let mut errors = std::mem::take(&mut ev.errors);
        match (&mut self.table_rows, source_keys) {
            (Some(_), Some(keys)) => {
                self.apply_table(&ev, keys, partition, &mut updates, &mut errors, query_id)?
            }
            _ => {
                for (batch, outputs) in &ev.rows {
                    self.apply_stream(
                        AggregateInput { batch, outputs },
                        partition,
                        &mut updates,
                        &mut errors,
                        query_id,
                    )?;
                }
            }
        }
        self.expire();
        let projected = self.project(&mut updates);
        updates.clear();
        self.spare_updates = Some(updates);
        let (rows, deleted) = projected?;
        Ok(Evaluated {
            headers: HashMap::new(),
            partition: ev.partition,
            next: ev.next,
            read: ev.read,
            rows,
            tombstones: Vec::new(),
            null_values: deleted,
            rejected: Vec::new(),
            errors,
        })
    }

    fn apply_stream(
        &mut self,
        input: AggregateInput<'_>,
        partition: i32,
        updates: &mut Updates,
        errors: &mut Vec<ProcessingError>,
        query_id: &str,
    ) -> Result<(), EngineError> {
        let n = input.batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let groups = self.plan.groups;
        let rows = self.converter.convert_columns(&input.outputs[..groups])?;
        // One update per row and window (a hopping window's row updates several).
        let per_row = self
            .plan
            .window
            .as_ref()
            .map_or(1, |w| window::windows_per_record(&w.kind));
        updates.reserve(n * per_row, rows.size());
        let times = input
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| EngineError("ROWTIME is not BIGINT".into()))?
            .clone();
        let args = self.call_args(input.outputs);
        let offsets = input.batch.column(2);
        for r in 0..n {
            // ksqlDB drops rows whose group key is null.
            if input.outputs[..groups].iter().any(|a| a.is_null(r)) {
                continue;
            }
            let time = times.value(r);
            let key = rows.row(r);
            let added = self.add_row(key.as_ref(), time, &args, r, partition, updates);
            if self.plan.emit_final {
                self.close_windows(partition, updates);
            }
            if let Err(message) = added {
                errors.push(ProcessingError::RecordProcessing {
                    query_id: query_id.to_string(),
                    message,
                    record: format!(
                        "offset {}",
                        datafusion::arrow::util::display::array_value_to_string(offsets, r)
                            .unwrap_or_default()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Adds one row to its group's window(s), emitting an update per window.
    fn add_row(
        &mut self,
        key: &[u8],
        time: i64,
        args: &[Vec<ArrayRef>],
        row: usize,
        partition: i32,
        updates: &mut Updates,
    ) -> Result<(), String> {
        let Some(w) = self.plan.window.clone() else {
            let shown = self.plan.having.is_none();
            let slot = self.slot(key, 0, 0);
            add_to(slot, args, row, time)?;
            slot.visible |= shown;
            updates.push_slot(partition, key, slot);
            return Ok(());
        };
        self.stream_time = self.stream_time.max(time);
        let close_before = self.stream_time.saturating_sub(window::grace(&w));
        if let WindowKind::Session { gap } = w.kind {
            let emitted_before = updates.len();
            let added =
                self.add_to_session(key, time, gap.millis as i64, args, row, partition, updates);
            if self.plan.emit_final {
                // Only closed sessions are emitted (`close_windows`).
                updates.truncate(emitted_before);
            }
            return added;
        }
        let mut windows = std::mem::take(&mut self.windows);
        window::time_windows(&w.kind, time, &mut windows);
        let mut late = false;
        let shown = self.plan.having.is_none() && !self.plan.emit_final;
        // One lookup of the group for all its windows.
        let slots = self.groups.entry_ref(key).or_default();
        for &(start, end) in &windows {
            if end <= close_before {
                late = true;
                continue;
            }
            let i = match slots.iter().rposition(|s| s.start == start) {
                Some(i) => i,
                None => {
                    let closings = self.plan.emit_final.then_some(&mut self.closings);
                    schedule(&mut self.expiries, closings, &w, (key, start, end));
                    slots.push(Slot::empty(&self.plan.calls, start, end, i64::MIN));
                    slots.len() - 1
                }
            };
            self.latest_start = self.latest_start.max(start);
            let slot = &mut slots[i];
            add_to(slot, args, row, time)?;
            slot.visible |= shown;
            if !self.plan.emit_final {
                // Under EMIT FINAL a window is emitted only when it closes (`close_windows`).
                updates.push_slot(partition, key, slot);
            }
        }
        self.windows = windows;
        if late {
            self.late_records += 1;
        }
        Ok(())
    }

    /// Session windows: the record's session merges every session of its key within `gap`
    /// of it; merged sessions are deleted downstream, the merged one emitted.
    #[allow(clippy::too_many_arguments)]
    fn add_to_session(
        &mut self,
        key: &[u8],
        time: i64,
        gap: i64,
        args: &[Vec<ArrayRef>],
        row: usize,
        partition: i32,
        updates: &mut Updates,
    ) -> Result<(), String> {
        let Some(w) = self.plan.window.clone() else {
            return Ok(());
        };
        // A session closes `gap + grace` after its end (Kafka Streams' session close time).
        let close_before = self
            .stream_time
            .saturating_sub(gap)
            .saturating_sub(window::grace(&w));
        let sessions = self.groups.entry_ref(key).or_default();
        let (mut start, mut end) = (time, time);
        let mut merged: Vec<Slot> = Vec::new();
        let mut i = 0;
        while i < sessions.len() {
            let s = &sessions[i];
            // Kafka Streams finds sessions ending at or after time - gap and starting at or
            // before time + gap.
            if s.end >= time.saturating_sub(gap)
                && s.start <= time.saturating_add(gap)
                && s.end > close_before
            {
                start = start.min(s.start);
                end = end.max(s.end);
                let gone = sessions.remove(i);
                self.removed
                    .push(checkpoint::window_key(key, gone.start, gone.end));
                merged.push(gone);
            } else {
                i += 1;
            }
        }
        if end < close_before {
            self.late_records += 1;
            return Ok(());
        }
        let mut slot = Slot::empty(&self.plan.calls, start, end, end);
        merged.sort_by_key(|s| s.start);
        for old in &merged {
            for (acc, o) in slot.accumulators.iter_mut().zip(&old.accumulators) {
                acc.merge(&o.state())?;
            }
            updates.push_deleted(partition, key, old);
        }
        add_to(&mut slot, args, row, time)?;
        slot.time = end;
        slot.visible = self.plan.having.is_none() && !self.plan.emit_final;
        updates.push_slot(partition, key, &slot);
        let closings = self.plan.emit_final.then_some(&mut self.closings);
        schedule(&mut self.expiries, closings, &w, (key, start, end));
        sessions.push(slot);
        Ok(())
    }

    fn apply_table(
        &mut self,
        ev: &Evaluated,
        keys: &SourceKeys,
        partition: i32,
        updates: &mut Updates,
        errors: &mut Vec<ProcessingError>,
        query_id: &str,
    ) -> Result<(), EngineError> {
        // Every change in input order: (offset, what).
        enum Change {
            Row(usize, usize),
            Delete(Box<[u8]>),
        }
        let mut changes: Vec<(i64, Change)> = Vec::new();
        for (b, (batch, _)) in ev.rows.iter().enumerate() {
            let offsets = batch
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| EngineError("ROWOFFSET is not BIGINT".into()))?;
            for r in 0..batch.num_rows() {
                changes.push((offsets.value(r), Change::Row(b, r)));
            }
        }
        for (offset, key) in &keys.deleted {
            changes.push((*offset, Change::Delete(key.clone())));
        }
        changes.sort_by_key(|(o, _)| *o);
        let groups = self.plan.groups;
        let row_keys: Vec<Rows> = ev
            .rows
            .iter()
            .map(|(batch, _)| keys.of_rows(batch))
            .collect::<Result<_, _>>()?;
        // Each batch's argument arrays, and one buffer for the updates a changed row takes
        // back, made once for the read rather than once per row.
        let batch_args: Vec<_> = ev
            .rows
            .iter()
            .map(|(_, outputs)| self.call_args(outputs))
            .collect();
        let mut undone = Updates::new(&self.plan);
        let group_rows: Vec<_> = ev
            .rows
            .iter()
            .map(|(_, outputs)| self.converter.convert_columns(&outputs[..groups]))
            .collect::<Result<_, _>>()?;
        for (_, change) in changes {
            let (key_bytes, new): (&[u8], _) = match &change {
                Change::Row(b, r) => (row_keys[*b].row(*r).data(), Some((*b, *r))),
                Change::Delete(k) => (k, None),
            };
            // A key already in the table is looked up by its bytes and keeps its allocation.
            let (source_key, previous) = match self
                .table_rows
                .as_mut()
                .and_then(|t| t.remove_entry(key_bytes))
            {
                Some((key, row)) => (key, Some(row)),
                None => match change {
                    Change::Delete(k) => (k, None),
                    Change::Row(..) => (key_bytes.into(), None),
                },
            };
            let had_row = previous.is_some();
            // The new row, unless a group column is null (then it joins no group).
            let kept = new.filter(|&(b, r)| !ev.rows[b].1[..groups].iter().any(|a| a.is_null(r)));
            let mut result = Ok(());
            let mut same_group = false;
            if let Some(prev) = &previous {
                // A row that stays in its group changes it once: one update, not two.
                same_group =
                    kept.is_some_and(|(b, r)| group_rows[b].row(r).as_ref() == &*prev.group);
                result = self.undo_row(prev, partition, &mut undone);
                if !same_group {
                    updates.append(&mut undone);
                }
                undone.clear();
            }
            // The checkpoint drops a row that went; one replaced is simply written again.
            if had_row && kept.is_none() {
                self.removed.push(checkpoint::table_key(&source_key));
            }
            if let Some((b, r)) = kept {
                let (_, outputs) = &ev.rows[b];
                let time = ev.rows[b]
                    .0
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map_or(0, |t| t.value(r));
                // The row it replaces gives its allocations to the new one: the group key
                // when the group is the same, the arguments' vector always.
                let (group, mut saved): (Box<[u8]>, Vec<ScalarValue>) = match previous {
                    Some(prev) if same_group => (prev.group, prev.args),
                    Some(prev) => (group_rows[b].row(r).as_ref().into(), prev.args),
                    None => (
                        group_rows[b].row(r).as_ref().into(),
                        Vec::with_capacity(outputs.len() - groups),
                    ),
                };
                saved.clear();
                for a in &outputs[groups..] {
                    saved.push(ScalarValue::try_from_array(a, r)?);
                }
                result =
                    result.and(self.add_row(&group, time, &batch_args[b], r, partition, updates));
                if let Some(t) = self.table_rows.as_mut() {
                    t.insert(
                        source_key,
                        TableRow {
                            group,
                            args: saved,
                            dirty: true,
                        },
                    );
                }
            }
            if let Err(message) = result {
                errors.push(ProcessingError::RecordProcessing {
                    query_id: query_id.to_string(),
                    message,
                    record: String::new(),
                });
            }
        }
        Ok(())
    }

    /// Takes a table row's contribution back out of its group, emitting the group's update.
    fn undo_row(
        &mut self,
        prev: &TableRow,
        partition: i32,
        updates: &mut Updates,
    ) -> Result<(), String> {
        let groups = self.plan.groups;
        let Some(slot) = self
            .groups
            .get_mut(&*prev.group)
            .and_then(|s| s.first_mut())
        else {
            return Ok(());
        };
        slot.dirty = true;
        // Each call's arguments, gathered into one buffer kept across rows.
        let values = &mut self.undo_values;
        for (acc, call) in slot.accumulators.iter_mut().zip(&self.plan.calls) {
            values.clear();
            values.extend(call.args.iter().map(|&i| prev.args[i - groups].clone()));
            acc.undo_values(values)?;
        }
        updates.push_slot(partition, &prev.group, slot);
        Ok(())
    }

    /// Each call's argument arrays out of a pipeline's outputs.
    fn call_args(&self, outputs: &[ArrayRef]) -> Vec<Vec<ArrayRef>> {
        self.plan
            .calls
            .iter()
            .map(|c| c.args.iter().map(|&i| outputs[i].clone()).collect())
            .collect()
    }

    /// The slot of `key`'s window starting at `start`, created empty if new.
    fn slot(&mut self, key: &[u8], start: i64, end: i64) -> &mut Slot {
        let calls = &self.plan.calls;
        let slots = self.groups.entry_ref(key).or_default();
        let i = match slots.iter().rposition(|s| s.start == start) {
            Some(i) => i,
            None => {
                slots.push(Slot::empty(calls, start, end, i64::MIN));
                slots.len() - 1
            }
        };
        &mut slots[i]
    }

    /// Rebuilds when each window expires (and, for EMIT FINAL, is due) from the state
    /// itself, after a restore.
    fn rebuild_schedules(&mut self) {
        self.expiries.clear();
        self.closings.clear();
        let Some(w) = self.plan.window.clone() else {
            return;
        };
        for (key, slots) in &self.groups {
            for s in slots {
                let closings = self.plan.emit_final.then_some(&mut self.closings);
                schedule(&mut self.expiries, closings, &w, (key, s.start, s.end));
            }
        }
    }

    /// Whether the window of `group` starting at `start` was last shown downstream.
    fn was_visible(&self, group: &[u8], start: i64, end: i64) -> bool {
        self.groups
            .get(group)
            .and_then(|s| s.iter().find(|s| s.start == start && s.end == end))
            .is_some_and(|s| s.visible)
    }

    /// `EMIT FINAL`: emits each window the stream time has closed since the last emission,
    /// once, as Kafka Streams' on-window-close strategy does: time windows by start in
    /// (last close - size, close - size], sessions by end in [last close, close).
    fn close_windows(&mut self, partition: i32, updates: &mut Updates) {
        let Some(w) = &self.plan.window else {
            return;
        };
        let close = self.stream_time.saturating_sub(window::grace(w));
        if self.last_close.is_some_and(|last| last >= close) {
            return;
        }
        let (lower, upper) = match w.kind {
            WindowKind::Session { .. } => (self.last_close.unwrap_or(0), close.saturating_sub(1)),
            WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } => {
                let size = size.millis as i64;
                let lower = match self.last_close {
                    None => 0,
                    Some(last) => last.saturating_sub(size).max(0) + 1,
                };
                // The store serves only starts within its retention of the latest start.
                let retained = self.latest_start.saturating_sub(window::retention(w));
                (lower.max(retained), close.saturating_sub(size))
            }
        };
        if upper < 0 {
            return;
        }
        self.last_close = Some(close);
        if lower > upper {
            return;
        }
        let due: Vec<i64> = self
            .closings
            .range(lower..=upper)
            .map(|(k, _)| *k)
            .collect();
        let mut windows: Vec<WindowRef> = Vec::new();
        for k in due {
            windows.extend(self.closings.remove(&k).unwrap_or_default());
        }
        windows.sort();
        for (key, start, end) in windows {
            let Some(slot) = self
                .groups
                .get(&*key)
                .and_then(|s| s.iter().find(|s| s.start == start && s.end == end))
            else {
                // A session merged into a later one since.
                continue;
            };
            updates.push_slot(partition, &key, slot);
        }
    }

    /// Frees the windows whose retention has passed.
    fn expire(&mut self) {
        while let Some(entry) = self.expiries.first_entry() {
            if *entry.key() > self.stream_time {
                break;
            }
            for (key, start, end) in entry.remove() {
                if let Some(slots) = self.groups.get_mut(&*key) {
                    let before = slots.len();
                    slots.retain(|s| s.start != start || s.end != end);
                    if slots.len() < before {
                        self.removed.push(checkpoint::window_key(&key, start, end));
                    }
                    if slots.is_empty() {
                        self.groups.remove(&*key);
                    }
                }
            }
        }
    }

    /// Builds the aggregated rows of `updates` and runs the projection and HAVING over them.
    #[allow(clippy::type_complexity)]
    fn project(
        &mut self,
        updates: &mut Updates,
    ) -> Result<
        (
            Vec<(RecordBatch, Vec<ArrayRef>)>,
            std::collections::HashSet<i64>,
        ),
        EngineError,
    > {
        let mut deleted = std::collections::HashSet::new();
        let n = updates.len();
        if n == 0 {
            return Ok((Vec::new(), deleted));
        }
        let mut batch = self.aggregated_batch(updates)?;
        let keep: Vec<bool> = match &self.plan.having {
            // Without HAVING every result is shown; a deleted window is a tombstone if it
            // was shown.
            None => (0..n)
                .map(|i| {
                    if updates.deleted[i] {
                        deleted.insert(i as i64);
                    }
                    !updates.deleted[i] || updates.was_shown[i]
                })
                .collect(),
            Some(h) => {
                let mask = evaluate(h.as_ref(), &batch)?;
                let passes = mask
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| EngineError("HAVING must be a boolean expression".into()))?
                    .clone();
                self.having_misses(updates, &passes, &mut deleted)
            }
        };
        if keep.iter().any(|k| !k) {
            batch =
                datafusion::arrow::compute::filter_record_batch(&batch, &BooleanArray::from(keep))?;
        }
        let outputs = self
            .plan
            .projection
            .iter()
            .map(|e| evaluate(e.as_ref(), &batch))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((vec![(batch, outputs)], deleted))
    }

    /// The aggregated rows (`ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND`,
    /// group columns, aggregate results) of `updates`.
    fn aggregated_batch(&self, updates: &mut Updates) -> Result<RecordBatch, EngineError> {
        let n = updates.len();
        let parser = self.converter.parser();
        let group_arrays = self
            .converter
            .convert_rows((0..n).map(|i| parser.parse(updates.group(i))))?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(updates.time.clone())),
            Arc::new(Int32Array::from(updates.partition.clone())),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(Int64Array::from(updates.start.clone())),
            Arc::new(Int64Array::from(updates.end.clone())),
        ];
        columns.extend(group_arrays);
        let schema = self.plan.aggregated_schema.clone();
        let first_agg = 5 + self.plan.groups;
        for (c, values) in updates.values.iter_mut().enumerate() {
            let array = if values.is_empty() {
                datafusion::arrow::array::new_empty_array(schema.field(first_agg + c).data_type())
            } else if let Some(array) = primitive_array(values) {
                array
            } else {
                // The results move into their arrays (no clone per value); the vector keeps
                // its room for the next read.
                ScalarValue::iter_to_array(values.drain(..))?
            };
            let wanted = schema.field(first_agg + c).data_type();
            let array = if array.data_type() != wanted {
                datafusion::arrow::compute::cast(&array, wanted)?
            } else {
                array
            };
            columns.push(array);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// The table the state holds now: each window's (or group's) aggregated row and its
    /// output columns, those HAVING rejects left out. What pull queries read.
    pub fn current_rows(&self) -> Result<(RecordBatch, Vec<ArrayRef>), EngineError> {
        let mut updates = Updates::new(&self.plan);
        for (group, slots) in &self.groups {
            for slot in slots {
                updates.push_slot(0, group, slot);
            }
        }
        let mut batch = self.aggregated_batch(&mut updates)?;
        if let Some(h) = &self.plan.having {
            let mask = evaluate(h.as_ref(), &batch)?;
            let passes: BooleanArray = mask
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| EngineError("HAVING must be a boolean expression".into()))?
                .iter()
                .map(|v| Some(v == Some(true)))
                .collect();
            batch = datafusion::arrow::compute::filter_record_batch(&batch, &passes)?;
        }
        let outputs = self
            .plan
            .projection
            .iter()
            .map(|e| evaluate(e.as_ref(), &batch))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((batch, outputs))
    }

    /// With HAVING: a result that misses it (or a deleted window) deletes its key
    /// downstream if the key's last update was shown, and is not written at all otherwise.
    /// Returns which updates are written; marks the deletions in `deleted`.
    fn having_misses(
        &mut self,
        updates: &Updates,
        passes: &BooleanArray,
        deleted: &mut std::collections::HashSet<i64>,
    ) -> Vec<bool> {
        let mut visible: HashMap<(&[u8], i64, i64), bool> = HashMap::new();
        let mut keep = Vec::with_capacity(updates.len());
        for i in 0..updates.len() {
            let group = updates.group(i);
            let (start, end) = (updates.start[i], updates.end[i]);
            let shown = !updates.deleted[i] && passes.is_valid(i) && passes.value(i);
            let before = match visible.get(&(group, start, end)) {
                Some(v) => *v,
                // A merged session is gone from the state: its update says.
                None if updates.deleted[i] => updates.was_shown[i],
                None => self.was_visible(group, start, end),
            };
            visible.insert((group, start, end), shown);
            if !shown {
                deleted.insert(i as i64);
            }
            keep.push(shown || before);
        }
        for ((group, start, end), shown) in visible {
            if let Some(slot) = self
                .groups
                .get_mut(group)
                .and_then(|s| s.iter_mut().find(|s| s.start == start && s.end == end))
            {
                slot.visible = shown;
            }
        }
        keep
    }
}

/// Notes when a new window's state may go and, for EMIT FINAL (`closings`), where it
/// waits to be emitted: by start for time windows, by end for sessions (as
/// `close_windows` looks them up).
fn schedule(
    expiries: &mut BTreeMap<i64, Vec<WindowRef>>,
    closings: Option<&mut BTreeMap<i64, Vec<WindowRef>>>,
    w: &sluice_sql::ast::Window,
    (key, start, end): (&[u8], i64, i64),
) {
    let key: std::sync::Arc<[u8]> = key.into();
    if let Some(closings) = closings {
        let at = match w.kind {
            WindowKind::Session { .. } => end,
            _ => start,
        };
        closings
            .entry(at)
            .or_default()
            .push((key.clone(), start, end));
    }
    expiries
        .entry(window::expiry(w, start, end))
        .or_default()
        .push((key, start, end));
}

/// Adds a row to a slot's accumulators (`args`: each call's argument arrays).
fn add_to(slot: &mut Slot, args: &[Vec<ArrayRef>], row: usize, time: i64) -> Result<(), String> {
    slot.time = slot.time.max(time);
    slot.dirty = true;
    for (acc, a) in slot.accumulators.iter_mut().zip(args) {
        acc.add(a, row)?;
    }
    Ok(())
}

/// A table source's keys: of each input row (from its key columns) and of each deleted key.
pub(crate) struct SourceKeys {
    converter: RowConverter,
    /// Positions of the key columns in the input batch.
    columns: std::ops::Range<usize>,
    /// (offset, key) of each tombstone and WHERE-rejected row.
    pub deleted: Vec<(i64, Box<[u8]>)>,
}

impl SourceKeys {
    pub fn new(
        key_types: Vec<datafusion::arrow::datatypes::DataType>,
        columns: std::ops::Range<usize>,
    ) -> Result<SourceKeys, EngineError> {
        Ok(SourceKeys {
            converter: RowConverter::new(key_types.into_iter().map(SortField::new).collect())?,
            columns,
            deleted: Vec::new(),
        })
    }

    /// Collects the deleted keys of a read: tombstones (their key bytes decoded with
    /// `decode`) and rows the WHERE rejected.
    pub fn collect_deleted(
        &mut self,
        ev: &Evaluated,
        decode: &crate::codec::Serde,
    ) -> Result<(), EngineError> {
        self.deleted.clear();
        for (offset, _, key) in &ev.tombstones {
            let (arrays, errors) = decode.decode(&[key.as_deref()])?;
            if !errors.is_empty() || arrays.iter().any(|a| a.is_null(0)) {
                continue;
            }
            let rows = self.converter.convert_columns(&arrays)?;
            self.deleted.push((*offset, rows.row(0).as_ref().into()));
        }
        for (batch, _) in &ev.rejected {
            let keys = self.of_rows(batch)?;
            let offsets = batch
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| EngineError("ROWOFFSET is not BIGINT".into()))?;
            for (r, k) in keys.iter().enumerate() {
                self.deleted.push((offsets.value(r), k.as_ref().into()));
            }
        }
        Ok(())
    }

    fn of_rows(&self, batch: &RecordBatch) -> Result<Rows, EngineError> {
        let cols: Vec<ArrayRef> = self
            .columns
            .clone()
            .map(|i| batch.column(i).clone())
            .collect();
        Ok(self.converter.convert_columns(&cols)?)
    }
}

/// The common results (BIGINT, INT, DOUBLE) as an array in one typed pass; None for any
/// other type or a mix (then `ScalarValue::iter_to_array` builds it).
fn primitive_array(values: &[ScalarValue]) -> Option<ArrayRef> {
    use datafusion::arrow::array::{Float64Array, Int32Array};
    macro_rules! typed {
        ($variant:ident, $array:ty) => {
            values
                .iter()
                .map(|v| match v {
                    ScalarValue::$variant(x) => Some(*x),
                    _ => None,
                })
                .collect::<Option<$array>>()
                .map(|a| Arc::new(a) as ArrayRef)
        };
    }
    match values.first()? {
        ScalarValue::Int64(_) => typed!(Int64, Int64Array),
        ScalarValue::Int32(_) => typed!(Int32, Int32Array),
        ScalarValue::Float64(_) => typed!(Float64, Float64Array),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_storage::{EventLog, LogStore, StoreOptions};

    use crate::engine::Engine;

    fn insert(engine: &mut Engine, rows: &[(i64, i64, i64)]) {
        for (id, v, ts) in rows {
            engine
                .execute_sql(&format!(
                    "INSERT INTO s (id, v, ROWTIME) VALUES ({id}, {v}, {ts});"
                ))
                .unwrap();
        }
        engine.run_until_idle().unwrap();
    }

    #[test]
    fn closed_windows_are_freed() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(LogStore::open_with(dir.path(), StoreOptions::default()).unwrap());
        let mut engine = Engine::new(log);
        engine
            .execute_sql(
                "CREATE STREAM s (id BIGINT KEY, v BIGINT) WITH (kafka_topic='s', value_format='JSON', partitions=1);
                 CREATE TABLE t AS SELECT id, COUNT(*) AS n FROM s
                   WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY id;",
            )
            .unwrap();
        // Three keys in the first window, then time moves past it.
        insert(&mut engine, &[(1, 1, 1_000), (2, 1, 2_000), (3, 1, 3_000)]);
        assert_eq!(engine.queries[0].state_summary().unwrap().0, 3);
        insert(&mut engine, &[(1, 1, 25_000)]);
        assert_eq!(engine.queries[0].state_summary().unwrap().0, 1);
    }

    #[test]
    fn a_checkpoint_restores_the_state_and_positions() {
        let dir = tempfile::tempdir().unwrap();
        let open = || -> Arc<dyn EventLog> {
            Arc::new(LogStore::open_with(dir.path(), StoreOptions::default()).unwrap())
        };
        {
            let mut engine = Engine::open(open(), Default::default()).unwrap();
            engine
                .execute_sql(
                    "CREATE STREAM s (id BIGINT KEY, v BIGINT) WITH (kafka_topic='s', value_format='JSON', partitions=1);
                     CREATE TABLE t AS SELECT id, COUNT(*) AS n, SUM(v) AS total, COLLECT_LIST(v) AS vs FROM s GROUP BY id;",
                )
                .unwrap();
            insert(&mut engine, &[(1, 5, 1), (1, 7, 2), (2, 1, 3)]);
            engine.stop();
        }
        let log = open();
        let mut engine = Engine::open(log.clone(), Default::default()).unwrap();
        insert(&mut engine, &[(1, 9, 4)]);
        // The last update of key 1 counts every row once: nothing replayed, nothing lost.
        let (_, end) = log.offsets("T", 0).unwrap();
        let r = log.read("T", 0, end - 1, 1 << 20).unwrap();
        let mut last = None;
        for b in sluice_storage::batch::Batches::new(&r.data) {
            sluice_storage::batch::for_each_record(b, |rec| {
                last = rec.value.map(|v| String::from_utf8_lossy(v).into_owned());
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(end, 4, "one update per input row, none emitted twice");
        assert_eq!(last.as_deref(), Some(r#"{"N":3,"TOTAL":21,"VS":[5,7,9]}"#));
    }
}
