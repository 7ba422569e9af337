//! Property tests of the batch codec: whatever records go in come out (every codec), and no
//! byte string, however mangled, makes validation or decoding panic.

mod common;

use common::codec;
use proptest::prelude::*;
use sluice_storage::BatchBuilder;
use sluice_storage::batch::{self, Batches, Expect};

type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
    Vec<(String, Option<Vec<u8>>)>,
);

fn record() -> impl Strategy<Value = Rec> {
    (
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        any::<i64>().prop_map(|t| t >> 2),
        prop::collection::vec(
            (
                "[a-z]{0,8}",
                prop::option::of(prop::collection::vec(any::<u8>(), 0..10)),
            ),
            0..3,
        ),
    )
}

fn loose() -> Expect {
    Expect {
        base_offset: None,
        leader_epoch: None,
        max_len: usize::MAX,
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(c in codec(), recs in prop::collection::vec(record(), 1..30), base in 0u64..1 << 40) {
        let mut b = BatchBuilder::new(c);
        for (k, v, ts, hs) in &recs {
            let headers: Vec<(&str, Option<&[u8]>)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            b.push(*ts, k.as_deref(), v.as_deref(), &headers);
        }
        let bytes = b.finish_with(base, -1).unwrap();
        let h = batch::validate(&bytes, &loose()).unwrap();
        prop_assert_eq!(h.records_count as usize, recs.len());
        prop_assert_eq!(h.base_offset as u64, base);
        let out = batch::records(&bytes).unwrap();
        for (i, (r, (k, v, ts, hs))) in out.iter().zip(&recs).enumerate() {
            prop_assert_eq!(r.offset as u64, base + i as u64);
            prop_assert_eq!(&r.key, k);
            prop_assert_eq!(&r.value, v);
            prop_assert_eq!(r.timestamp, *ts);
            prop_assert_eq!(&r.headers, hs);
        }
    }

    #[test]
    fn mangled_bytes_never_panic(c in codec(), recs in prop::collection::vec(record(), 1..5),
                                 edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
                                 cut in any::<prop::sample::Index>(), junk in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut b = BatchBuilder::new(c);
        for (k, v, ts, _) in &recs {
            b.push(*ts, k.as_deref(), v.as_deref(), &[]);
        }
        let mut bytes = b.finish().unwrap();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.extend_from_slice(&junk);
        for one in Batches::new(&bytes) {
            let _ = batch::validate(one, &loose());
            let _ = batch::records(one);
        }
        let _ = batch::validate(&bytes, &loose());
        let _ = batch::records(&bytes);
        let _ = batch::records(&junk);
    }
}
