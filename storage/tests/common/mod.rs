//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use proptest::prelude::*;
use sluice_storage::batch::{self, Batches};
use sluice_storage::{BatchBuilder, Compression, OwnedRecord, PartitionLog};

/// A batch of `n` records whose values are `"{prefix}-{i}"`, keys `k{i % keys}` (or none).
pub fn batch_of(prefix: &str, n: usize, keys: Option<usize>, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..n {
        let key = keys.map(|k| format!("k{}", i % k.max(1)));
        let value = format!("{prefix}-{i}");
        b.push(
            ts + i as i64,
            key.as_deref().map(str::as_bytes),
            Some(value.as_bytes()),
            &[],
        );
    }
    b.finish().unwrap()
}

/// Every record readable from `from` to the high watermark, in order, skipping records
/// below the requested offset as a consumer does.
pub fn read_all(p: &PartitionLog, from: u64) -> Vec<OwnedRecord> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = p.read(offset, 64 * 1024).unwrap();
        if r.data.is_empty() {
            return out;
        }
        for b in Batches::new(&r.data) {
            let h = batch::BatchHeader::parse(b).unwrap();
            for rec in batch::records(b).unwrap() {
                if rec.offset as u64 >= offset {
                    out.push(rec);
                }
            }
            offset = h.next_offset();
        }
    }
}

pub fn values(recs: &[OwnedRecord]) -> Vec<String> {
    recs.iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned())
        .collect()
}

/// Copies a directory tree (a data directory snapshot for damage tests).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != ".lock" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Any of Kafka's five compression codecs.
pub fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}
