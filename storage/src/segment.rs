//! One segment of a partition: `<base>.log` (RecordBatch v2 bytes, nothing else) with its
//! `.index` and `.timeindex`. A segment appends whole batches, finds the byte position of an
//! offset, and recovers itself: it walks its batches, validates each, rebuilds its indexes
//! and truncates the file at the first batch that is torn or corrupt.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, Expect, HEADER_LEN, LOG_OVERHEAD};
use crate::error::{Result, StorageError};
use crate::fs::{VFile, Vfs};
use crate::index::{INDEX_INTERVAL, OffsetEntry, SparseIndex, TimeEntry};

/// File name of a segment file: the base offset in 20 digits plus a suffix.
pub fn file_name(base: u64, suffix: &str) -> String {
    format!("{base:020}.{suffix}")
}

/// Parses `<20 digits>.log` back to its base offset.
pub fn parse_log_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Walks the complete batches of `file` from `from` up to `limit` bytes, handing each to `f`
/// with its position. Stops at the end, at a torn or implausible batch, or when `f` returns
/// false. Returns the position after the last batch handed over and why it stopped.
pub fn scan_batches(
    file: &dyn VFile,
    from: u64,
    limit: u64,
    max_batch: usize,
    f: impl FnMut(u64, &[u8]) -> Result<bool>,
) -> Result<(u64, ScanEnd)> {
    let mut chunk = crate::read_buffers::take();
    let scanned = scan_batches_with(file, from, limit, max_batch, &mut chunk, f);
    crate::read_buffers::recycle(chunk);
    scanned
}

/// `scan_batches`, reading through `chunk`.
fn scan_batches_with(
    file: &dyn VFile,
    from: u64,
    limit: u64,
    max_batch: usize,
    chunk: &mut Vec<u8>,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool>,
) -> Result<(u64, ScanEnd)> {
    const CHUNK: usize = 1 << 20;
    let mut chunk_start = from;
    let mut pos = from;
    loop {
        if pos + LOG_OVERHEAD as u64 > limit {
            let end = if pos == limit {
                ScanEnd::End
            } else {
                ScanEnd::Torn
            };
            return Ok((pos, end));
        }
        let need = |chunk: &Vec<u8>, start: u64, at: u64, n: usize| {
            at >= start && at + n as u64 <= start + chunk.len() as u64
        };
        if !need(chunk, chunk_start, pos, LOG_OVERHEAD) {
            let n = (limit - pos).min(CHUNK as u64) as usize;
            chunk.resize(n, 0);
            file.read_exact_at(chunk, pos)
                .map_err(|e| StorageError::io("segment", e))?;
            chunk_start = pos;
        }
        let at = (pos - chunk_start) as usize;
        let Some(len) = batch::peek_total_len(&chunk[at..]) else {
            return Ok((pos, ScanEnd::Corrupt));
        };
        if len < HEADER_LEN || len > max_batch {
            return Ok((pos, ScanEnd::Corrupt));
        }
        if pos + len as u64 > limit {
            return Ok((pos, ScanEnd::Torn));
        }
        if !need(chunk, chunk_start, pos, len) {
            let n = (limit - pos).min(CHUNK.max(len) as u64) as usize;
            chunk.resize(n, 0);
            file.read_exact_at(chunk, pos)
                .map_err(|e| StorageError::io("segment", e))?;
            chunk_start = pos;
        }
        let at = (pos - chunk_start) as usize;
        if !f(pos, &chunk[at..at + len])? {
            return Ok((pos, ScanEnd::Stopped));
        }
        pos += len as u64;
    }
}

/// Why a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    End,
    Torn,
    Corrupt,
    Stopped,
}

