//! Differential test of windowed aggregation: random event streams (keys, values, times out
//! of order within the grace period) go through tumbling and hopping `CREATE TABLE … AS
//! SELECT … WINDOW … GROUP BY` queries on the real log; the final result of each window
//! (its last update in the sink topic) must equal the same aggregate computed in batch by
//! DataFusion over the same events.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use sluice_engine::engine::Engine;
use sluice_storage::batch::{self, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, LogStore, StoreOptions};

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// (key, value, time) events: times drift forward with jitter back of up to a minute.
fn events(seed: u64, n: usize) -> Vec<(i64, i64, i64)> {
    let mut rng = Rng(seed);
    let mut now = 1_700_000_000_000i64;
    (0..n)
        .map(|_| {
            now += rng.below(400);
            let jitter = rng.below(60_000);
            (rng.below(7), rng.below(2_000) - 500, (now - jitter).max(0))
        })
        .collect()
}

/// (key, window start) -> (count, sum, min, max) from the sink's last update per window.
type Windows = BTreeMap<(i64, i64), (i64, i64, i64, i64)>;

fn stream_results(events: &[(i64, i64, i64)], window: &str) -> Windows {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(LogStore::open_with(dir.path(), StoreOptions::default()).unwrap());
    let mut engine = Engine::new(log.clone());
    engine
        .execute_sql(&format!(
            "CREATE STREAM e (k BIGINT KEY, v BIGINT) WITH (kafka_topic='e', value_format='JSON', partitions=1);
             CREATE TABLE w AS SELECT k, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo, MAX(v) AS hi
               FROM e WINDOW {window} GROUP BY k;"
        ))
        .unwrap();
    // Appended in batches of a few hundred: the query sees them in several reads.
    for chunk in events.chunks(300) {
        let mut b = BatchBuilder::new(Compression::None);
        for (k, v, ts) in chunk {
            let value = format!("{{\"V\":{v}}}");
            b.push(*ts, Some(&k.to_be_bytes()), Some(value.as_bytes()), &[]);
        }
        let mut bytes = b.finish().unwrap();
        log.append("e", 0, &mut bytes).unwrap();
        engine.run_until_idle().unwrap();
    }
    let mut out = Windows::new();
    let (_, end) = log.offsets("W", 0).unwrap();
    let mut offset = 0;
    while offset < end {
        let r = log.read("W", 0, offset, 1 << 20).unwrap();
        for b in Batches::new(&r.data) {
            batch::for_each_record(b, |rec| {
                let key = rec.key.unwrap();
                let k = i64::from_be_bytes(key[..8].try_into().unwrap());
                let start = i64::from_be_bytes(key[8..16].try_into().unwrap());
                let v: serde_json::Value = serde_json::from_slice(rec.value.unwrap()).unwrap();
                let field = |f: &str| v[f].as_i64().unwrap();
                out.insert(
                    (k, start),
                    (field("N"), field("S"), field("LO"), field("HI")),
                );
                offset = rec.offset as u64 + 1;
                Ok(())
            })
            .unwrap();
        }
    }
    out
}

/// The same aggregates in batch: each event joined to every window start that holds it.
async fn batch_results(events: &[(i64, i64, i64)], size: i64, advance: i64) -> Windows {
    let ctx = SessionContext::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("ts", DataType::Int64, false),
    ]));
    let col = |f: fn(&(i64, i64, i64)) -> i64| -> Arc<Int64Array> {
        Arc::new(Int64Array::from_iter_values(events.iter().map(f)))
    };
    let batch =
        RecordBatch::try_new(schema, vec![col(|e| e.0), col(|e| e.1), col(|e| e.2)]).unwrap();
    ctx.register_batch("e", batch).unwrap();
    let hops = Arc::new(Schema::new(vec![Field::new("j", DataType::Int64, false)]));
    let js = RecordBatch::try_new(
        hops,
        vec![Arc::new(Int64Array::from_iter_values(0..size / advance))],
    )
    .unwrap();
    ctx.register_batch("hops", js).unwrap();
    let sql = format!(
        "SELECT k, start, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM (
           SELECT k, v, ts - (ts % {advance}) - j * {advance} AS start FROM e CROSS JOIN hops
         ) WHERE start > (SELECT 0) - 1 GROUP BY k, start"
    );
    let mut out = Windows::new();
    for b in ctx.sql(&sql).await.unwrap().collect().await.unwrap() {
        let c = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (k, start, n, s, lo, hi) = (c(0), c(1), c(2), c(3), c(4), c(5));
        for r in 0..b.num_rows() {
            out.insert(
                (k.value(r), start.value(r)),
                (n.value(r), s.value(r), lo.value(r), hi.value(r)),
            );
        }
    }
    out
}

#[tokio::test]
async fn windowed_results_match_a_batch_computation() {
    for seed in [7, 1234, 987_654_321] {
        let events = events(seed, 3_000);
        for (window, size, advance) in [
            ("TUMBLING (SIZE 10 SECONDS)", 10_000, 10_000),
            (
                "HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS)",
                30_000,
                10_000,
            ),
        ] {
            let streamed = stream_results(&events, window);
            let batch = batch_results(&events, size, advance).await;
            assert!(batch.len() > 50, "the events span many windows");
            assert_eq!(streamed.len(), batch.len(), "seed {seed}, {window}");
            assert_eq!(streamed, batch, "seed {seed}, {window}");
        }
    }
}
