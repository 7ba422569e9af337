//! Durability on a simulated disk that loses every write not yet fsynced at a crash (and may
//! tear the last one). Under `flush.policy=always` every acknowledged record survives
//! hundreds of random crashes, with writers racing the crash; under `interval` and `on-roll`
//! what survives is at least what the log reported durable (fsynced) before the crash.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{now_ms, read_all};
use sluice_storage::{BatchBuilder, Compression, LogStore, SimFs, StoreOptions, TopicConfig};

fn open(fs: &SimFs) -> LogStore {
    LogStore::open_with(
        "/data",
        StoreOptions {
            vfs: Some(Arc::new(fs.clone())),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn batch(writer: u32, seq: u64, n: u64, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..n {
        let v = format!("{writer}:{}", seq + i);
        b.push(
            ts,
            Some(format!("w{writer}").as_bytes()),
            Some(v.as_bytes()),
            &[],
        );
    }
    b.finish().unwrap()
}

/// (writer, sequence) of a record written by `batch`.
fn parse(v: &[u8]) -> (u32, u64) {
    let s = std::str::from_utf8(v).unwrap();
    let (w, n) = s.split_once(':').unwrap();
    (w.parse().unwrap(), n.parse().unwrap())
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checks the recovered partition: every writer's records appear in order without gaps
/// (a prefix of what it wrote) and cover at least what was acknowledged.
fn check(
    store: &LogStore,
    acked: &HashMap<u32, u64>,
    written: &HashMap<u32, u64>,
) -> HashMap<u32, u64> {
    let p = store.partition("t", 0).unwrap();
    let mut next: HashMap<u32, u64> = HashMap::new();
    for (i, r) in read_all(&p, 0).iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets stay contiguous");
        let (w, seq) = parse(r.value.as_deref().unwrap());
        let n = next.entry(w).or_insert(0);
        assert_eq!(
            seq, *n,
            "writer {w}: records in order, none missing in between"
        );
        *n += 1;
    }
    for (w, a) in acked {
        let got = next.get(w).copied().unwrap_or(0);
        assert!(
            got >= *a,
            "writer {w}: {a} acknowledged but only {got} survived"
        );
        assert!(
            got <= written.get(w).copied().unwrap_or(0),
            "nothing invented"
        );
    }
    next
}

#[test]
fn always_policy_keeps_every_acknowledged_record_across_random_crashes() {
    let mut fs = SimFs::new();
    {
        let store = open(&fs);
        let c =
            TopicConfig::from_pairs([("segment.bytes", "20000"), ("retention.ms", "-1")]).unwrap();
        store.create_topic("t", 1, c).unwrap();
        store.close().unwrap();
    }
    let mut rng = 42u64;
    // Per writer: records acknowledged / attempted so far, carried across crashes.
    let mut acked: HashMap<u32, u64> = HashMap::new();
    let mut written: HashMap<u32, u64> = HashMap::new();
    let ts = now_ms();
    for round in 0..200 {
        let store = Arc::new(open(&fs));
        let survived = check(&store, &acked, &written);
        // Writers continue from what survived (unacknowledged tails may be gone).
        let start: Vec<u64> = (0..3)
            .map(|w| survived.get(&w).copied().unwrap_or(0))
            .collect();
        let acks: Arc<Mutex<HashMap<u32, u64>>> = Arc::new(Mutex::new(HashMap::new()));
        let attempts: Arc<Mutex<HashMap<u32, u64>>> = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let crash_after = 1 + splitmix(&mut rng) % 12;
        let threads: Vec<_> = (0..3u32)
            .map(|w| {
                let (store, acks, attempts, stop, total) = (
                    store.clone(),
                    acks.clone(),
                    attempts.clone(),
                    stop.clone(),
                    total.clone(),
                );
                let mut seq = start[w as usize];
                std::thread::spawn(move || {
                    let mut n = 1 + (w as u64 + round) % 5;
                    while !stop.load(Ordering::SeqCst) {
                        attempts.lock().unwrap().insert(w, seq + n);
                        if store.append("t", 0, &mut batch(w, seq, n, ts)).is_err() {
                            return;
                        }
                        seq += n;
                        acks.lock().unwrap().insert(w, seq);
                        total.fetch_add(1, Ordering::SeqCst);
                        n = n % 7 + 1;
                    }
                })
            })
            .collect();
        while total.load(Ordering::SeqCst) < crash_after {
            std::thread::yield_now();
        }
        let next_fs = fs.crash(splitmix(&mut rng));
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        for (w, a) in acks.lock().unwrap().iter() {
            acked.insert(*w, *a);
        }
        for (w, a) in attempts.lock().unwrap().iter() {
            written.insert(*w, *a);
        }
        // Writers whose survivors were below their old ack: impossible, checked above.
        for w in 0..3u32 {
            let s = survived.get(&w).copied().unwrap_or(0);
            written
                .entry(w)
                .and_modify(|x| *x = (*x).max(s))
                .or_insert(s);
        }
        drop(store);
        fs = next_fs;
    }
    let store = open(&fs);
    let survived = check(&store, &acked, &written);
    assert!(
        survived.values().sum::<u64>() > 200,
        "the test wrote something"
    );
    assert!(fs.sync_count() > 0);
}

/// Under `interval` and `on-roll`, a crash may lose acknowledged records, but never those
/// below the durable offset the log reported before the crash.
#[test]
fn relaxed_policies_lose_no_more_than_they_promise() {
    for policy in ["interval", "on-roll"] {
        let mut fs = SimFs::new();
        let c = TopicConfig::from_pairs([
            ("flush.policy", policy),
            ("flush.ms", "1"),
            ("segment.bytes", "3000"),
            ("retention.ms", "-1"),
        ])
        .unwrap();
        {
            let store = open(&fs);
            store.create_topic("t", 1, c).unwrap();
            store.close().unwrap();
        }
        let mut rng = 7u64;
        let mut next = 0u64;
        for _ in 0..100 {
            let store = open(&fs);
            let p = store.partition("t", 0).unwrap();
            let have = p.high_watermark();
            assert!(have <= next);
            next = have;
            let appends = 1 + splitmix(&mut rng) % 20;
            for _ in 0..appends {
                let n = 1 + splitmix(&mut rng) % 9;
                store
                    .append("t", 0, &mut batch(0, next, n, now_ms()))
                    .unwrap();
                next += n;
            }
            let durable = p.durable_offset();
            fs = fs.crash(splitmix(&mut rng));
            drop(store);
            let store = open(&fs);
            let p = store.partition("t", 0).unwrap();
            let hw = p.high_watermark();
            assert!(
                hw >= durable,
                "{policy}: durable offset {durable} but only {hw} survived"
            );
            let recs = read_all(&p, 0);
            assert_eq!(recs.len() as u64, hw);
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(
                    parse(r.value.as_deref().unwrap()),
                    (0, i as u64),
                    "{policy}"
                );
            }
            next = hw;
        }
    }
}
