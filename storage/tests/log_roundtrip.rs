//! Append/read round trips through real files: random batches, partitions and read offsets,
//! segment rolls, reopen, timestamps, waiting at the tail, and the data-directory lock.

mod common;

use std::time::{Duration, Instant};

use common::{batch_of, codec, read_all, values};
use proptest::prelude::*;
use sluice_storage::{BatchBuilder, LogStore, ReadBytes, StorageError, TopicConfig};

fn small_segments() -> TopicConfig {
    TopicConfig::from_pairs([
        ("segment.bytes", "4000"),
        ("flush.policy", "on-roll"),
        ("retention.ms", "-1"),
    ])
    .unwrap()
}

#[test]
fn append_assigns_offsets_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let a = store
        .append("t", 0, &mut batch_of("a", 3, None, 1000))
        .unwrap();
    let b = store
        .append("t", 0, &mut batch_of("b", 2, None, 2000))
        .unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 2));
    assert_eq!((b.base_offset, b.last_offset), (3, 4));
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(
        values(&read_all(&p, 0)),
        ["a-0", "a-1", "a-2", "b-0", "b-1"]
    );
    // A read from the middle of a batch returns the whole batch containing it.
    let r = p.read(1, 1).unwrap();
    assert_eq!(
        sluice_storage::batch::records(&r.data).unwrap()[0].offset,
        0
    );
    assert_eq!(values(&read_all(&p, 4)), ["b-1"]);
    assert!(matches!(
        p.read(6, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn batches_in_several_buffers_append_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    // Kept whatever the records' (1970) timestamps: no retention.
    let config = TopicConfig::from_pairs([("retention.ms", "-1")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let (mut a, mut b) = (batch_of("a", 3, None, 1000), batch_of("b", 2, None, 2000));
    // A buffer holding two batches, beside one holding one.
    let mut cd = batch_of("c", 1, None, 3000);
    cd.extend_from_slice(&batch_of("d", 2, None, 4000));
    let info = store
        .append_parts("t", 0, &mut [&mut a, &mut b, &mut cd])
        .unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 7, 8)
    );
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.high_watermark(), 8);
    let all = read_all(&p, 0);
    assert_eq!(
        values(&all),
        ["a-0", "a-1", "a-2", "b-0", "b-1", "c-0", "d-0", "d-1"]
    );
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    // A bad buffer anywhere refuses the whole append: nothing of it is stored.
    let (mut good, mut bad, mut empty) = (
        batch_of("e", 2, None, 0),
        batch_of("f", 2, None, 0),
        Vec::new(),
    );
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(
        store
            .append_parts("t", 0, &mut [&mut good, &mut bad])
            .is_err()
    );
    assert!(
        store
            .append_parts("t", 0, &mut [&mut good, &mut empty])
            .is_err()
    );
    assert!(store.append_parts("t", 0, &mut []).is_err());
    assert_eq!(p.high_watermark(), 8);
    // Sealed batches (the engine's, through its interface) append as one too, and
    // durably across a reopen.
    let sealed = |prefix: &str, n: usize| {
        let mut b = sluice_storage::BatchBuilder::new(sluice_storage::Compression::None);
        for i in 0..n {
            b.push(0, None, Some(format!("{prefix}-{i}").as_bytes()), &[]);
        }
        b.seal().unwrap()
    };
    let log: &dyn sluice_storage::EventLog = &store;
    let info = log
        .append_sealed("t", 0, &mut [sealed("g", 1), sealed("e", 2)])
        .unwrap();
    assert_eq!((info.base_offset, info.last_offset), (8, 10));
    assert!(log.append_sealed("t", 0, &mut []).is_err());
    // A sealed batch's bytes are any batch's: appended as such, they read the same.
    let mut h = sealed("h", 2).bytes().to_vec();
    assert_eq!(store.append("t", 0, &mut h).unwrap().base_offset, 11);
    drop(p);
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(
        values(&read_all(&p, 8)),
        ["g-0", "e-0", "e-1", "h-0", "h-1"]
    );
}

#[test]
fn a_read_starts_at_the_batch_holding_the_offset_and_keeps_to_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    // Small batches: the sparse offset index points many batches before most offsets.
    let mut sizes = Vec::new();
    for i in 0..200 {
        let mut b = batch_of(&format!("b{i}"), 3, None, 1000 + i);
        sizes.push(b.len());
        store.append("t", 0, &mut b).unwrap();
    }
    let p = store.partition("t", 0).unwrap();
    for offset in [0, 1, 2, 3, 100, 301, 599] {
        for max_bytes in [1, sizes[0], 3 * sizes[0] + 1, 1 << 20] {
            let r = p.read(offset, max_bytes).unwrap();
            let batches: Vec<&[u8]> = sluice_storage::batch::Batches::new(&r.data).collect();
            let first = sluice_storage::batch::BatchHeader::parse(batches[0]).unwrap();
            assert_eq!(first.base_offset as u64, offset / 3 * 3, "offset {offset}");
            assert!(
                batches.len() == 1 || r.data.len() <= max_bytes,
                "{} bytes for at most {max_bytes}",
                r.data.len()
            );
            let whole: usize = sizes[(offset / 3) as usize..].iter().sum();
            let expect = if max_bytes >= whole {
                whole
            } else {
                let mut n = 0;
                for s in &sizes[(offset / 3) as usize..] {
                    if n > 0 && n + s > max_bytes {
                        break;
                    }
                    n += s;
                }
                n
            };
            assert_eq!(r.data.len(), expect, "offset {offset}, at most {max_bytes}");
        }
    }
}

