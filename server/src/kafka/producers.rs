//! Idempotent producers, as Kafka keeps them: InitProducerId hands out producer ids, and
//! each (producer, partition) remembers its epoch and its last five batches' sequence
//! numbers (a client has at most five requests in flight), so that a retried batch is
//! answered with the offset it got the first time instead of being written twice, and a
//! gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER) instead of reordering.
//!
//! The state lives in memory: after a restart the first batch of a producer on a partition
//! is accepted at whatever sequence it carries (Kafka would rebuild the state from its log
//! and snapshots; here a retry that straddles a restart may be written twice).
//! A producer's state is forgotten after a day without a batch (Kafka's
//! `producer.id.expiration.ms` default), so short-lived producers do not pile up.
//! Transactions are not served.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_storage::BatchHeader;
use sluice_storage::batch::Batches;

/// Batches remembered per producer and partition (Kafka's max.in.flight limit).
const REMEMBERED: usize = 5;
/// How long an idle producer's state is kept.
const EXPIRATION: Duration = Duration::from_secs(24 * 3600);
/// Expired states are looked for once per this many new (producer, partition) pairs.
const SWEEP_EVERY: usize = 1024;

use crate::kafka_codes::{INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER};

/// A batch already written: its sequence range and where it went.
#[derive(Clone, Copy)]
struct Written {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: u64,
}

struct ProducerPartition {
    epoch: i16,
    recent: VecDeque<Written>,
    last_used: Instant,
}

impl Default for ProducerPartition {
    fn default() -> Self {
        ProducerPartition {
            epoch: 0,
            recent: VecDeque::new(),
            last_used: Instant::now(),
        }
    }
}

/// What the first batch of a produce says about its producer.
#[derive(Clone, Copy)]
pub(crate) struct Sequenced {
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    last_sequence: i32,
}

/// What to do with a sequenced batch.
pub(crate) enum Check {
    /// Write it.
    Append,
    /// Already written at this base offset: answer that, write nothing.
    Duplicate(u64),
    /// Refuse with this error code.
    Refuse(i16),
}

/// (producer id, topic, partition).
type ProducerKey = (i64, String, u32);

pub(crate) struct Producers {
    next_id: AtomicI64,
    partitions: Mutex<HashMap<ProducerKey, Arc<Mutex<ProducerPartition>>>>,
}

impl Default for Producers {
    fn default() -> Self {
        // Ids stay unique across restarts: they start from the clock (ms, shifted), which
        // runs ahead of any id handed out before unless a run gave out over 1,024 per ms.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64);
        Producers {
            next_id: AtomicI64::new(now_ms << 10),
            partitions: Mutex::new(HashMap::new()),
        }
    }
}

impl Producers {
    /// A new producer id (epoch 0).
    pub fn allocate(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// The lock a sequenced produce to one partition holds while it checks, appends and
    /// records (the same producer's requests on two connections must not interleave).
    fn partition(
        &self,
        producer_id: i64,
        topic: &str,
        partition: u32,
    ) -> Arc<Mutex<ProducerPartition>> {
        let mut all = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (producer_id, topic.to_string(), partition);
        if !all.contains_key(&key) && all.len() % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // A state in use is locked; try_lock skips it rather than wait.
            all.retain(|_, state| {
                state
                    .try_lock()
                    .map_or(true, |s| s.last_used.elapsed() < EXPIRATION)
            });
        }
        all.entry(key).or_default().clone()
    }

    /// Runs `append` for a batch set of a producer unless it is a duplicate or out of
    /// order; returns the base offset (the earlier one for a duplicate) or an error code.
    pub fn append_sequenced(
        &self,
        sequenced: Sequenced,
        topic: &str,
        partition: u32,
        append: impl FnOnce() -> Result<u64, i16>,
    ) -> Result<u64, i16> {
        let state = self.partition(sequenced.producer_id, topic, partition);
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.last_used = Instant::now();
        match check(&state, sequenced) {
            Check::Refuse(code) => Err(code),
            Check::Duplicate(offset) => Ok(offset),
            Check::Append => {
                let base_offset = append()?;
                if sequenced.epoch != state.epoch {
                    state.epoch = sequenced.epoch;
                    state.recent.clear();
                }
                if state.recent.len() == REMEMBERED {
                    state.recent.pop_front();
                }
                state.recent.push_back(Written {
                    first_sequence: sequenced.first_sequence,
                    last_sequence: sequenced.last_sequence,
                    base_offset,
                });
                Ok(base_offset)
            }
        }
    }

