//! ksqlDB's query-validation suite through the real engine and log: per-file counts, and the
//! ratchet: every case listed in `engine/tests/passing.txt` must keep passing.

mod common;

use std::collections::BTreeSet;

use sluice_engine::conformance::runner::{Counts, Status, run_path};

#[test]
fn ksqldb_query_validation_suite() {
    let Some(root) = common::qtt_folder() else {
        return;
    };
    let results = run_path(&root, None).unwrap();
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
    let ratchet = include_str!("passing.txt");
    let missing: Vec<&str> = ratchet
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter(|l| !passing.contains(*l))
        .collect();
    let listed: BTreeSet<&str> = ratchet.lines().collect();
    let new: Vec<&String> = passing
        .iter()
        .filter(|p| !listed.contains(p.as_str()))
        .collect();
    if !new.is_empty() {
        eprintln!(
            "{} newly passing cases are not in engine/tests/passing.txt yet (SLUICE_RATCHET_WRITE=1 rewrites it)",
            new.len()
        );
    }
    if std::env::var("SLUICE_RATCHET_WRITE").is_ok() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/passing.txt");
        let mut text = String::from(
            "# QTT cases that pass and must keep passing: file, case index, full name.\n",
        );
        for p in &passing {
            text.push_str(p);
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }
    assert!(
        missing.is_empty(),
        "cases that passed before fail now:\n{}",
        missing.join("\n")
    );
}
