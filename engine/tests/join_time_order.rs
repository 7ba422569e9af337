//! A stream-stream join whose two sides reach very different distances in event time per
//! read (a few large records on one side, many small ones on the other) still meets them in
//! event-time order: with GRACE PERIOD 0 no record is dropped as late because the other
//! side's read ran ahead.

use std::sync::Arc;

use sluice_engine::engine::Engine;
use sluice_storage::batch::{self, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, LogStore, StoreOptions};

const PARENTS: i64 = 1_000;
const CHILDREN_EACH: i64 = 200;

fn append(log: &dyn EventLog, topic: &str, records: impl Iterator<Item = (i64, String)>) {
    let mut b = BatchBuilder::new(Compression::None);
    let flush = |b: &mut BatchBuilder| {
        if !b.is_empty() {
            let full = std::mem::replace(b, BatchBuilder::new(Compression::None));
            let mut bytes = full.finish().unwrap();
            log.append(topic, 0, &mut bytes).unwrap();
        }
    };
    for (time, value) in records {
        b.push(time, None, Some(value.as_bytes()), &[]);
        if b.len() >= 1_000 || b.size_estimate() > 512 * 1024 {
            flush(&mut b);
        }
    }
    flush(&mut b);
}

fn sink_rows(log: &dyn EventLog, topic: &str) -> usize {
    let (start, end) = log.offsets(topic, 0).unwrap();
    let mut offset = start;
    let mut rows = 0;
    while offset < end {
        let r = log.read(topic, 0, offset, 1 << 20).unwrap();
        for b in Batches::new(&r.data) {
            batch::for_each_record(b, |rec| {
                rows += 1;
                offset = rec.offset as u64 + 1;
                Ok(())
            })
            .unwrap();
        }
    }
    rows
}

#[test]
fn sides_meet_in_event_time_whatever_each_read_spans() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(LogStore::open_with(dir.path(), StoreOptions::default()).unwrap());
    let mut engine = Engine::new(log.clone());
    engine
        .execute_sql(
            "CREATE STREAM parent (id BIGINT, pad STRING) WITH (kafka_topic='parent', value_format='JSON', partitions=1);
             CREATE STREAM child (ref BIGINT) WITH (kafka_topic='child', value_format='JSON', partitions=1);",
        )
        .unwrap();
    // 1,000 parents of 4 KB, one a second: one read holds them all. 200,000 children of
    // ~12 bytes, each within 4 s after its parent: a read holds a fraction of them.
    let pad = "x".repeat(4_000);
    append(
        log.as_ref(),
        "parent",
        (0..PARENTS).map(|i| (i * 1_000, format!("{{\"id\":{i},\"pad\":\"{pad}\"}}"))),
    );
    append(
        log.as_ref(),
        "child",
        (0..PARENTS * CHILDREN_EACH).map(|i| {
            let parent = i / CHILDREN_EACH;
            let time = parent * 1_000 + (i % CHILDREN_EACH) * 20;
            (
                time,
                format!("{{\"ref\":{parent},\"filler\":\"{}\"}}", "y".repeat(30)),
            )
        }),
    );
    engine
        .execute_sql(
            "SET 'auto.offset.reset'='earliest';
             CREATE STREAM joined AS SELECT c.ref, p.id FROM child c
               JOIN parent p WITHIN (5 SECONDS, 0 SECONDS) GRACE PERIOD 0 SECONDS ON c.ref = p.id;",
        )
        .unwrap();
    engine.run_until_idle().unwrap();
    assert_eq!(
        sink_rows(log.as_ref(), "JOINED"),
        (PARENTS * CHILDREN_EACH) as usize
    );
}