    /// Forgets a deleted topic's producer state.
    pub fn forget_topic(&self, topic: &str) {
        let mut all = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, t, _), _| t != topic);
    }
}

fn check(state: &ProducerPartition, s: Sequenced) -> Check {
    if state.recent.is_empty() && state.epoch == 0 {
        // Nothing known (a new producer, or a restart): start from this batch.
        return Check::Append;
    }
    if s.epoch < state.epoch {
        return Check::Refuse(INVALID_PRODUCER_EPOCH);
    }
    if s.epoch > state.epoch {
        // A bumped epoch starts its sequences again from 0.
        return if s.first_sequence == 0 {
            Check::Append
        } else {
            Check::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER)
        };
    }
    if let Some(w) = state
        .recent
        .iter()
        .find(|w| w.first_sequence == s.first_sequence && w.last_sequence == s.last_sequence)
    {
        return Check::Duplicate(w.base_offset);
    }
    let last = state.recent.back().map_or(-1, |w| w.last_sequence);
    let expected = if last == i32::MAX { 0 } else { last + 1 };
    if s.first_sequence == expected {
        Check::Append
    } else {
        Check::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER)
    }
}

/// The producer and sequence range of a produce's batches, when they carry a producer id
/// (`None` for plain producers). Every batch of one produce comes from one producer.
pub(crate) fn sequenced(batches: &[u8]) -> Result<Option<Sequenced>, String> {
    let mut found: Option<Sequenced> = None;
    for b in Batches::new(batches) {
        let h = BatchHeader::parse(b).map_err(|e| e.to_string())?;
        if h.producer_id < 0 {
            return Ok(None);
        }
        let last = (h.base_sequence as i64 + h.last_offset_delta as i64) % (i32::MAX as i64 + 1);
        found = Some(match found {
            None => Sequenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                first_sequence: h.base_sequence,
                last_sequence: last as i32,
            },
            Some(s) => Sequenced {
                last_sequence: last as i32,
                ..s
            },
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, last: i32, epoch: i16) -> Sequenced {
        Sequenced {
            producer_id: 7,
            epoch,
            first_sequence: first,
            last_sequence: last,
        }
    }

    #[test]
    fn retries_are_answered_once_and_gaps_refused() {
        let producers = Producers::default();
        let mut next = 100u64;
        let mut append = |n: u64| {
            let base = next;
            next += n;
            move || Ok(base)
        };
        let first = producers.append_sequenced(batch(0, 9, 0), "t", 0, append(10));
        assert_eq!(first, Ok(100));
        assert_eq!(
            producers.append_sequenced(batch(10, 14, 0), "t", 0, append(5)),
            Ok(110)
        );
        // A retry of the first batch: its first offset again, nothing written.
        assert_eq!(
            producers.append_sequenced(batch(0, 9, 0), "t", 0, || panic!("written twice")),
            Ok(100)
        );
        // A gap is refused; the next in line is written.
        assert_eq!(
            producers.append_sequenced(batch(20, 24, 0), "t", 0, || panic!("out of order")),
            Err(OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            producers.append_sequenced(batch(15, 15, 0), "t", 0, append(1)),
            Ok(115)
        );
        // A bumped epoch restarts at 0; the old epoch is fenced.
        assert_eq!(
            producers.append_sequenced(batch(0, 0, 1), "t", 0, append(1)),
            Ok(116)
        );
        assert_eq!(
            producers.append_sequenced(batch(16, 16, 0), "t", 0, || panic!("fenced")),
            Err(INVALID_PRODUCER_EPOCH)
        );
        // Another partition has its own sequence.
        assert_eq!(
            producers.append_sequenced(batch(3, 3, 0), "t", 1, append(1)),
            Ok(117)
        );
        assert_ne!(producers.allocate(), producers.allocate());
    }
}
