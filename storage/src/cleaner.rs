//! Log compaction (`cleanup.policy=compact`), as Kafka's LogCleaner does it: the active
//! segment is never touched; over the other segments the latest offset of every key is
//! found, and each segment is rewritten keeping only those records. Offsets never change:
//! a rewritten batch keeps its base offset and last offset delta (it may end up empty), so
//! the log stays contiguous. Tombstones stay readable for `delete.retention.ms` after the
//! first cleaning that sees them: that cleaning stamps the batch with a delete horizon
//! (KIP-534: attribute bit 6, base timestamp = horizon); a later cleaning past the horizon
//! drops them.
//!
//! Crash safety: a rewrite goes to `<base>.log.cleaned` and is fsynced, then the old indexes
//! are removed and the cleaned file is renamed over the log (atomic); a crash leaves either
//! the old or the new log, and missing indexes are rebuilt at open.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::{self, BatchBuilder, BatchHeader};
use crate::error::{Result, StorageError};
use crate::fs::VFile;
use crate::partition::{PartitionLog, lock, now_ms};
use crate::segment::{Segment, file_name, scan_batches};

/// What one compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_rewritten: usize,
    pub records_removed: u64,
}

struct Sealed {
    base: u64,
    file: Arc<dyn VFile>,
    size: u64,
}

impl PartitionLog {
    /// Compacts now.
    pub fn compact(&self) -> Result<CleanStats> {
        self.compact_at(now_ms())
    }

    /// Compacts as if the time were `now` (ms since the epoch).
    pub fn compact_at(&self, now: i64) -> Result<CleanStats> {
        let c = self.config();
        if !c.compact {
            return Ok(CleanStats::default());
        }
        let max_batch = usize::MAX;
        let sealed: Vec<Sealed> = {
            let st = lock(&self.state);
            st.segments
                .values()
                .rev()
                .skip(1)
                .rev()
                .map(|s| Sealed {
                    base: s.base,
                    file: s.log_file(),
                    size: s.size,
                })
                .collect()
        };
        // Latest offset of every key in the cleanable part of the log.
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        for s in &sealed {
            scan_batches(s.file.as_ref(), 0, s.size, max_batch, |_, b| {
                batch::for_each_record(b, |r| {
                    if let Some(k) = r.key {
                        match latest.get_mut(k) {
                            Some(o) => *o = r.offset,
                            None => {
                                latest.insert(k.to_vec(), r.offset);
                            }
                        }
                    }
                    Ok(())
                })?;
                Ok(true)
            })?;
        }
        let mut stats = CleanStats::default();
        for s in &sealed {
            let mut out = Vec::with_capacity(s.size as usize);
            let mut changed = false;
            scan_batches(s.file.as_ref(), 0, s.size, max_batch, |_, b| {
                let (bytes, removed, differs) =
                    rewrite_batch(b, &latest, now, c.delete_retention_ms)?;
                stats.records_removed += removed;
                changed |= differs;
                out.extend_from_slice(&bytes);
                Ok(true)
            })?;
            if changed {
                self.swap_in(s.base, &out)?;
                stats.segments_rewritten += 1;
            }
        }
        Ok(stats)
    }

    /// Replaces segment `base` with `data` (same offsets), crash-safely.
    fn swap_in(&self, base: u64, data: &[u8]) -> Result<()> {
        let vfs = self.vfs.as_ref();
        let path = |s: &str| -> PathBuf { self.dir.join(file_name(base, s)) };
        let cleaned = path("log.cleaned");
        let f = vfs
            .open(&cleaned, true)
            .map_err(|e| StorageError::io(&cleaned, e))?;
        f.set_len(0).map_err(|e| StorageError::io(&cleaned, e))?;
        f.write_at(data, 0)
            .map_err(|e| StorageError::io(&cleaned, e))?;
        f.sync().map_err(|e| StorageError::io(&cleaned, e))?;
        drop(f);
        let mut st = lock(&self.state);
        if !st.segments.contains_key(&base) {
            let _ = vfs.remove_file(&cleaned);
            return Ok(());
        }
        for idx in ["index", "timeindex"] {
            let p = path(idx);
            if let Err(e) = vfs.remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(StorageError::io(p, e));
            }
        }
        vfs.sync_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, e))?;
        vfs.rename(&cleaned, &path("log"))
            .map_err(|e| StorageError::io(&cleaned, e))?;
        vfs.sync_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, e))?;
        let mut seg = Segment::open(vfs, &self.dir, base)?;
        seg.recover(usize::MAX)?;
        seg.seal()?;
        seg.release_index_files();
        st.segments.insert(base, seg);
        Ok(())
    }
}

/// Rewrites one batch keeping the latest record of each key and unexpired tombstones.
/// Returns the new bytes, how many records were removed, and whether anything changed.
fn rewrite_batch(
    b: &[u8],
    latest: &HashMap<Vec<u8>, i64>,
    now: i64,
    delete_retention_ms: i64,
) -> Result<(Vec<u8>, u64, bool)> {
    let h = BatchHeader::parse(b)?;
    let horizon = h.has_delete_horizon().then_some(h.base_timestamp);
    let mut keep = Vec::new();
    let mut removed = 0u64;
    let mut has_tombstone = false;
    batch::for_each_record(b, |r| {
        let is_latest = r.key.is_some_and(|k| latest.get(k) == Some(&r.offset));
        let tombstone_expired = r.value.is_none() && horizon.is_some_and(|hz| now >= hz);
        if is_latest && !tombstone_expired {
            has_tombstone |= r.value.is_none();
            keep.push((
                (r.offset - h.base_offset) as i32,
                r.timestamp,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                r.headers()?
                    .into_iter()
                    .map(|(k, v)| (k, v.map(<[u8]>::to_vec)))
                    .collect::<Vec<_>>(),
            ));
        } else {
            removed += 1;
        }
        Ok(())
    })?;
    let needs_horizon = has_tombstone && horizon.is_none();
    if removed == 0 && !needs_horizon {
        return Ok((b.to_vec(), 0, false));
    }
    let new_horizon = if has_tombstone {
        Some(horizon.unwrap_or(now.saturating_add(delete_retention_ms)))
    } else {
        None
    };
    let mut builder = BatchBuilder::with_capacity(h.compression()?, b.len()).producer(
        h.producer_id,
        h.producer_epoch,
        h.base_sequence,
    );
    if let Some(hz) = new_horizon {
        builder = builder.delete_horizon(hz);
    }
    for (delta, ts, k, v, hs) in &keep {
        let headers: Vec<(&str, Option<&[u8]>)> =
            hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        builder.push_with_delta(*delta, *ts, k.as_deref(), v.as_deref(), &headers);
    }
    let bytes = builder.finish_with(h.base_offset as u64, h.last_offset_delta)?;
    Ok((bytes, removed, true))
}
