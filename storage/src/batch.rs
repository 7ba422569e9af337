//! Kafka RecordBatch v2, byte for byte (DefaultRecordBatch.java). Header layout, big-endian:
//!
//! ```text
//! 0  baseOffset i64        | 8  batchLength i32 (bytes after this field)
//! 12 partitionLeaderEpoch  | 16 magic i8 = 2     | 17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16        | 23 lastOffsetDelta  | 27 baseTimestamp i64 | 35 maxTimestamp i64
//! 43 producerId i64        | 51 producerEpoch i16| 53 baseSequence i32  | 57 recordsCount i32
//! 61 records (one compressed blob when attributes say so)
//! ```
//! This module parses and validates headers without copying, walks a buffer of concatenated
//! batches, decodes records (decompressing when needed) and builds new batches.

use crate::compression::{self, Compression};
use crate::error::{Result, StorageError};
use crate::varint::{Reader, put_varint, put_varint_at, put_varlong, varint_len, varlong_len};

/// Bytes before `batchLength` counts: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed batch header, records start here.
pub const HEADER_LEN: usize = 61;
pub const MAGIC: i8 = 2;
const CRC_START: usize = 21;

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// The fixed fields of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (which must hold at least `HEADER_LEN` bytes).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(StorageError::corrupted(format!(
                "batch header needs {HEADER_LEN} bytes, have {}",
                buf.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset just past this batch.
    pub fn next_offset(&self) -> u64 {
        (self.last_offset() + 1) as u64
    }

    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
}

/// Reads just the total length of the batch starting at `buf` (needs `LOG_OVERHEAD` bytes).
pub fn peek_total_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let len = be_i32(buf, 8);
    (len >= 0).then(|| LOG_OVERHEAD + len as usize)
}

/// Writes a new base offset (bytes 0..8, outside the CRC).
pub fn set_base_offset(batch: &mut [u8], offset: u64) {
    batch[0..8].copy_from_slice(&(offset as i64).to_be_bytes());
}

/// Writes the partition leader epoch (bytes 12..16, outside the CRC).
pub fn set_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// CRC-32C over attributes..end, as Kafka computes it.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// What a validation checks beyond the bytes themselves.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The base offset the batch must carry (when known: stored batches are contiguous).
    pub base_offset: Option<u64>,
    /// The leader epoch the batch must carry (stored batches carry ours).
    pub leader_epoch: Option<i32>,
    /// Largest acceptable total batch size.
    pub max_len: usize,
}

/// Validates the complete batch in `batch` (exactly one batch's bytes): length bounds, magic,
/// CRC, the record count against lastOffsetDelta, and the expectations. The CRC does not cover
/// the first 21 bytes, so the expectations are what catches damage there.
pub fn validate(batch: &[u8], expect: &Expect) -> Result<BatchHeader> {
    check(batch, expect, true)
}

/// `validate` without the CRC: for a batch whose CRC is known right (a `SealedBatch`).
pub(crate) fn check_header(batch: &[u8], expect: &Expect) -> Result<BatchHeader> {
    check(batch, expect, false)
}

fn check(batch: &[u8], expect: &Expect, crc: bool) -> Result<BatchHeader> {
    let h = BatchHeader::parse(batch)?;
    if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(StorageError::corrupted(format!(
            "batch length {} is smaller than a batch header",
            h.batch_length
        )));
    }
    if h.total_len() != batch.len() {
        return Err(StorageError::corrupted(format!(
            "batch length {} does not match the {} bytes present",
            h.total_len(),
            batch.len()
        )));
    }
    if h.total_len() > expect.max_len {
        return Err(StorageError::corrupted(format!(
            "batch of {} bytes is larger than the limit of {}",
            h.total_len(),
            expect.max_len
        )));
    }
    if h.magic != MAGIC {
        return Err(StorageError::corrupted(format!(
            "unsupported record batch magic {} (only v2 is supported)",
            h.magic
        )));
    }
    if crc {
        let crc = compute_crc(batch);
        if crc != h.crc {
            return Err(StorageError::corrupted(format!(
                "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                h.crc
            )));
        }
    }
    if h.last_offset_delta < 0 || h.records_count < 0 || h.records_count > h.last_offset_delta + 1 {
        return Err(StorageError::corrupted(format!(
            "record count {} is inconsistent with last offset delta {}",
            h.records_count, h.last_offset_delta
        )));
    }
    h.compression()?;
    if let Some(base) = expect.base_offset
        && h.base_offset != base as i64
    {
        return Err(StorageError::corrupted(format!(
            "batch base offset {} where {base} was expected",
            h.base_offset
        )));
    }
    if let Some(epoch) = expect.leader_epoch
        && h.partition_leader_epoch != epoch
    {
        return Err(StorageError::corrupted(format!(
            "batch leader epoch {} where {epoch} was expected",
            h.partition_leader_epoch
        )));
    }
    Ok(h)
}