pub struct Segment {
    pub base: u64,
    dir: PathBuf,
    log: Arc<dyn VFile>,
    /// Bytes of whole batches in the log file.
    pub size: u64,
    /// Offset just past the last batch.
    pub next_offset: u64,
    /// Largest record timestamp, -1 when empty.
    pub max_timestamp: i64,
    max_timestamp_rel: u32,
    /// Largest timestamp of the first batch: when `segment.ms` starts counting.
    pub first_batch_timestamp: Option<i64>,
    offsets: SparseIndex<OffsetEntry>,
    times: SparseIndex<TimeEntry>,
    bytes_since_entry: u64,
    /// Something was written since the last `seal`.
    dirty: bool,
}

impl Segment {
    fn paths(dir: &Path, base: u64) -> [PathBuf; 3] {
        ["log", "index", "timeindex"].map(|s| dir.join(file_name(base, s)))
    }

    /// Creates a new, empty segment (replacing leftovers with the same name).
    pub fn create(vfs: &dyn Vfs, dir: &Path, base: u64) -> Result<Self> {
        let [lp, ip, tp] = Self::paths(dir, base);
        let log = vfs.open(&lp, true).map_err(|e| StorageError::io(&lp, e))?;
        log.set_len(0).map_err(|e| StorageError::io(&lp, e))?;
        let mut offsets = SparseIndex::open(vfs, &ip).map_err(|e| StorageError::io(&ip, e))?;
        offsets.truncate(0).map_err(|e| StorageError::io(&ip, e))?;
        let mut times = SparseIndex::open(vfs, &tp).map_err(|e| StorageError::io(&tp, e))?;
        times.truncate(0).map_err(|e| StorageError::io(&tp, e))?;
        Ok(Segment {
            base,
            dir: dir.to_path_buf(),
            log,
            size: 0,
            next_offset: base,
            max_timestamp: -1,
            max_timestamp_rel: 0,
            first_batch_timestamp: None,
            offsets,
            times,
            bytes_since_entry: 0,
            dirty: false,
        })
    }

    /// Opens an existing segment trusting its indexes; call `recover` or `recover_tail` to
    /// validate. `next_offset` is set from the indexes (a lower bound until validated).
    pub fn open(vfs: &dyn Vfs, dir: &Path, base: u64) -> Result<Self> {
        let [lp, ip, tp] = Self::paths(dir, base);
        let log = vfs.open(&lp, false).map_err(|e| StorageError::io(&lp, e))?;
        let size = log.len().map_err(|e| StorageError::io(&lp, e))?;
        let offsets: SparseIndex<OffsetEntry> =
            SparseIndex::open(vfs, &ip).map_err(|e| StorageError::io(&ip, e))?;
        let times: SparseIndex<TimeEntry> =
            SparseIndex::open(vfs, &tp).map_err(|e| StorageError::io(&tp, e))?;
        let (max_timestamp, max_timestamp_rel) = times
            .last()
            .map(|e| (e.timestamp, e.rel_offset))
            .unwrap_or((-1, 0));
        let next_offset = offsets
            .last()
            .map_or(base, |e| base + u64::from(e.rel_offset));
        Ok(Segment {
            base,
            dir: dir.to_path_buf(),
            log,
            size,
            next_offset,
            max_timestamp,
            max_timestamp_rel,
            first_batch_timestamp: None,
            offsets,
            times,
            bytes_since_entry: 0,
            dirty: false,
        })
    }