/// Large reads are windows on memory maps of the segment, small ones (the tail) copies;
/// both serve the same batches, across segment rolls, and a window stays readable after its
/// segment is gone (the topic deleted under a reader holding it).
#[test]
fn large_reads_are_windows_on_maps_and_small_ones_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let config =
        TopicConfig::from_pairs([("segment.bytes", "400000"), ("retention.ms", "-1")]).unwrap();
    store.create_topic("t", 1, config).unwrap();
    let ts = common::now_ms();
    for i in 0..12000 {
        store
            .append("t", 0, &mut batch_of(&format!("b{i}"), 3, None, ts))
            .unwrap();
    }
    let p = store.partition("t", 0).unwrap();
    assert!(p.segment_count() >= 2, "{} segments", p.segment_count());
    let expected = values(&read_all(&p, 0));
    assert_eq!(expected.len(), 36000);
    let (mut mapped, mut owned) = (0, 0);
    let mut held = None;
    for offset in (0..36000u64).step_by(397) {
        let r = p.read(offset, 1 << 20).unwrap();
        match &r.data {
            ReadBytes::Mapped(..) => mapped += 1,
            ReadBytes::Owned(_) => owned += 1,
        }
        let mut got = Vec::new();
        for b in sluice_storage::batch::Batches::new(&r.data) {
            for rec in sluice_storage::batch::records(b).unwrap() {
                if rec.offset as u64 >= offset {
                    got.push(rec);
                }
            }
        }
        let got = values(&got);
        // A read ends at its segment's end: what it gives is the log from the offset on.
        assert!(!got.is_empty());
        assert_eq!(
            got[..],
            expected[offset as usize..offset as usize + got.len()]
        );
        if held.is_none() && matches!(r.data, ReadBytes::Mapped(..)) {
            held = Some(r);
        }
    }
    assert!(mapped > 0 && owned > 0, "{mapped} mapped, {owned} owned");
    let held = held.unwrap();
    let before = held.data.to_vec();
    drop(p);
    store.delete_topic("t").unwrap();
    assert!(!dir.path().join("topics/t").exists());
    assert_eq!(&held.data[..], &before[..]);
    let first = sluice_storage::batch::Batches::new(&held.data)
        .next()
        .unwrap();
    assert!(sluice_storage::batch::records(first).is_ok());
}