/// Iterates the complete batches at the front of a buffer of concatenated batches, yielding
/// each batch's bytes. It stops (without error) at a trailing partial batch, as Kafka
/// consumers do with a fetch cut at `max_bytes`.
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Batches<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Batches { buf, pos: 0 }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let len = peek_total_len(rest)?;
        if len < HEADER_LEN || len > rest.len() {
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }
}

/// A record header: UTF-8 key and optional value bytes.
pub type HeaderPair<'a> = (String, Option<&'a [u8]>);

/// One record, borrowing from its batch (or from the batch's decompressed records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers_raw: &'a [u8],
    header_count: usize,
}

impl<'a> Record<'a> {
    /// The record's headers as (key, value) pairs; header keys are UTF-8 by Kafka's rules,
    /// bytes that are not are replaced.
    pub fn headers(&self) -> Result<Vec<HeaderPair<'a>>> {
        let mut r = Reader::new(self.headers_raw);
        let mut out = Vec::with_capacity(self.header_count);
        for _ in 0..self.header_count {
            let k = r
                .nullable_bytes()?
                .ok_or_else(|| StorageError::corrupted("null header key"))?;
            let v = r.nullable_bytes()?;
            out.push((String::from_utf8_lossy(k).into_owned(), v));
        }
        Ok(out)
    }

    pub fn header_count(&self) -> usize {
        self.header_count
    }
}

/// Calls `f` for every record of one validated batch, in order, decompressing when needed.
/// Errors if a record does not parse or the records do not match the header's count.
pub fn for_each_record(batch: &[u8], mut f: impl FnMut(Record<'_>) -> Result<()>) -> Result<()> {
    let h = BatchHeader::parse(batch)?;
    let body = batch
        .get(HEADER_LEN..h.total_len())
        .ok_or_else(|| StorageError::corrupted("batch shorter than its length field"))?;
    let codec = h.compression()?;
    let decompressed;
    let records: &[u8] = if codec == Compression::None {
        body
    } else {
        decompressed = compression::decompress(codec, body)?;
        &decompressed
    };
    let mut r = Reader::new(records);
    for _ in 0..h.records_count {
        let len = r.varint()?;
        if len < 0 {
            return Err(StorageError::corrupted("negative record length"));
        }
        let rec = r.bytes(len as usize)?;
        let mut rr = Reader::new(rec);
        let _attributes = rr.i8()?;
        let ts_delta = rr.varlong()?;
        let offset_delta = rr.varint()?;
        let key = rr.nullable_bytes()?;
        let value = rr.nullable_bytes()?;
        let header_count = rr.varint()?;
        if header_count < 0 {
            return Err(StorageError::corrupted("negative header count"));
        }
        let headers_raw = &rec[rr.position()..];
        let timestamp = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(ts_delta)
        };
        f(Record {
            offset: h.base_offset + i64::from(offset_delta),
            timestamp,
            key,
            value,
            headers_raw,
            header_count: header_count as usize,
        })?;
    }
    if r.remaining() != 0 {
        return Err(StorageError::corrupted(format!(
            "{} bytes left over after {} records",
            r.remaining(),
            h.records_count
        )));
    }
    Ok(())
}

/// An owned copy of a record, for callers that keep records past their batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Decodes every record of one batch into owned records.
pub fn records(batch: &[u8]) -> Result<Vec<OwnedRecord>> {
    let mut out = Vec::new();
    for_each_record(batch, |r| {
        out.push(OwnedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers()?
                .into_iter()
                .map(|(k, v)| (k, v.map(<[u8]>::to_vec)))
                .collect(),
        });
        Ok(())
    })?;
    Ok(out)
}

