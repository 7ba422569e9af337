//! Zig-zag variable-length integers as Kafka's record format uses them (protobuf style:
//! 7 bits a byte, least significant first, high bit = more bytes follow).

use crate::error::{Result, StorageError};

/// Appends `v` as a zig-zag varint (32-bit range).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zig-zag varlong (64-bit range).
#[inline]
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

#[inline]
fn put_unsigned(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Writes `v` as a zig-zag varint filling `out`, which must be `varint_len(v)` bytes long
/// (a length laid out before what it measures was written).
#[inline]
pub fn put_varint_at(out: &mut [u8], v: i32) {
    let mut u = ((v << 1) ^ (v >> 31)) as u32;
    match out {
        // The usual widths, without a loop.
        [only] => *only = u as u8,
        [low, high] => {
            *low = (u as u8) | 0x80;
            *high = (u >> 7) as u8;
        }
        _ => {
            if let Some((last, before)) = out.split_last_mut() {
                for byte in before {
                    *byte = (u as u8) | 0x80;
                    u >>= 7;
                }
                *last = u as u8;
            }
        }
    }
}

/// Number of bytes `put_varint(v)` writes.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Number of bytes `put_varlong(v)` writes.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(((v << 1) ^ (v >> 63)) as u64)
}

#[inline]
fn unsigned_len(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

/// A cursor over a byte slice that reads Kafka's varints and raw fields; every read is
/// bounds-checked and reports corruption instead of panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

// The reader's methods are `#[inline]`: the record walk that calls them for every field of
// every record is generic (its closure), so it is compiled in the crates that use it.
impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline(always)]
    fn read_unsigned(&mut self, max_bytes: usize) -> Result<u64> {
        // A record's varints (lengths, deltas, counts) are mostly one or two bytes.
        if let Some(&b) = self.buf.get(self.pos)
            && b & 0x80 == 0
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        if let Some(&[b0, b1]) = self.buf.get(self.pos..self.pos + 2)
            && b1 & 0x80 == 0
        {
            self.pos += 2;
            return Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
        }
        self.read_unsigned_long(max_bytes)
    }

    fn read_unsigned_long(&mut self, max_bytes: usize) -> Result<u64> {
        let mut result: u64 = 0;
        for i in 0..max_bytes {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| StorageError::corrupted("varint runs past the end of the record"))?;
            self.pos += 1;
            result |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(result);
            }
        }
        Err(StorageError::corrupted("varint is too long"))
    }

    #[inline(always)]
    pub fn varint(&mut self) -> Result<i32> {
        let u = self.read_unsigned(5)? as u32;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    #[inline(always)]
    pub fn varlong(&mut self) -> Result<i64> {
        let u = self.read_unsigned(10)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    #[inline(always)]
    pub fn i8(&mut self) -> Result<i8> {
        let b = *self.buf.get(self.pos).ok_or_else(past_the_end)?;
        self.pos += 1;
        Ok(b as i8)
    }

    /// Reads exactly `n` bytes.
    #[inline(always)]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(past_the_end)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Reads a varint length followed by that many bytes; length -1 means null.
    #[inline(always)]
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len < 0 {
            if len != -1 {
                return Err(negative_length(len));
            }
            return Ok(None);
        }
        self.bytes(len as usize).map(Some)
    }
}

#[cold]
fn past_the_end() -> StorageError {
    StorageError::corrupted("field runs past the end of the record")
}

#[cold]
fn negative_length(len: i32) -> StorageError {
    StorageError::corrupted(format!("negative length {len}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        // Every one-, two- and three-byte encoding's edges (the reader's fast paths).
        for v in -70_000..70_000 {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v));
            assert_eq!(Reader::new(&b).varlong().unwrap(), v);
        }
        // The computed length is the written one on both sides of every byte boundary.
        for shift in 0..64 {
            let p = 1i64 << shift;
            for v in [
                p.wrapping_sub(1),
                p,
                p.wrapping_neg(),
                p.wrapping_neg().wrapping_sub(1),
            ] {
                let mut b = Vec::new();
                put_varlong(&mut b, v);
                assert_eq!(b.len(), varlong_len(v), "{v}");
                if let Ok(v) = i32::try_from(v) {
                    b.clear();
                    put_varint(&mut b, v);
                    assert_eq!(b.len(), varint_len(v), "{v}");
                }
            }
        }
    }

    #[test]
    fn known_encodings_match_kafka() {
        // ByteUtilsTest: zig-zag 0 -> 00, -1 -> 01, 1 -> 02, 300 -> d8 04
        let mut b = Vec::new();
        put_varint(&mut b, 300);
        assert_eq!(b, [0xd8, 0x04]);
        b.clear();
        put_varint(&mut b, -1);
        assert_eq!(b, [0x01]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varlong().is_err());
        assert!(Reader::new(&[0x04, 1]).nullable_bytes().is_err());
    }
}