/// A partition makes no directory or file until its first append; what is written then
/// survives a clean and an unclean reopen, and the partitions never written stay empty and
/// readable (at offset 0) throughout.
#[test]
fn partitions_make_their_files_at_their_first_append() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let partition_dir = |p: u32| data.join(format!("topics/t/{p}"));
    // (Records of now: older ones would go to retention at the reopen.)
    {
        let store = LogStore::open(&data).unwrap();
        store.create_topic("t", 3, TopicConfig::default()).unwrap();
        assert!((0..3).all(|p| !partition_dir(p).exists()));
        let empty = store.partition("t", 0).unwrap();
        assert_eq!((empty.log_start_offset(), empty.high_watermark()), (0, 0));
        assert!(empty.read(0, 1 << 20).unwrap().data.is_empty());
        empty.flush().unwrap();
        empty.checkpoint().unwrap();
        let a = store
            .append("t", 1, &mut batch_of("a", 3, None, common::now_ms()))
            .unwrap();
        assert_eq!((a.base_offset, a.last_offset), (0, 2));
        assert!(partition_dir(1).join("00000000000000000000.log").exists());
        assert!(!partition_dir(0).exists() && !partition_dir(2).exists());
        store.close().unwrap();
        assert!(
            !partition_dir(0).exists(),
            "a clean close writes nothing for it"
        );
    }
    for clean in [true, false] {
        if !clean {
            std::fs::remove_file(data.join(".clean-shutdown")).unwrap();
        }
        let store = LogStore::open(&data).unwrap();
        let p = store.partition("t", 1).unwrap();
        assert_eq!(values(&read_all(&p, 0)), ["a-0", "a-1", "a-2"]);
        let empty = store.partition("t", 2).unwrap();
        assert_eq!(empty.high_watermark(), 0);
        assert!(empty.read(0, 1 << 20).unwrap().data.is_empty());
        assert!(empty.read(1, 1 << 20).is_err(), "past the end");
        if clean {
            store.close().unwrap();
        } else {
            // The second partition is written after the unclean reopen, and read back.
            let b = store
                .append("t", 2, &mut batch_of("b", 2, None, common::now_ms()))
                .unwrap();
            assert_eq!(b.base_offset, 0);
            assert_eq!(values(&read_all(&empty, 0)), ["b-0", "b-1"]);
        }
    }
}

#[test]
fn reads_survive_rolls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let store = LogStore::open(dir.path()).unwrap();
        // A few batches per segment: many rolls (by size; these records' times are close).
        let config = TopicConfig::from_pairs([
            ("segment.bytes", "1000"),
            ("flush.policy", "on-roll"),
            ("retention.ms", "-1"),
        ])
        .unwrap();
        store.create_topic("t", 2, config).unwrap();
        for i in 0..50 {
            store
                .append("t", 1, &mut batch_of(&format!("x{i}"), 10, None, i))
                .unwrap();
            expected.extend((0..10).map(|j| format!("x{i}-{j}")));
        }
        assert!(store.partition("t", 1).unwrap().segment_count() > 5);
        store.close().unwrap();
    }
    let store = LogStore::open(dir.path()).unwrap();
    let p = store.partition("t", 1).unwrap();
    assert_eq!(p.high_watermark(), 500);
    assert_eq!(values(&read_all(&p, 0)), expected);
    assert_eq!(values(&read_all(&p, 333))[0], "x33-3");
    assert_eq!(store.partition("t", 0).unwrap().high_watermark(), 0);
    // Appends continue after the reopen.
    store
        .append("t", 1, &mut batch_of("after", 1, None, 0))
        .unwrap();
    assert_eq!(p.high_watermark(), 501);
}

#[test]
fn offset_for_timestamp_finds_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.create_topic("t", 1, small_segments()).unwrap();
    for i in 0..100i64 {
        store
            .append("t", 0, &mut batch_of("v", 5, None, i * 100))
            .unwrap();
    }
    let p = store.partition("t", 0).unwrap();
    // batch i holds timestamps i*100 .. i*100+4 at offsets 5i .. 5i+4
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(4203).unwrap(), Some(213));
    assert_eq!(p.offset_for_timestamp(4250).unwrap(), Some(215));
    assert_eq!(p.offset_for_timestamp(1_000_000).unwrap(), None);
}

#[test]
fn tail_readers_wait_without_polling() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LogStore::open(dir.path()).unwrap());
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = store.partition("t", 0).unwrap();
    assert!(!p.wait_for_blocking(0, Instant::now() + Duration::from_millis(20)));
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .append("t", 0, &mut batch_of("w", 1, None, 0))
                .unwrap();
        })
    };
    assert!(p.wait_for_blocking(0, Instant::now() + Duration::from_secs(30)));
    writer.join().unwrap();
    assert_eq!(p.high_watermark(), 1);
}