/// Appends a record's key or value: its length and bytes, or length -1 for null.
#[inline(always)]
fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// Appends `n` (at most 8) bytes of room for a length written later: eight zeros, a copy
/// of fixed size laid out inline, less the ones not wanted (`resize` calls `memset`).
#[inline(always)]
fn push_room(out: &mut Vec<u8>, n: usize) {
    let at = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.truncate(at + n.min(8));
}

/// Builds one RecordBatch v2. Records are encoded straight into one buffer; `finish` fills in
/// the header and CRC. Offsets are relative (base 0) until the log assigns real ones.
pub struct BatchBuilder {
    compression: Compression,
    records: Vec<u8>,
    count: i32,
    last_offset_delta: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    /// `push_writing`'s guess at the widths of a record's two lengths: the last record's.
    length_widths: (usize, usize),
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    extra_attributes: i16,
}

/// A header to attach to a record being built.
pub type HeaderRef<'a> = (&'a str, Option<&'a [u8]>);

impl BatchBuilder {
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 16 * 1024)
    }

    pub fn with_capacity(compression: Compression, bytes: usize) -> Self {
        // The header's room comes first, so an uncompressed batch is finished in place.
        let mut records = Vec::with_capacity(bytes.max(HEADER_LEN));
        records.resize(HEADER_LEN, 0);
        BatchBuilder {
            compression,
            records,
            count: 0,
            last_offset_delta: -1,
            base_timestamp: None,
            max_timestamp: -1,
            length_widths: (2, 2),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            extra_attributes: 0,
        }
    }

    /// Marks the batch with a delete horizon (KIP-534): the base timestamp becomes the time
    /// after which a cleaner may drop its tombstones. Call before pushing records.
    pub fn delete_horizon(mut self, horizon_ms: i64) -> Self {
        self.base_timestamp = Some(horizon_ms);
        self.extra_attributes |= DELETE_HORIZON_BIT;
        self
    }

    /// Keeps the producer fields of an original batch (used when compaction rewrites it).
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch would take uncompressed.
    pub fn size_estimate(&self) -> usize {
        self.records.len()
    }

    /// Appends a record with the next offset delta.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) {
        let delta = self.last_offset_delta + 1;
        self.push_with_delta(delta, timestamp, key, value, headers);
    }

    /// Appends a record with an explicit offset delta (must grow); compaction keeps the
    /// original offsets of the records it retains.
    pub fn push_with_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) {
        let base_ts = *self.base_timestamp.get_or_insert(timestamp);
        let ts_delta = timestamp.wrapping_sub(base_ts);
        let opt_len = |b: Option<&[u8]>| match b {
            Some(b) => varint_len(b.len() as i32) + b.len(),
            None => 1,
        };
        let mut body_len = 1
            + varlong_len(ts_delta)
            + varint_len(offset_delta)
            + opt_len(key)
            + opt_len(value)
            + varint_len(headers.len() as i32);
        for (k, v) in headers {
            body_len += varint_len(k.len() as i32) + k.len() + opt_len(*v);
        }
        let out = &mut self.records;
        out.reserve(body_len + 5);
        put_varint(out, body_len as i32);
        out.push(0);
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        put_nullable(out, key);
        put_nullable(out, value);
        put_varint(out, headers.len() as i32);
        for (k, v) in headers {
            put_varint(out, k.len() as i32);
            out.extend_from_slice(k.as_bytes());
            put_nullable(out, *v);
        }
        self.added(offset_delta, timestamp);
    }

    /// Appends a record with the next offset delta, no headers and a value that `write`
    /// appends straight into the batch's buffer (no copy of it made first). A `write`
    /// that fails leaves the batch as it was.
    ///
    /// The two lengths before the value (the record's and the value's) are varints whose
    /// width depends on the value's length: they are laid out as wide as the last
    /// record's, and only a record whose lengths need another width is moved once it is
    /// written.
    pub fn push_writing<E>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        write: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let offset_delta = self.last_offset_delta + 1;
        let base_ts = self.base_timestamp.unwrap_or(timestamp);
        let ts_delta = timestamp.wrapping_sub(base_ts);
        let (length_width, value_length_width) = self.length_widths;
        let out = &mut self.records;
        let start = out.len();
        push_room(out, length_width);
        out.push(0);
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        put_nullable(out, key);
        let middle = start + length_width..out.len();
        push_room(out, value_length_width);
        let value_at = out.len();
        if let Err(e) = write(out) {
            out.truncate(start);
            return Err(e);
        }
        let value_len = out.len() - value_at;
        // No headers.
        out.push(0);
        let value_length = value_len as i32;
        let body_len = (middle.len() + varint_len(value_length) + value_len + 1) as i32;
        let widths = (varint_len(body_len), varint_len(value_length));
        if widths != (length_width, value_length_width) {
            // Laid out again with the widths it needs: the middle set aside, the value
            // (and the headers' count after it) moved to where it now starts.
            let middle_bytes = out[middle.clone()].to_vec();
            let new_value_at = start + widths.0 + middle_bytes.len() + widths.1;
            let end = new_value_at + value_len + 1;
            if end > out.len() {
                out.resize(end, 0);
            }
            out.copy_within(value_at..value_at + value_len + 1, new_value_at);
            out.truncate(end);
            let middle_at = start + widths.0;
            out[middle_at..middle_at + middle_bytes.len()].copy_from_slice(&middle_bytes);
            self.length_widths = widths;
        }
        let (length_width, value_length_width) = self.length_widths;
        put_varint_at(&mut out[start..start + length_width], body_len);
        let value_length_at = start + length_width + middle.len();
        put_varint_at(
            &mut out[value_length_at..value_length_at + value_length_width],
            value_length,
        );
        self.base_timestamp = Some(base_ts);
        self.added(offset_delta, timestamp);
        Ok(())
    }

    /// Counts a record just appended.
    #[inline(always)]
    fn added(&mut self, offset_delta: i32, timestamp: i64) {
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Finishes the batch with base offset `base_offset`; `last_offset_delta` may be raised to
    /// keep an original batch's offset range (compaction).
    pub fn finish_with(mut self, base_offset: u64, min_last_offset_delta: i32) -> Result<Vec<u8>> {
        let mut out = if self.compression == Compression::None {
            std::mem::take(&mut self.records)
        } else {
            let body = compression::compress(self.compression, &self.records[HEADER_LEN..])?;
            let mut out = Vec::with_capacity(HEADER_LEN + body.len());
            out.resize(HEADER_LEN, 0);
            out.extend_from_slice(&body);
            out
        };
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&(base_offset as i64).to_be_bytes());
        header.extend_from_slice(&batch_length.to_be_bytes());
        header.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
        header.push(MAGIC as u8);
        header.extend_from_slice(&[0; 4]); // crc, below
        header
            .extend_from_slice(&((self.compression as i16) | self.extra_attributes).to_be_bytes());
        header.extend_from_slice(
            &self
                .last_offset_delta
                .max(min_last_offset_delta)
                .to_be_bytes(),
        );
        header.extend_from_slice(&self.base_timestamp.unwrap_or(-1).to_be_bytes());
        header.extend_from_slice(&self.max_timestamp.to_be_bytes());
        header.extend_from_slice(&self.producer_id.to_be_bytes());
        header.extend_from_slice(&self.producer_epoch.to_be_bytes());
        header.extend_from_slice(&self.base_sequence.to_be_bytes());
        header.extend_from_slice(&self.count.to_be_bytes());
        out[..HEADER_LEN].copy_from_slice(&header);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }

    /// Finishes the batch with base offset 0 (the log assigns the real one on append).
    pub fn finish(self) -> Result<Vec<u8>> {
        self.finish_with(0, -1)
    }

    /// `finish`, as a batch an append takes without checking its CRC again.
    pub fn seal(self) -> Result<SealedBatch> {
        self.finish().map(SealedBatch)
    }
}

