//! ksqlDB's REST query-validation tests (pull queries, push queries, inserts) through a real
//! REST server over HTTP: per-file counts, and the ratchet: every case listed in
//! `server/tests/rest_passing.txt` must keep passing.

use std::path::Path;

use sluice_engine::conformance::runner::{ratchet, run_path_with};
use sluice_server::rest::rqtt;

#[test]
fn ksqldb_rest_query_validation_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/ksql-qtt/rest-query-validation-tests");
    if !root.is_dir() {
        assert!(
            std::env::var("CI").is_err(),
            "under CI the REST suite must be present at {}",
            root.display()
        );
        eprintln!("skipping: {} is absent", root.display());
        return;
    }
    let results = run_path_with(&root, None, &|_, v| rqtt::run_variant(v)).unwrap();
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rest_passing.txt");
    let missing = ratchet(
        &results,
        include_str!("rest_passing.txt"),
        &list,
        "REST cases that pass and must keep passing",
    );
    assert!(
        missing.is_empty(),
        "REST cases that passed before fail now:\n{}",
        missing.join("\n")
    );
}