#[test]
fn second_process_gets_a_clear_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = LogStore::open(dir.path()).unwrap();
    match LogStore::open(dir.path()) {
        Err(StorageError::Locked { holder, .. }) => {
            assert_eq!(holder, std::process::id().to_string())
        }
        other => panic!("expected a lock error, got {:?}", other.err()),
    }
}

#[test]
fn bad_input_is_rejected_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let mut b = batch_of("a", 3, None, 0);
    let last = b.len() - 1;
    b[last] ^= 0xff; // breaks the CRC
    assert!(matches!(
        store.append("t", 0, &mut b),
        Err(StorageError::InvalidRecord(_))
    ));
    let mut partial = batch_of("a", 3, None, 0);
    partial.truncate(partial.len() - 1);
    assert!(store.append("t", 0, &mut partial).is_err());
    assert!(store.append("t", 0, &mut []).is_err());
    assert!(matches!(
        store.append("nope", 0, &mut batch_of("a", 1, None, 0)),
        Err(StorageError::UnknownTopic(_))
    ));
    assert!(matches!(
        store.append("t", 9, &mut batch_of("a", 1, None, 0)),
        Err(StorageError::UnknownPartition { .. })
    ));
    store
        .create_topic(
            "c",
            1,
            TopicConfig::from_pairs([("cleanup.policy", "compact")]).unwrap(),
        )
        .unwrap();
    assert!(
        store
            .append("c", 0, &mut batch_of("a", 1, None, 0))
            .is_err(),
        "compacted topics need keys"
    );
    assert_eq!(store.partition("t", 0).unwrap().high_watermark(), 0);
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path()).unwrap();
        store
            .create_topic(
                "a",
                3,
                TopicConfig::from_pairs([("retention.ms", "1000")]).unwrap(),
            )
            .unwrap();
        store.create_topic("b", 1, TopicConfig::default()).unwrap();
        assert!(matches!(
            store.create_topic("a", 1, TopicConfig::default()),
            Err(StorageError::TopicExists(_))
        ));
        assert!(
            store
                .create_topic("bad name", 1, TopicConfig::default())
                .is_err()
        );
        assert!(
            store
                .create_topic("zero", 0, TopicConfig::default())
                .is_err()
        );
        store.delete_topic("b").unwrap();
        assert!(store.delete_topic("b").is_err());
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.topic_names(), ["a"]);
    let info = store.describe_topic("a").unwrap();
    assert_eq!(info.partitions.len(), 3);
    assert_eq!(info.config.retention_ms, 1000);
}

