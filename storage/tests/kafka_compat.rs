//! Byte compatibility with Kafka's record format, checked by a decoder and encoder we did
//! not write (the `kafka-protocol` crate): it reads our segment files verifying every CRC,
//! and batches it builds with each of Kafka's codecs are accepted and read back by the log.

mod common;

use bytes::Bytes;
use common::{now_ms, read_all};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use sluice_storage::{BatchBuilder, Compression, LogStore, TopicConfig};

#[test]
fn an_independent_decoder_reads_our_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let ts = now_ms();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    {
        let store = LogStore::open(dir.path()).unwrap();
        store
            .create_topic(
                "t",
                1,
                TopicConfig::from_pairs([("segment.bytes", "2000")]).unwrap(),
            )
            .unwrap();
        for i in 0..60usize {
            let mut b = BatchBuilder::new(codecs[i % codecs.len()]);
            for j in 0..5 {
                let v = format!("value-{i}-{j}");
                let key = (j != 2).then(|| format!("key-{j}"));
                b.push(
                    ts + j,
                    key.as_deref().map(str::as_bytes),
                    Some(v.as_bytes()),
                    &[("h", Some(b"hv"))],
                );
            }
            store.append("t", 0, &mut b.finish().unwrap()).unwrap();
        }
        store.close().unwrap();
    }
    let pdir = dir.path().join("topics/t/0");
    let mut logs: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() > 3, "several segments");
    let mut next = 0i64;
    for log in logs {
        let mut buf = Bytes::from(std::fs::read(&log).unwrap());
        for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
            for r in set.records {
                assert_eq!(r.offset, next);
                let (i, j) = (next / 5, next % 5);
                assert_eq!(
                    r.value.as_deref(),
                    Some(format!("value-{i}-{j}").as_bytes())
                );
                assert_eq!(r.key.is_none(), j == 2);
                assert_eq!(r.timestamp, ts + j);
                assert_eq!(r.headers.len(), 1);
                next += 1;
            }
        }
    }
    assert_eq!(next, 300);
}

#[test]
fn batches_from_another_encoder_in_every_codec_are_stored_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let ts = now_ms();
    let codecs = [
        KCompression::None,
        KCompression::Gzip,
        KCompression::Snappy,
        KCompression::Lz4,
        KCompression::Zstd,
    ];
    let mut expected = Vec::new();
    for (n, codec) in codecs.into_iter().enumerate() {
        let records: Vec<Record> = (0..4i64)
            .map(|i| {
                let mut headers = indexmap::IndexMap::new();
                headers.insert(
                    StrBytes::from_static_str("trace"),
                    Some(Bytes::from(format!("t{i}"))),
                );
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i,
                    // One batch for all records (see notes/kafka-protocol.md): sequence = offset - 1.
                    sequence: (i - 1) as i32,
                    timestamp: ts + i,
                    key: Some(Bytes::from(format!("k{i}"))),
                    value: (i != 3).then(|| Bytes::from(format!("{codec:?}-{i}"))),
                    headers,
                }
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .unwrap();
        let mut bytes = buf.to_vec();
        let info = store.append("t", 0, &mut bytes).unwrap();
        assert_eq!(info.base_offset, n as u64 * 4);
        expected.extend(records.into_iter().map(|r| (r.key, r.value, r.timestamp)));
    }
    let p = store.partition("t", 0).unwrap();
    let got = read_all(&p, 0);
    assert_eq!(got.len(), expected.len());
    for (g, (k, v, ts)) in got.iter().zip(expected) {
        assert_eq!(g.key.as_deref(), k.as_deref());
        assert_eq!(g.value.as_deref(), v.as_deref());
        assert_eq!(g.timestamp, ts);
        assert_eq!(g.headers[0].0, "trace");
    }
}
