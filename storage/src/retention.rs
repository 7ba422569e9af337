//! Time- and size-based retention (`cleanup.policy=delete`): whole segments go, oldest first,
//! as Kafka's rules say. A segment expires when its newest record is older than
//! `retention.ms`; size retention drops the oldest segments while what remains is still at
//! least `retention.bytes`. The first non-deletable segment stops the sweep, and the log
//! always keeps an active segment (rolling an expired one first), so offsets never restart.

use crate::error::Result;
use crate::partition::{PartitionLog, lock, now_ms};

impl PartitionLog {
    /// Applies retention now; returns how many segments were deleted.
    pub fn apply_retention(&self) -> Result<usize> {
        self.apply_retention_at(now_ms())
    }

    /// Applies retention as if the time were `now` (ms since the epoch).
    pub fn apply_retention_at(&self, now: i64) -> Result<usize> {
        let c = self.config();
        if !c.delete {
            return Ok(0);
        }
        let mut st = lock(&self.state);
        let expired =
            |max_ts: i64| c.retention_ms >= 0 && max_ts >= 0 && now - max_ts > c.retention_ms;
        // An expired, non-empty active segment is rolled so it can go too (Kafka does this).
        let all_old_expired = st
            .segments
            .values()
            .rev()
            .skip(1)
            .all(|s| expired(s.max_timestamp));
        let active_expired = st
            .active()
            .is_some_and(|a| !a.is_empty() && expired(a.max_timestamp));
        if all_old_expired && active_expired {
            self.roll(&mut st)?;
        }
        let mut total = st.size();
        let mut deleted = 0;
        loop {
            if st.segments.len() <= 1 {
                break;
            }
            let Some((&base, seg)) = st.segments.iter().next() else {
                break;
            };
            let by_time = expired(seg.max_timestamp);
            let by_size = c.retention_bytes >= 0 && total - seg.size >= c.retention_bytes as u64;
            if !(by_time || by_size) {
                break;
            }
            let seg = st.segments.remove(&base).expect("segment listed above");
            total -= seg.size;
            tracing::info!(topic = %self.topic, partition = self.id, base, by_time, by_size, "retention deleted a segment");
            seg.delete(self.vfs.as_ref())?;
            deleted += 1;
        }
        if deleted > 0 {
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| crate::error::StorageError::io(&self.dir, e))?;
        }
        Ok(deleted)
    }
}
