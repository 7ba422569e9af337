//! Recovery at open: the last batch of a segment is cut at every byte position and hit with
//! bit flips everywhere (header fields included); after reopening, everything before the
//! damage is served and nothing damaged is. Also: damaged indexes are rebuilt, damage in the
//! middle of a segment is found after an unclean shutdown, and reads never serve a batch
//! whose bytes went bad after recovery.

mod common;

use std::path::{Path, PathBuf};

use common::{batch_of, copy_dir, now_ms, read_all, values};
use sluice_storage::{LogStore, StorageError, TopicConfig};

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    segment: PathBuf,
    last_batch_start: u64,
    len: u64,
    before: Vec<String>,
}

/// A partition with 20 batches of 10 records, closed cleanly.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ts = now_ms();
    let mut before = Vec::new();
    let last_batch_start;
    {
        let store = LogStore::open(&data).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
        for i in 0..19 {
            store
                .append("t", 0, &mut batch_of(&format!("b{i}"), 10, Some(3), ts))
                .unwrap();
            before.extend((0..10).map(|j| format!("b{i}-{j}")));
        }
        last_batch_start = store.partition("t", 0).unwrap().size_bytes();
        store
            .append("t", 0, &mut batch_of("last", 10, Some(3), ts))
            .unwrap();
        store.close().unwrap();
    }
    let segment = data.join("topics/t/0/00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    Fixture {
        _dir: dir,
        data,
        segment,
        last_batch_start,
        len,
        before,
    }
}

/// Copies the fixture, lets `damage` change the segment, reopens and returns what is served.
fn reopen_after(f: &Fixture, clean: bool, damage: impl FnOnce(&Path)) -> (u64, Vec<String>) {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    copy_dir(&f.data, &data);
    if !clean {
        std::fs::remove_file(data.join(".clean-shutdown")).unwrap();
    }
    damage(&data.join(f.segment.strip_prefix(&f.data).unwrap()));
    let store = LogStore::open(&data).unwrap();
    let p = store.partition("t", 0).unwrap();
    (p.high_watermark(), values(&read_all(&p, 0)))
}

#[test]
fn truncation_at_every_byte_of_the_last_batch() {
    let f = fixture();
    for clean in [true, false] {
        for cut in f.last_batch_start..f.len {
            let (hw, got) = reopen_after(&f, clean, |seg| {
                let file = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
                file.set_len(cut).unwrap();
            });
            assert_eq!(hw, 190, "cut at {cut} (clean={clean})");
            assert_eq!(got, f.before, "cut at {cut}");
        }
    }
}

#[test]
fn bit_flips_anywhere_in_the_last_batch_are_never_served() {
    let f = fixture();
    let original = std::fs::read(&f.segment).unwrap();
    let mut positions: Vec<u64> = (f.last_batch_start..f.len).collect();
    positions.truncate(4000);
    for (n, pos) in positions.into_iter().enumerate() {
        let bit = (n * 5 + 3) % 8;
        let clean = n % 2 == 0;
        let (hw, got) = reopen_after(&f, clean, |seg| {
            let mut bytes = original.clone();
            bytes[pos as usize] ^= 1 << bit;
            std::fs::write(seg, bytes).unwrap();
        });
        assert_eq!(hw, 190, "flip of bit {bit} at byte {pos}");
        assert_eq!(got, f.before, "flip at {pos}");
    }
}

#[test]
fn damaged_indexes_are_rebuilt() {
    let f = fixture();
    let (hw, got) = reopen_after(&f, true, |seg| {
        std::fs::write(seg.with_extension("index"), [0xffu8; 21]).unwrap();
        std::fs::write(seg.with_extension("timeindex"), [7u8; 30]).unwrap();
    });
    assert_eq!(hw, 200);
    assert_eq!(got.len(), 200);
    let (hw, _) = reopen_after(&f, true, |seg| {
        std::fs::remove_file(seg.with_extension("index")).unwrap();
    });
    assert_eq!(hw, 200);
}

#[test]
fn unclean_open_finds_damage_in_the_middle_and_cuts_there() {
    let f = fixture();
    // Flip a byte inside the 6th batch's records.
    let batch_len = f.last_batch_start / 19;
    let pos = (batch_len * 5 + 70) as usize;
    let (hw, got) = reopen_after(&f, false, |seg| {
        let mut bytes = std::fs::read(seg).unwrap();
        bytes[pos] ^= 0x10;
        std::fs::write(seg, bytes).unwrap();
    });
    assert_eq!(hw, 50);
    assert_eq!(got, f.before[..50]);
}

#[test]
fn reads_refuse_batches_damaged_after_open() {
    let f = fixture();
    let store = LogStore::open(&f.data).unwrap();
    let p = store.partition("t", 0).unwrap();
    let mut bytes = std::fs::read(&f.segment).unwrap();
    let starts: Vec<usize> = {
        let mut w = sluice_storage::batch::Batches::new(&bytes);
        let mut v = vec![0];
        while w.next().is_some() {
            v.push(w.position());
        }
        v
    };
    bytes[starts[3] + 80] ^= 1;
    std::fs::write(&f.segment, bytes).unwrap();
    // Batches before the damage are served; the damaged one is refused.
    let r = p.read(0, 1 << 20).unwrap();
    assert_eq!(r.data.len(), starts[3]);
    assert!(matches!(
        p.read(30, 1 << 20),
        Err(StorageError::Corrupted(_))
    ));
}
