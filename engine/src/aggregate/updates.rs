//! The updates one read of an aggregation emits, before projection: kept column by column
//! (times, partitions, group keys in one byte buffer, window bounds, each call's results),
//! so emitting an update allocates nothing of its own.

use datafusion::common::ScalarValue;

use super::Slot;
use super::plan::AggregatePlan;

/// The updates a read emits before projection, column by column (no allocation per
/// update): time, partition, group key bytes, window bounds and each call's result.
pub(super) struct Updates {
    pub(super) time: Vec<i64>,
    pub(super) partition: Vec<i32>,
    pub(super) group_bytes: Vec<u8>,
    /// End of each update's group key in `group_bytes`.
    pub(super) group_ends: Vec<usize>,
    pub(super) start: Vec<i64>,
    pub(super) end: Vec<i64>,
    /// A deleted window (a merged session) rather than a result.
    pub(super) deleted: Vec<bool>,
    /// For a deleted window: whether it was shown downstream.
    pub(super) was_shown: Vec<bool>,
    /// Per aggregate call, its result of each update (null for deleted windows).
    pub(super) values: Vec<Vec<ScalarValue>>,
    /// Per aggregate call, its null.
    pub(super) nulls: Vec<ScalarValue>,
}

impl Updates {
    pub(super) fn new(plan: &AggregatePlan) -> Updates {
        Updates {
            time: Vec::new(),
            partition: Vec::new(),
            group_bytes: Vec::new(),
            group_ends: Vec::new(),
            start: Vec::new(),
            end: Vec::new(),
            deleted: Vec::new(),
            was_shown: Vec::new(),
            values: plan.calls.iter().map(|_| Vec::new()).collect(),
            nulls: plan
                .calls
                .iter()
                .map(|c| {
                    ScalarValue::try_from(&c.function.return_type).unwrap_or(ScalarValue::Null)
                })
                .collect(),
        }
    }

    /// Room for `n` more updates (an append per update then never reallocates).
    pub(super) fn reserve(&mut self, n: usize, group_bytes: usize) {
        self.time.reserve(n);
        self.partition.reserve(n);
        self.group_bytes.reserve(group_bytes);
        self.group_ends.reserve(n);
        self.start.reserve(n);
        self.end.reserve(n);
        self.deleted.reserve(n);
        self.was_shown.reserve(n);
        for v in &mut self.values {
            v.reserve(n);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.time.len()
    }

    pub(super) fn group(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.group_ends[i - 1] };
        &self.group_bytes[from..self.group_ends[i]]
    }

    fn push_row(&mut self, time: i64, partition: i32, group: &[u8], start: i64, end: i64) {
        self.time.push(time);
        self.partition.push(partition);
        self.group_bytes.extend_from_slice(group);
        self.group_ends.push(self.group_bytes.len());
        self.start.push(start);
        self.end.push(end);
    }

    /// A slot's current result.
    pub(super) fn push_slot(&mut self, partition: i32, group: &[u8], slot: &Slot) {
        self.push_row(slot.time, partition, group, slot.start, slot.end);
        self.deleted.push(false);
        self.was_shown.push(false);
        for (column, acc) in self.values.iter_mut().zip(&slot.accumulators) {
            column.push(acc.value());
        }
    }

    /// A window that is gone (merged into another session).
    pub(super) fn push_deleted(&mut self, partition: i32, group: &[u8], slot: &Slot) {
        self.push_row(slot.end, partition, group, slot.start, slot.end);
        self.deleted.push(true);
        self.was_shown.push(slot.visible);
        for (column, null) in self.values.iter_mut().zip(&self.nulls) {
            column.push(null.clone());
        }
    }

    /// Empties it, keeping its room.
    pub(super) fn clear(&mut self) {
        self.truncate(0);
    }

    pub(super) fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.time.truncate(n);
        self.partition.truncate(n);
        let bytes = if n == 0 { 0 } else { self.group_ends[n - 1] };
        self.group_bytes.truncate(bytes);
        self.group_ends.truncate(n);
        self.start.truncate(n);
        self.end.truncate(n);
        self.deleted.truncate(n);
        self.was_shown.truncate(n);
        for v in &mut self.values {
            v.truncate(n);
        }
    }

    pub(super) fn append(&mut self, other: &mut Updates) {
        let base = self.group_bytes.len();
        self.time.append(&mut other.time);
        self.partition.append(&mut other.partition);
        self.group_bytes.append(&mut other.group_bytes);
        self.group_ends
            .extend(other.group_ends.drain(..).map(|e| e + base));
        self.start.append(&mut other.start);
        self.end.append(&mut other.end);
        self.deleted.append(&mut other.deleted);
        self.was_shown.append(&mut other.was_shown);
        for (a, b) in self.values.iter_mut().zip(&mut other.values) {
            a.append(b);
        }
    }
}