/// A batch `BatchBuilder` finished: whole, with a CRC computed over the bytes it holds.
/// Nothing outside this crate can change them, so an append (`PartitionLog::append_sealed`)
/// takes the CRC as right instead of computing it over the whole batch again; only the
/// base offset and leader epoch, which the CRC does not cover, are set in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBatch(Vec<u8>);

impl SealedBatch {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, for the log to set the base offset and leader epoch in.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(compression: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(compression);
        b.push(1000, Some(b"k1"), Some(b"v1"), &[("h", Some(b"x"))]);
        b.push(1005, None, Some(b"v2"), &[]);
        b.push(999, Some(b"k3"), None, &[("n", None)]);
        b.finish().unwrap()
    }

    fn loose() -> Expect {
        Expect {
            base_offset: None,
            leader_epoch: None,
            max_len: usize::MAX,
        }
    }

    #[test]
    fn built_batch_validates_and_decodes() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let bytes = sample(c);
            let h = validate(&bytes, &loose()).unwrap();
            assert_eq!(h.records_count, 3);
            assert_eq!(h.last_offset_delta, 2);
            assert_eq!(h.max_timestamp, 1005);
            let recs = records(&bytes).unwrap();
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(
                recs[0].headers,
                vec![("h".to_string(), Some(b"x".to_vec()))]
            );
            assert_eq!(recs[1].key, None);
            assert_eq!(recs[2].value, None);
            assert_eq!(recs[2].timestamp, 999);
            assert_eq!(recs[2].offset, 2);
        }
    }

    /// A record whose value is written in place is the record `push` builds, whatever
    /// widths its lengths need (each size below crosses one of the varints' bounds, so the
    /// guessed widths are wrong for many of them); a write that fails leaves nothing.
    #[test]
    fn values_written_in_place_make_the_same_batch_as_pushed_ones() {
        let sizes = [
            0, 1, 50, 63, 64, 65, 120, 8180, 8191, 8192, 9000, 1_048_570, 1_048_576, 70,
        ];
        for c in [Compression::None, Compression::Zstd] {
            let (mut pushed, mut written) = (BatchBuilder::new(c), BatchBuilder::new(c));
            for (i, &n) in sizes.iter().enumerate() {
                let value: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8).collect();
                let key = (i % 3 == 0).then(|| vec![b'k'; i * 40]);
                let time = 1_000 + (i as i64 % 4) * 70_000 - 5;
                pushed.push(time, key.as_deref(), Some(&value), &[]);
                let failed: std::result::Result<(), &str> =
                    written.push_writing(time, key.as_deref(), |out| {
                        out.extend_from_slice(&value[..n / 2]);
                        Err("no")
                    });
                assert_eq!(failed, Err("no"));
                let ok: std::result::Result<(), ()> =
                    written.push_writing(time, key.as_deref(), |out| {
                        out.extend_from_slice(&value);
                        Ok(())
                    });
                assert_eq!(ok, Ok(()));
            }
            let (pushed, written) = (pushed.finish().unwrap(), written.finish().unwrap());
            assert!(pushed == written, "{c:?}: the batches differ");
            assert_eq!(records(&written).unwrap().len(), sizes.len());
        }
        // Nothing but failed writes: an empty batch, as if none were tried.
        let mut b = BatchBuilder::new(Compression::None);
        let failed: std::result::Result<(), ()> = b.push_writing(5, None, |out| {
            out.push(1);
            Err(())
        });
        assert!(failed.is_err() && b.is_empty());
        assert!(b.finish().unwrap() == BatchBuilder::new(Compression::None).finish().unwrap());
    }

    #[test]
    fn rewriting_base_offset_keeps_crc_valid() {
        let mut bytes = sample(Compression::None);
        set_base_offset(&mut bytes, 42);
        set_leader_epoch(&mut bytes, 7);
        let h = validate(&bytes, &loose()).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(records(&bytes).unwrap()[1].offset, 43);
    }

    #[test]
    fn damage_outside_the_crc_is_caught_by_expectations() {
        let bytes = sample(Compression::None);
        let strict = Expect {
            base_offset: Some(0),
            leader_epoch: Some(0),
            max_len: 1 << 20,
        };
        validate(&bytes, &strict).unwrap();
        let mut b = bytes.clone();
        b[3] ^= 1;
        assert!(validate(&b, &strict).is_err());
        let mut b = bytes.clone();
        b[14] ^= 1;
        assert!(validate(&b, &strict).is_err());
        let mut b = bytes.clone();
        b[16] = 1;
        assert!(validate(&b, &strict).is_err());
    }

    #[test]
    fn walker_stops_at_partial_batch() {
        let mut buf = sample(Compression::None);
        let one = buf.len();
        buf.extend_from_slice(&sample(Compression::None));
        buf.truncate(one + 30);
        let mut w = Batches::new(&buf);
        assert_eq!(w.next().map(<[u8]>::len), Some(one));
        assert!(w.next().is_none());
        assert_eq!(w.position(), one);
    }
}
