//! Criterion benchmarks of the log's hot paths: building and validating a batch of 1,000
//! 100-byte records, appending such batches under `on-roll` and `always`, and reading them
//! back with record decoding. Throughput is in records.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_storage::batch::{self, BatchHeader, Batches, Expect};
use sluice_storage::{BatchBuilder, Compression, LogStore, TopicConfig};

const RECORDS: usize = 1000;
const SIZE: usize = 100;

fn template() -> Vec<u8> {
    let value = vec![b'x'; SIZE];
    let mut b = BatchBuilder::new(Compression::None);
    for _ in 0..RECORDS {
        b.push(1_700_000_000_000, None, Some(&value), &[]);
    }
    b.finish().unwrap()
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(RECORDS as u64));
    let value = vec![b'x'; SIZE];
    g.bench_function("build_1000x100B", |b| {
        b.iter(|| {
            let mut bb = BatchBuilder::with_capacity(Compression::None, RECORDS * (SIZE + 8));
            for _ in 0..RECORDS {
                bb.push(1_700_000_000_000, None, Some(&value), &[]);
            }
            bb.finish().unwrap()
        })
    });
    let tpl = template();
    let expect = Expect {
        base_offset: None,
        leader_epoch: None,
        max_len: usize::MAX,
    };
    g.bench_function("validate_1000x100B", |b| {
        b.iter(|| batch::validate(&tpl, &expect).unwrap())
    });
    g.bench_function("decode_1000x100B", |b| {
        b.iter(|| {
            let mut n = 0usize;
            batch::for_each_record(&tpl, |r| {
                n += r.value.map_or(0, <[u8]>::len);
                Ok(())
            })
            .unwrap();
            n
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let tpl = template();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for policy in ["on-roll", "always"] {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let cfg =
            TopicConfig::from_pairs([("flush.policy", policy), ("segment.bytes", "268435456")])
                .unwrap();
        store.create_topic("t", 1, cfg).unwrap();
        let p = store.partition("t", 0).unwrap();
        g.bench_function(format!("{policy}_1000x100B"), |b| {
            b.iter_batched_ref(
                || tpl.clone(),
                |buf| p.append(buf).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let tpl = template();
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let cfg = TopicConfig::from_pairs([("flush.policy", "on-roll")]).unwrap();
    store.create_topic("t", 1, cfg).unwrap();
    let p = store.partition("t", 0).unwrap();
    for _ in 0..100 {
        p.append(&mut tpl.clone()).unwrap();
    }
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(100 * RECORDS as u64));
    g.bench_function("read_decode_100k_records", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut n = 0u64;
            loop {
                let r = p.read(offset, 1 << 20).unwrap();
                if r.data.is_empty() {
                    break;
                }
                for bt in Batches::new(&r.data) {
                    let h = BatchHeader::parse(bt).unwrap();
                    batch::for_each_record(bt, |_| {
                        n += 1;
                        Ok(())
                    })
                    .unwrap();
                    offset = h.next_offset();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, codec, append, read);
criterion_main!(benches);
