//! The bytes a partition read hands out: either a buffer of their own (a small read, or one
//! from a file system that cannot map) or a window on a memory map of the segment, which
//! reaches the reader without a copy and is unmapped when its last holder drops it. Both
//! read as one `[u8]`.

use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::Mmap;

/// Bytes of whole record batches, owned or mapped.
#[derive(Clone)]
pub enum ReadBytes {
    Owned(Vec<u8>),
    /// `range` of a map of part of a segment (kept alive by this `Arc` while anyone holds
    /// it).
    Mapped(Arc<Mmap>, Range<usize>),
}

impl ReadBytes {
    /// Gives an owned buffer back to `read_buffers` for the next read (a mapped window has
    /// none to give).
    pub fn recycle(self) {
        if let ReadBytes::Owned(v) = self {
            crate::read_buffers::recycle(v);
        }
    }

    /// As `bytes::Bytes`, still without a copy (a mapped window keeps its map alive).
    pub fn into_bytes(self) -> bytes::Bytes {
        match self {
            ReadBytes::Owned(v) => bytes::Bytes::from(v),
            ReadBytes::Mapped(map, range) => bytes::Bytes::from_owner(MappedRange(map, range)),
        }
    }
}

impl Default for ReadBytes {
    fn default() -> Self {
        ReadBytes::Owned(Vec::new())
    }
}

impl Deref for ReadBytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            ReadBytes::Owned(v) => v,
            ReadBytes::Mapped(map, range) => &map[range.clone()],
        }
    }
}

impl AsRef<[u8]> for ReadBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for ReadBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            ReadBytes::Owned(_) => "owned",
            ReadBytes::Mapped(..) => "mapped",
        };
        write!(f, "ReadBytes({kind}, {} bytes)", self.len())
    }
}

impl From<Vec<u8>> for ReadBytes {
    fn from(v: Vec<u8>) -> Self {
        ReadBytes::Owned(v)
    }
}

/// A window on a map, as an owner `bytes::Bytes` can hold.
struct MappedRange(Arc<Mmap>, Range<usize>);

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        &self.0[self.1.clone()]
    }
}
