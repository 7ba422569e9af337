//! ksqlDB's query-validation suite through the real engine and log: per-file counts, and the
//! ratchet: every case listed in `engine/tests/passing.txt` must keep passing.

mod common;

use sluice_engine::conformance::runner::{ratchet, run_path};

#[test]
fn ksqldb_query_validation_suite() {
    let Some(root) = common::qtt_folder() else {
        return;
    };
    let results = run_path(&root, None).unwrap();
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/passing.txt");
    let missing = ratchet(
        &results,
        include_str!("passing.txt"),
        &list,
        "QTT cases that pass and must keep passing",
    );
    assert!(
        missing.is_empty(),
        "cases that passed before fail now:\n{}",
        missing.join("\n")
    );
}
