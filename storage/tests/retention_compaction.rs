//! Retention and compaction keep exactly what Kafka's rules keep: whole segments by age and
//! size; the latest record per key outside the active segment, offsets unchanged, tombstones
//! until `delete.retention.ms` after the cleaning that first saw them.

mod common;

use std::collections::HashMap;

use common::{now_ms, read_all};
use sluice_storage::{BatchBuilder, Compression, LogStore, StorageError, TopicConfig};

fn one(key: Option<&str>, value: Option<&str>, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(ts, key.map(str::as_bytes), value.map(str::as_bytes), &[]);
    b.finish().unwrap()
}

#[test]
fn time_retention_deletes_whole_expired_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let c = TopicConfig::from_pairs([("segment.bytes", "300"), ("retention.ms", "60000")]).unwrap();
    store.create_topic("t", 1, c).unwrap();
    let now = now_ms();
    for i in 0..40 {
        // The first 20 records are two minutes old, the rest fresh.
        let ts = if i < 20 { now - 120_000 } else { now };
        store
            .append("t", 0, &mut one(None, Some(&format!("v{i:02}")), ts))
            .unwrap();
    }
    let p = store.partition("t", 0).unwrap();
    let before = p.segment_count();
    let deleted = p.apply_retention_at(now).unwrap();
    assert!(deleted > 0);
    assert_eq!(p.segment_count(), before - deleted);
    // Only segments made entirely of old records went; the first kept one may mix.
    let start = p.log_start_offset();
    assert!(start <= 20 && start > 0, "log start {start}");
    let recs = read_all(&p, start);
    assert!(recs.iter().all(|r| r.offset >= start as i64));
    assert_eq!(recs.len() as u64, 40 - start);
    assert!(matches!(
        p.read(0, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Running it again changes nothing.
    assert_eq!(p.apply_retention_at(now).unwrap(), 0);
    // When everything expired, the active segment is rolled and deleted too; offsets go on.
    let later = now + 10 * 60_000;
    p.apply_retention_at(later).unwrap();
    assert_eq!(p.log_start_offset(), 40);
    assert_eq!(p.high_watermark(), 40);
    assert_eq!(
        store
            .append("t", 0, &mut one(None, Some("again"), later))
            .unwrap()
            .base_offset,
        40
    );
}

#[test]
fn size_retention_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let c =
        TopicConfig::from_pairs([("segment.bytes", "300"), ("retention.bytes", "1000")]).unwrap();
    store.create_topic("t", 1, c).unwrap();
    let now = now_ms();
    for i in 0..60 {
        store
            .append("t", 0, &mut one(None, Some(&format!("value-{i:03}")), now))
            .unwrap();
    }
    let p = store.partition("t", 0).unwrap();
    let seg_size = {
        let info = store.describe_topic("t").unwrap();
        info.partitions[0].size_bytes / info.partitions[0].segments as u64
    };
    p.apply_retention_at(now).unwrap();
    let size = p.size_bytes();
    // Kafka's rule: delete the oldest while what stays is still >= retention.bytes.
    assert!(size >= 1000, "kept {size}");
    assert!(size < 1000 + seg_size + 300, "kept {size}");
}

#[test]
fn compaction_keeps_latest_per_key_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let now = now_ms();
    let mut written: Vec<(Option<String>, Option<String>)> = Vec::new();
    let store = LogStore::open(&data).unwrap();
    {
        let c = TopicConfig::from_pairs([
            ("cleanup.policy", "compact"),
            ("segment.bytes", "400"),
            ("delete.retention.ms", "1000"),
        ])
        .unwrap();
        store.create_topic("c", 1, c).unwrap();
        for i in 0..80 {
            let key = format!("k{}", i % 5);
            // k1 is deleted at record 60 and never written again.
            let value = if i == 61 {
                None
            } else if i > 61 && i % 5 == 1 {
                continue;
            } else {
                Some(format!("v{i}"))
            };
            let mut b = BatchBuilder::new(if i % 2 == 0 {
                Compression::Gzip
            } else {
                Compression::None
            });
            b.push(
                now,
                Some(key.as_bytes()),
                value.as_deref().map(str::as_bytes),
                &[],
            );
            let mut bytes = b.finish().unwrap();
            let off = store.append("c", 0, &mut bytes).unwrap().base_offset;
            assert_eq!(off as usize, written.len());
            written.push((Some(key), value));
        }
    }
    let p = store.partition("c", 0).unwrap();
    assert_eq!(read_all(&p, 0).len(), written.len());
    assert!(p.segment_count() > 3);
    let active_base = active_start(&store);
    // Model of Kafka's rule over the records below the active segment.
    let mut latest: HashMap<String, usize> = HashMap::new();
    for (i, (k, _)) in written.iter().enumerate().take(active_base as usize) {
        latest.insert(k.clone().unwrap(), i);
    }
    let expect = |tombstones_expired: bool| -> Vec<(i64, Option<String>)> {
        written
            .iter()
            .enumerate()
            .filter(|(i, (k, v))| {
                *i as u64 >= active_base
                    || (latest[k.as_ref().unwrap()] == *i && !(v.is_none() && tombstones_expired))
            })
            .map(|(i, (_, v))| (i as i64, v.clone()))
            .collect()
    };
    let got = |p: &sluice_storage::PartitionLog| -> Vec<(i64, Option<String>)> {
        read_all(p, 0)
            .into_iter()
            .map(|r| (r.offset, r.value.map(|v| String::from_utf8(v).unwrap())))
            .collect()
    };
    let stats = p.compact_at(now).unwrap();
    assert!(stats.records_removed > 0);
    assert_eq!(got(&p), expect(false), "first cleaning keeps the tombstone");
    assert_eq!(p.high_watermark(), 80 - 3);
    // Past the delete horizon the tombstone goes as well.
    p.compact_at(now + 1001).unwrap();
    assert_eq!(got(&p), expect(true));
    drop(store);
    // The compacted log reopens cleanly and uncleanly with the same content.
    let store = LogStore::open(&data).unwrap();
    assert_eq!(got(&store.partition("c", 0).unwrap()), expect(true));
    store.close().unwrap();
    drop(store);
    std::fs::remove_file(data.join(".clean-shutdown")).unwrap();
    let store = LogStore::open(&data).unwrap();
    assert_eq!(got(&store.partition("c", 0).unwrap()), expect(true));
}

/// Base offset of the active (last) segment, from the file names.
fn active_start(store: &LogStore) -> u64 {
    let dir = store.data_dir().join("topics/c/0");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")
                .and_then(|s| s.parse::<u64>().ok())
        })
        .max()
        .unwrap()
}