type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn records() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec(
        (
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
            0i64..2_000_000_000_000,
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever goes in comes out: batches of random records and codecs, appended to random
    /// partitions of a topic with tiny segments, read back from random offsets, before and
    /// after a reopen.
    #[test]
    fn random_appends_read_back(
        partitions in 1u32..4,
        batches in prop::collection::vec((0u32..4, codec(), records()), 1..25),
        probes in prop::collection::vec(any::<prop::sample::Index>(), 1..10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Vec<Vec<Rec>> = vec![Vec::new(); partitions as usize];
        {
            let store = LogStore::open(dir.path()).unwrap();
            store.create_topic("p", partitions, small_segments()).unwrap();
            for (p, codec, recs) in &batches {
                let p = p % partitions;
                let mut b = BatchBuilder::new(*codec);
                for (k, v, ts) in recs {
                    b.push(*ts, k.as_deref(), v.as_deref(), &[("h", Some(b"1"))]);
                }
                let mut bytes = b.finish().unwrap();
                let info = store.append("p", p, &mut bytes).unwrap();
                prop_assert_eq!(info.base_offset, model[p as usize].len() as u64);
                model[p as usize].extend(recs.iter().cloned());
            }
        }
        let store = LogStore::open(dir.path()).unwrap();
        for (p, expected) in model.iter().enumerate() {
            let part = store.partition("p", p as u32).unwrap();
            prop_assert_eq!(part.high_watermark(), expected.len() as u64);
            let got = read_all(&part, 0);
            prop_assert_eq!(got.len(), expected.len());
            for (i, (r, (k, v, ts))) in got.iter().zip(expected).enumerate() {
                prop_assert_eq!(r.offset, i as i64);
                prop_assert_eq!(&r.key, k);
                prop_assert_eq!(&r.value, v);
                prop_assert_eq!(r.timestamp, *ts);
                prop_assert_eq!(r.headers.len(), 1);
            }
            for probe in &probes {
                if expected.is_empty() { break; }
                let from = probe.index(expected.len()) as u64;
                let tail = read_all(&part, from);
                prop_assert_eq!(tail.len() as u64, expected.len() as u64 - from);
                prop_assert_eq!(tail[0].offset as u64, from);
            }
        }
    }
}

#[test]
fn group_offsets_are_durable_and_latest_wins() {
    use sluice_storage::CommittedOffset;
    let dir = tempfile::tempdir().unwrap();
    let commit = |topic: &str, partition, offset| CommittedOffset {
        topic: topic.into(),
        partition,
        offset,
        metadata: String::new(),
        commit_timestamp: 0,
    };
    {
        let store = LogStore::open(dir.path()).unwrap();
        store.create_topic("t", 2, TopicConfig::default()).unwrap();
        assert!(store.group_names().is_empty());
        store
            .commit_offsets("g1", &[commit("t", 0, 5), commit("t", 1, 7)])
            .unwrap();
        store.commit_offsets("g1", &[commit("t", 0, 9)]).unwrap();
        store.commit_offsets("g2", &[commit("t", 1, 1)]).unwrap();
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.group_names(), ["g1", "g2"]);
    let g1: Vec<(u32, u64)> = store
        .committed_offsets("g1")
        .iter()
        .map(|c| (c.partition, c.offset))
        .collect();
    assert_eq!(g1, [(0, 9), (1, 7)]);
    // Commits live in Kafka's internal topic, compacted.
    let info = store.describe_topic("__consumer_offsets").unwrap();
    assert!(info.internal && info.config.compact);
    assert_eq!(info.partitions.len(), 50);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store
        .create_topic(
            "t",
            1,
            TopicConfig::from_pairs([("segment.ms", "60000"), ("retention.ms", "-1")]).unwrap(),
        )
        .unwrap();
    let now = common::now_ms();
    // The active segment's first batch is two minutes old: the next append rolls.
    store
        .append("t", 0, &mut batch_of("old", 1, None, now - 120_000))
        .unwrap();
    store
        .append("t", 0, &mut batch_of("new", 1, None, now))
        .unwrap();
    store
        .append("t", 0, &mut batch_of("new", 1, None, now))
        .unwrap();
    let p = store.partition("t", 0).unwrap();
    assert_eq!(p.segment_count(), 2);
    assert_eq!(values(&read_all(&p, 0)), ["old-0", "new-0", "new-0"]);
}

/// A long-lived process flushes `interval` topics and applies retention on its own.
#[test]
fn background_maintenance_flushes_and_expires() {
    use sluice_storage::{MaintenanceOptions, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open_with(
        dir.path(),
        StoreOptions {
            maintenance: Some(MaintenanceOptions {
                tick: Duration::from_millis(5),
                retention_check: Duration::from_millis(20),
            }),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let c = TopicConfig::from_pairs([
        ("flush.policy", "interval"),
        ("flush.ms", "10"),
        ("segment.bytes", "200"),
        ("retention.ms", "60000"),
    ])
    .unwrap();
    store.create_topic("t", 1, c).unwrap();
    let p = store.partition("t", 0).unwrap();
    let now = common::now_ms();
    for i in 0..10 {
        let ts = if i < 5 { now - 3_600_000 } else { now };
        store
            .append("t", 0, &mut batch_of("v", 1, None, ts))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.durable_offset() < 10 || p.log_start_offset() == 0 {
        assert!(
            Instant::now() < deadline,
            "maintenance never ran: durable {} start {}",
            p.durable_offset(),
            p.log_start_offset()
        );
        std::thread::yield_now();
    }
    assert!(p.log_start_offset() <= 5);
}
