//! ksqlDB's REST query-validation tests (pull queries, push queries, inserts) through a real
//! REST server over HTTP: per-file counts, and the ratchet: every case listed in
//! `server/tests/rest_passing.txt` must keep passing.

use std::collections::BTreeSet;
use std::path::Path;

use sluice_engine::conformance::runner::{Counts, Status, run_path_with};
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
    let mut total = Counts::default();
    let mut passing = BTreeSet::new();
    for (file, cases) in &results {
        let counts = Counts::of(cases);
        eprintln!("{file}: {counts}");
        total.add(counts);
        for c in cases.iter().filter(|c| c.status == Status::Pass) {
            passing.insert(format!("{}\t{}\t{}", c.file, c.index, c.name));
        }
    }
    eprintln!("total: {total}");
    let ratchet = include_str!("rest_passing.txt");
    let missing: Vec<&str> = ratchet
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter(|l| !passing.contains(*l))
        .collect();
    if std::env::var("SLUICE_RATCHET_WRITE").is_ok() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rest_passing.txt");
        let mut text = String::from(
            "# REST cases that pass and must keep passing: file, case index, full name.\n",
        );
        for p in &passing {
            text.push_str(p);
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }
    assert!(
        missing.is_empty(),
        "REST cases that passed before fail now:\n{}",
        missing.join("\n")
    );
}
