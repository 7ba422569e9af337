//! Sparse indexes of a segment, kept in memory and appended to their files as they grow.
//! `.index`: 8-byte entries (offset relative to the segment base: u32, byte position: u32),
//! each the *base* offset and start position of a batch, one entry per `INDEX_INTERVAL`
//! bytes of log. `.timeindex`: 12-byte entries (largest timestamp so far: i64, relative
//! offset of the batch where it first appeared: u32), strictly increasing in timestamp.
//! Both are big-endian, never checksummed and rebuilt from the log whenever in doubt.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::fs::{VFile, Vfs};

/// Bytes of log between two index entries (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL: u64 = 4096;

pub trait IndexEntry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(b: &[u8]) -> Self;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub rel_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub rel_offset: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.rel_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.rel_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            rel_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// One index file and its entries.
pub struct SparseIndex<E: IndexEntry> {
    /// `None` once the segment is sealed: its entries stay in memory, and the file handle is
    /// given back so thousands of segments do not hold thousands of descriptors.
    file: Option<Arc<dyn VFile>>,
    entries: Vec<E>,
}

impl<E: IndexEntry> SparseIndex<E> {
    /// Opens (creating if missing) and loads an index file; a trailing partial entry is
    /// ignored and cut off at the next `reset` or append.
    pub fn open(vfs: &dyn Vfs, path: &Path) -> io::Result<Self> {
        let file = vfs.open(path, true)?;
        let len = file.len()? as usize;
        let mut raw = vec![0; len - len % E::SIZE];
        file.read_exact_at(&mut raw, 0)?;
        let entries = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        let mut idx = SparseIndex {
            file: Some(file),
            entries,
        };
        if !len.is_multiple_of(E::SIZE) {
            idx.truncate(idx.entries.len())?;
        }
        Ok(idx)
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    fn file(&self) -> io::Result<&Arc<dyn VFile>> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("the index of a sealed segment is read-only"))
    }

    pub fn push(&mut self, e: E) -> io::Result<()> {
        let mut buf = [0u8; 16];
        e.encode(&mut buf[..E::SIZE]);
        self.file()?
            .write_at(&buf[..E::SIZE], (self.entries.len() * E::SIZE) as u64)?;
        self.entries.push(e);
        Ok(())
    }

    /// Keeps only the first `n` entries.
    pub fn truncate(&mut self, n: usize) -> io::Result<()> {
        self.entries.truncate(n);
        self.file()?.set_len((n * E::SIZE) as u64)
    }

    pub fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync(),
            None => Ok(()),
        }
    }

    /// Closes the file; the entries stay readable in memory.
    pub fn close_file(&mut self) {
        self.file = None;
    }
}

impl SparseIndex<OffsetEntry> {
    /// The last entry whose offset is at most `rel_offset`.
    pub fn floor(&self, rel_offset: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel_offset <= rel_offset);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// True when entries grow strictly in offset and position and stay inside `log_size`.
    pub fn is_sane(&self, log_size: u64) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
            && self
                .entries
                .iter()
                .all(|e| u64::from(e.position) < log_size.max(1))
    }
}

impl SparseIndex<TimeEntry> {
    /// The last entry whose timestamp is strictly below `timestamp`: no record before its
    /// offset can have a timestamp at or above `timestamp`.
    pub fn floor_below(&self, timestamp: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn is_sane(&self) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp && w[0].rel_offset <= w[1].rel_offset)
    }
}
