//! A stream side's join window: the records a later record of the other side may still
//! meet, by join key, and the order they were kept in. Expiry walks that order from the
//! oldest, so a step costs what it keeps and drops, never a scan of the whole window (at
//! 50,000 events/s a ten-second window holds half a million records; scanning them every
//! step cost milliseconds a step).

use std::collections::VecDeque;

use datafusion::common::HashMap;

use super::{Expired, JoinKey, Kept};

/// One side's window.
#[derive(Default)]
pub(super) struct Window {
    /// Every kept record, oldest (lowest id) first: the order expiry takes them in. Each
    /// links to the next record of its key, so a key's records are found without a list
    /// per key (which grew, record by record, for every key).
    records: VecDeque<Entry>,
    /// The sequence number of `records`' front: record `n` is at `n - first`.
    first: u64,
    /// Per key, the sequence numbers of its oldest and newest record kept.
    by_key: HashMap<Vec<u8>, (u64, u64)>,
    /// Per source partition, the candidates for the lowest offset kept (a sliding-window
    /// minimum: increasing offsets, each with its record's id), so a restart knows where
    /// to re-read the window from without looking at every record.
    lowest: Vec<VecDeque<(u64, i64)>>,
}

struct Entry {
    kept: Kept,
    key: JoinKey,
    /// The sequence number of the next record of the same key (`LAST` for none).
    next: u64,
}

const LAST: u64 = u64::MAX;

impl Window {
    /// Keeps `kept` under `key`. Records are kept in increasing id order.
    pub fn push(&mut self, key: &[u8], kept: Kept) {
        let seq = self.first + self.records.len() as u64;
        match self.by_key.get_mut(key) {
            Some((_, newest)) => {
                if let Some(previous) = newest
                    .checked_sub(self.first)
                    .and_then(|at| self.records.get_mut(at as usize))
                {
                    previous.next = seq;
                }
                *newest = seq;
            }
            None => {
                self.by_key.insert(key.to_vec(), (seq, seq));
            }
        }
        self.records.push_back(Entry {
            kept,
            key: JoinKey::new(key),
            next: LAST,
        });
        let Ok(p) = usize::try_from(kept.partition) else {
            return;
        };
        if self.lowest.len() <= p {
            self.lowest.resize_with(p + 1, VecDeque::new);
        }
        let lowest = &mut self.lowest[p];
        while lowest
            .back()
            .is_some_and(|&(_, offset)| offset >= kept.offset)
        {
            lowest.pop_back();
        }
        lowest.push_back((kept.id, kept.offset));
    }