    pub fn log_file(&self) -> Arc<dyn VFile> {
        self.log.clone()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(file_name(self.base, "log"))
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// True when the indexes look consistent with the log file.
    pub fn indexes_sane(&self) -> bool {
        self.offsets.is_sane(self.size) && self.times.is_sane()
    }

    /// Records a batch appended at `position` in the indexes and counters.
    fn track(&mut self, position: u64, h: &BatchHeader) -> Result<()> {
        self.dirty = true;
        let rel = (h.base_offset as u64 - self.base) as u32;
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_rel = rel;
        }
        if position == 0 || self.bytes_since_entry >= INDEX_INTERVAL {
            let ip = self.dir.join(file_name(self.base, "index"));
            self.offsets
                .push(OffsetEntry {
                    rel_offset: rel,
                    position: position as u32,
                })
                .map_err(|e| StorageError::io(&ip, e))?;
            self.push_time_entry_if_newer()?;
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += h.total_len() as u64;
        self.next_offset = h.next_offset();
        Ok(())
    }

    /// Adds a time-index entry for the largest timestamp so far, if it grew.
    fn push_time_entry_if_newer(&mut self) -> Result<()> {
        if self
            .times
            .last()
            .is_some_and(|t| self.max_timestamp <= t.timestamp)
        {
            return Ok(());
        }
        let entry = TimeEntry {
            timestamp: self.max_timestamp,
            rel_offset: self.max_timestamp_rel,
        };
        self.times
            .push(entry)
            .map_err(|e| StorageError::io(self.dir.join(file_name(self.base, "timeindex")), e))
    }

    /// Writes already-validated batches (held in `parts`, in order; their headers in
    /// `headers`) at the end.
    pub fn append(&mut self, parts: &[&mut [u8]], headers: &[BatchHeader]) -> Result<()> {
        let start = self.size;
        let mut at = start;
        for data in parts {
            if let Err(e) = self.log.write_at(data, at) {
                // Leave no partial batch behind for readers or the next append.
                let _ = self.log.set_len(start);
                return Err(StorageError::io(self.log_path(), e));
            }
            at += data.len() as u64;
        }
        let mut pos = start;
        for h in headers {
            self.track(pos, h)?;
            pos += h.total_len() as u64;
        }
        self.size = pos;
        Ok(())
    }

    /// The position to start reading at for `offset`: the start of the batch whose index
    /// entry is the last at or before it.
    pub fn index_position(&self, offset: u64) -> u64 {
        let rel = offset.saturating_sub(self.base).min(u64::from(u32::MAX)) as u32;
        self.offsets.floor(rel).map_or(0, |e| u64::from(e.position))
    }

    /// Where to start scanning for the first record with timestamp >= `timestamp`.
    pub fn time_position(&self, timestamp: i64) -> u64 {
        match self.times.floor_below(timestamp) {
            Some(t) => self.index_position(self.base + u64::from(t.rel_offset)),
            None => 0,
        }
    }

    /// Validates every batch from the start, rebuilding both indexes and truncating the file
    /// at the first batch that is torn or bad. Returns the number of bytes cut off.
    pub fn recover(&mut self, max_batch: usize) -> Result<u64> {
        let lp = self.log_path();
        let file_len = self.log.len().map_err(|e| StorageError::io(&lp, e))?;
        let ip = self.dir.join(file_name(self.base, "index"));
        self.offsets
            .truncate(0)
            .map_err(|e| StorageError::io(&ip, e))?;
        self.times
            .truncate(0)
            .map_err(|e| StorageError::io(&ip, e))?;
        self.first_batch_timestamp = None;
        self.max_timestamp = -1;
        self.max_timestamp_rel = 0;
        self.next_offset = self.base;
        self.bytes_since_entry = 0;
        let mut headers = Vec::new();
        let (end, why) = self.validate_from(0, self.base, file_len, max_batch, |pos, h| {
            headers.push((pos, h));
        })?;
        for (pos, h) in &headers {
            self.track(*pos, h)?;
        }
        self.size = end;
        let cut = file_len - end;
        if cut > 0 {
            tracing::warn!(segment = %lp.display(), bytes = cut, reason = ?why, "truncating segment at the first bad batch");
            self.log
                .set_len(end)
                .map_err(|e| StorageError::io(&lp, e))?;
            self.log.sync().map_err(|e| StorageError::io(&lp, e))?;
        }
        Ok(cut)
    }

    /// Walks and validates batches from `from` (expected to carry offset `expected`) up to
    /// `limit`, handing each valid one to `f`; returns where the valid run ends and why.
    fn validate_from(
        &self,
        from: u64,
        expected: u64,
        limit: u64,
        max_batch: usize,
        mut f: impl FnMut(u64, BatchHeader),
    ) -> Result<(u64, ScanEnd)> {
        let lp = self.log_path();
        let mut expected_next = expected;
        let (end, why) = scan_batches(self.log.as_ref(), from, limit, max_batch, |pos, bytes| {
            let expect = Expect {
                base_offset: Some(expected_next),
                leader_epoch: Some(0),
                max_len: max_batch,
            };
            match batch::validate(bytes, &expect) {
                Ok(h) => {
                    expected_next = h.next_offset();
                    f(pos, h);
                    Ok(true)
                }
                Err(e) => {
                    tracing::warn!(segment = %lp.display(), position = pos, error = %e, "invalid batch");
                    Ok(false)
                }
            }
        })?;
        let why = if why == ScanEnd::Stopped {
            ScanEnd::Corrupt
        } else {
            why
        };
        Ok((end, why))
    }

    /// Validates the segment's tail after a clean shutdown: every batch from the last index
    /// entry to the end of the file. If that tail is whole, nothing is rewritten; if anything
    /// is off (indexes included), the whole segment is recovered.
    pub fn recover_tail(&mut self, max_batch: usize) -> Result<u64> {
        let lp = self.log_path();
        let file_len = self.log.len().map_err(|e| StorageError::io(&lp, e))?;
        self.size = file_len;
        if let Some(e) = self.offsets.last().filter(|_| self.indexes_sane()) {
            let from = u64::from(e.position);
            let expected = self.base + u64::from(e.rel_offset);
            let mut last: Option<(u64, BatchHeader)> = None;
            let mut max_ts = self.max_timestamp;
            let mut max_rel = self.max_timestamp_rel;
            let (end, why) =
                self.validate_from(from, expected, file_len, max_batch, |pos, h| {
                    if h.max_timestamp > max_ts {
                        max_ts = h.max_timestamp;
                        max_rel = (h.base_offset as u64 - self.base) as u32;
                    }
                    last = Some((pos, h));
                })?;
            if why == ScanEnd::End
                && let Some((pos, h)) = last
            {
                self.next_offset = h.next_offset();
                self.bytes_since_entry = pos + h.total_len() as u64 - from;
                self.max_timestamp = max_ts;
                self.max_timestamp_rel = max_rel;
                self.first_batch_timestamp = Some(self.first_timestamp()?);
                return Ok(0);
            }
            let _ = end;
        }
        self.recover(max_batch)
    }

    /// The largest timestamp of the segment's first batch (-1 when there is no whole one),
    /// read from its header alone: a scan would read a whole chunk of the log for it.
    fn first_timestamp(&self) -> Result<i64> {
        if self.size < HEADER_LEN as u64 {
            return Ok(-1);
        }
        let mut head = [0u8; HEADER_LEN];
        self.log
            .read_exact_at(&mut head, 0)
            .map_err(|e| StorageError::io(self.log_path(), e))?;
        let h = BatchHeader::parse(&head)?;
        let whole = h.total_len() >= HEADER_LEN && h.total_len() as u64 <= self.size;
        Ok(if whole { h.max_timestamp } else { -1 })
    }

    /// Makes the log and its indexes durable, after adding a final time-index entry so the
    /// segment's largest timestamp is known without a scan at the next open.
    pub fn seal(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if self.max_timestamp >= 0 {
            self.push_time_entry_if_newer()?;
        }
        let tp = self.dir.join(file_name(self.base, "timeindex"));
        self.log
            .sync()
            .map_err(|e| StorageError::io(self.log_path(), e))?;
        self.offsets.sync().map_err(|e| StorageError::io(&tp, e))?;
        self.times.sync().map_err(|e| StorageError::io(&tp, e))?;
        self.dirty = false;
        Ok(())
    }

    /// Gives back the index files' descriptors of a segment that takes no more appends.
    pub fn release_index_files(&mut self) {
        self.offsets.close_file();
        self.times.close_file();
    }

    /// Removes the segment's files.
    pub fn delete(&self, vfs: &dyn Vfs) -> Result<()> {
        for p in Self::paths(&self.dir, self.base) {
            if let Err(e) = vfs.remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(StorageError::io(p, e));
            }
        }
        Ok(())
    }
}
