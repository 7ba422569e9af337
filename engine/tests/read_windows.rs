//! A persistent query over more input than one step reads, and than one read window holds:
//! every record comes out once, in order, whatever window or step it fell in, with plain
//! and compressed batches, headers, null values and a record that fails to decode among
//! them.

use std::sync::Arc;

use sluice_engine::engine::{Engine, EngineOptions};
use sluice_storage::batch::{self, Batches};
use sluice_storage::{BatchBuilder, Compression, EventLog, LogStore, StoreOptions};

/// What the input record `i` is.
enum Input {
    Row,
    NullValue,
    NotJson,
}

fn kind(i: usize) -> Input {
    match i % 97 {
        13 => Input::NullValue,
        50 if i.is_multiple_of(2) => Input::NotJson,
        _ => Input::Row,
    }
}

#[test]
fn every_record_of_many_read_windows_comes_out_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(LogStore::open_with(dir.path(), StoreOptions::default()).unwrap());
    let options = EngineOptions {
        durable: false,
        processing_log: true,
    };
    let mut engine = Engine::open(log.clone(), options).unwrap();
    engine
        .execute_sql(
            "SET 'auto.offset.reset' = 'earliest';
             CREATE STREAM s (id BIGINT, pad STRING) WITH (kafka_topic='s', value_format='JSON', partitions=1);",
        )
        .unwrap();
    // About 6 MB in batches of 37 records (every fifth compressed): several read windows
    // and more than one step's worth.
    let records = 11_000;
    let pad = "p".repeat(520);
    let ids: Vec<usize> = (0..records).collect();
    for (n, chunk) in ids.chunks(37).enumerate() {
        let codec = if n % 5 == 4 {
            Compression::Lz4
        } else {
            Compression::None
        };
        let mut b = BatchBuilder::new(codec);
        for &i in chunk {
            let value = format!("{{\"ID\":{i},\"PAD\":\"{pad}\"}}");
            let value = match kind(i) {
                Input::Row => Some(value.as_bytes()),
                Input::NullValue => None,
                Input::NotJson => Some(&b"{not json"[..]),
            };
            let tag = i.to_string();
            let headers: Vec<(&str, Option<&[u8]>)> = if i % 10 == 3 {
                vec![("tag", Some(tag.as_bytes()))]
            } else {
                Vec::new()
            };
            b.push(1_000 + i as i64, None, value, &headers);
        }
        let mut bytes = b.finish().unwrap();
        log.append("s", 0, &mut bytes).unwrap();
    }
    assert!(log.offsets("s", 0).unwrap().1 == records as u64);
    engine
        .execute_sql("CREATE STREAM out AS SELECT id, pad FROM s;")
        .unwrap();
    engine.run_until_idle().unwrap();

    // (id or None for a null value, timestamp, tag header) of each output record, in order.
    let mut out = Vec::new();
    let (_, end) = log.offsets("OUT", 0).unwrap();
    let mut offset = 0;
    while offset < end {
        let r = log.read("OUT", 0, offset, 1 << 20).unwrap();
        for b in Batches::new(&r.data) {
            batch::for_each_record(b, |rec| {
                let id = rec.value.map(|v| {
                    let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                    assert_eq!(v["PAD"].as_str(), Some(pad.as_str()));
                    v["ID"].as_u64().unwrap() as usize
                });
                let tag = rec
                    .headers()
                    .unwrap()
                    .into_iter()
                    .find(|(k, _)| k == "tag")
                    .and_then(|(_, v)| v.map(|v| String::from_utf8(v.to_vec()).unwrap()));
                out.push((id, rec.timestamp, tag));
                offset = rec.offset as u64 + 1;
                Ok(())
            })
            .unwrap();
        }
    }
    let expected: Vec<(Option<usize>, i64, Option<String>)> = (0..records)
        .filter_map(|i| {
            let id = match kind(i) {
                Input::Row => Some(i),
                Input::NullValue => None,
                Input::NotJson => return None,
            };
            Some((id, 1_000 + i as i64, (i % 10 == 3).then(|| i.to_string())))
        })
        .collect();
    assert_eq!(out.len(), expected.len());
    for (n, (got, want)) in out.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "output record {n}");
    }
    // The records that did not decode are counted as errors, once each.
    let bad = (0..records)
        .filter(|&i| matches!(kind(i), Input::NotJson))
        .count();
    assert!(bad > 50);
    let (_, logged) = log
        .offsets(sluice_engine::processing_log::TOPIC, 0)
        .unwrap();
    assert_eq!(logged, bad as u64);
}