    /// The records kept under `key`, oldest first (expired ones may still be among them:
    /// callers check `Expired::covers`).
    pub fn get<'w>(&'w self, key: &[u8]) -> impl Iterator<Item = &'w Kept> + 'w {
        let mut seq = self.by_key.get(key).map_or(LAST, |&(oldest, _)| oldest);
        std::iter::from_fn(move || {
            let entry = self.records.get(seq.checked_sub(self.first)? as usize)?;
            seq = entry.next;
            Some(&entry.kept)
        })
    }

    /// Drops the expired records from the oldest on, handing each to `dropped`. A record
    /// that is not expired yet holds back the ones kept after it: records kept out of time
    /// order (late, within the grace period) then stay a little longer, matching nothing.
    pub fn expire(&mut self, expired: Expired, mut dropped: impl FnMut(&Kept)) {
        while let Some(oldest) = self.records.front() {
            let k = &oldest.kept;
            if !expired.covers(k.time, k.id) {
                break;
            }
            dropped(k);
            if let Ok(p) = usize::try_from(k.partition)
                && let Some(lowest) = self.lowest.get_mut(p)
                && lowest.front().is_some_and(|&(id, _)| id == k.id)
            {
                lowest.pop_front();
            }
            // The oldest record overall is the oldest of its key.
            if oldest.next == LAST {
                self.by_key.remove(&*oldest.key);
            } else if let Some((first_of_key, _)) = self.by_key.get_mut(&*oldest.key) {
                *first_of_key = oldest.next;
            }
            self.records.pop_front();
            self.first += 1;
        }
    }

    /// The lowest offset kept from partition `p`, if any record of it is kept.
    pub fn lowest_offset(&self, p: usize) -> Option<i64> {
        self.lowest
            .get(p)
            .and_then(|l| l.front())
            .map(|&(_, offset)| offset)
    }

    /// Records kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(time: i64, id: u64, partition: i32, offset: i64) -> Kept {
        Kept {
            time,
            id,
            batch: 0,
            row: 0,
            partition,
            offset,
        }
    }

    fn expired(before_time: i64, before_id: u64) -> Expired {
        Expired {
            before_time,
            before_id,
        }
    }

    #[test]
    fn expiry_drops_the_oldest_records_and_keeps_the_rest_by_key() {
        let mut w = Window::default();
        w.push(b"a", kept(100, 0, 0, 10));
        w.push(b"b", kept(110, 1, 0, 11));
        w.push(b"a", kept(120, 2, 0, 12));
        let mut gone = Vec::new();
        w.expire(expired(115, 3), |k| gone.push(k.id));
        assert_eq!(gone, vec![0, 1]);
        assert_eq!(w.len(), 1);
        assert_eq!(w.get(b"b").count(), 0, "a key with no records left goes");
        assert!(!w.by_key.contains_key(&b"b"[..]));
        let a: Vec<u64> = w.get(b"a").map(|k| k.id).collect();
        assert_eq!(a, vec![2]);
        assert_eq!(w.lowest_offset(0), Some(12));
    }

    /// Keys interleaved at random, expiries now and then: each key's records, walked
    /// through their links, are what a plain list of the kept records says.
    #[test]
    fn each_keys_records_follow_its_links_through_pushes_and_expiries() {
        let mut w = Window::default();
        let mut model: Vec<(Vec<u8>, Kept)> = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for id in 0..5_000u64 {
            let key = format!("k{}", next() % 7).into_bytes();
            let record = kept(id as i64, id, 0, id as i64);
            w.push(&key, record);
            model.push((key, record));
            if next() % 50 == 0 {
                let upto = expired(i64::MAX, id.saturating_sub(next() % 200));
                let mut gone = Vec::new();
                w.expire(upto, |k| gone.push(k.id));
                let before = model.len();
                model.retain(|(_, k)| !upto.covers(k.time, k.id));
                assert_eq!(gone.len(), before - model.len());
            }
            if id % 97 == 0 {
                for k in 0..7 {
                    let key = format!("k{k}").into_bytes();
                    let ours: Vec<u64> = w.get(&key).map(|k| k.id).collect();
                    let theirs: Vec<u64> = model
                        .iter()
                        .filter(|(k, _)| *k == key)
                        .map(|(_, k)| k.id)
                        .collect();
                    assert_eq!(ours, theirs, "key {k} after record {id}");
                }
                assert_eq!(w.len(), model.len());
            }
        }
    }

    #[test]
    fn a_record_kept_after_the_expiry_was_decided_stays() {
        let mut w = Window::default();
        w.push(b"a", kept(100, 0, 0, 0));
        w.push(b"a", kept(90, 1, 0, 1));
        let mut gone = 0;
        w.expire(expired(1000, 1), |_| gone += 1);
        assert_eq!(gone, 1);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_late_record_waits_behind_a_newer_one_and_matches_nothing_meanwhile() {
        let mut w = Window::default();
        w.push(b"a", kept(200, 0, 0, 0));
        w.push(b"b", kept(50, 1, 0, 1));
        let upto = expired(100, 2);
        w.expire(upto, |_| {});
        assert_eq!(w.len(), 2, "the record at 200 holds back the one behind it");
        let b = w.get(b"b").next().unwrap();
        assert!(upto.covers(b.time, b.id), "callers see it as expired");
    }

    #[test]
    fn the_lowest_offset_follows_records_kept_out_of_offset_order() {
        let mut w = Window::default();
        // Processed in time order, which for partition 0 is not offset order.
        w.push(b"a", kept(10, 0, 0, 7));
        w.push(b"a", kept(11, 1, 0, 5));
        w.push(b"a", kept(12, 2, 1, 3));
        w.push(b"a", kept(13, 3, 0, 6));
        assert_eq!(w.lowest_offset(0), Some(5));
        assert_eq!(w.lowest_offset(1), Some(3));
        assert_eq!(w.lowest_offset(2), None);
        let upto = |id| expired(i64::MAX, id);
        w.expire(upto(1), |_| {});
        assert_eq!(w.lowest_offset(0), Some(5));
        w.expire(upto(2), |_| {});
        assert_eq!(w.lowest_offset(0), Some(6));
        w.expire(upto(4), |_| {});
        assert_eq!(w.lowest_offset(0), None);
        assert_eq!(w.lowest_offset(1), None);
    }
}
