//! `sluice bench`: the Nexmark generator writes what it exports, and the harness runs a
//! query in a real `sluice sql` process and reports a result that matches one computed
//! here, independently, from the exported events.

use std::path::Path;

mod common;
use common::{err, ok};

fn export_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn nexmark_gen_writes_the_topics_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let export = d.join("events.jsonl");
    let out = ok(
        d,
        &[
            "bench",
            "nexmark-gen",
            "--events",
            "5000",
            "--export",
            export.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.starts_with("5000 events (100 persons, 300 auctions, 4600 bids"),
        "{out}"
    );
    let events = export_lines(&export);
    assert_eq!(events.len(), 5000);
    let bids: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event_type"] == 2)
        .map(|e| &e["bid"])
        .collect();
    let consumed = ok(
        d,
        &[
            "consume",
            "nexmark-bid",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        None,
    );
    let topic: Vec<serde_json::Value> = consumed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(topic.len(), 4600);
    assert_eq!(topic.iter().collect::<Vec<_>>(), bids);
    // The topics hold records now: a second run is refused rather than doubling them.
    let again = err(d, &["bench", "nexmark-gen", "--events", "10"], None);
    assert!(again.contains("already holds 100 records"), "{again}");
}

#[test]
fn nexmark_harness_runs_a_query_and_its_result_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let export = d.join("events.jsonl");
    let json = d.join("run.json");
    let out = ok(
        d,
        &[
            "bench",
            "nexmark",
            "--query",
            "q2",
            "--events",
            "20000",
            "--work-dir",
            d.to_str().unwrap(),
            "--export",
            export.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.starts_with("q2: "), "{out}");
    assert!(out.contains(" events/s per core (CPU "), "{out}");
    // q2 = the bids on every 123rd auction; computed here from the export.
    let (mut rows, mut price) = (0u64, 0f64);
    for e in export_lines(&export) {
        if e["event_type"] == 2 && e["bid"]["auction"].as_u64().unwrap() % 123 == 0 {
            rows += 1;
            price += e["bid"]["price"].as_f64().unwrap();
        }
    }
    assert!(rows > 0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let q2 = &report["queries"][0];
    assert_eq!(q2["query"], "q2");
    assert_eq!(q2["output"]["rows"].as_u64(), Some(rows));
    assert_eq!(q2["output"]["sums"]["price"].as_f64(), Some(price));
    assert!(q2["events_per_cpu_s"].as_f64().unwrap() > 0.0);
    assert!(q2["peak_rss_mb"].as_f64().unwrap() > 1.0);
    assert_eq!(report["generated"]["bids"].as_u64(), Some(18_400));
    // The run's own data went away with it.
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("sluice-nexmark-")
        })
        .collect();
    assert!(left.is_empty());
}

#[test]
fn nexmark_harness_names_the_queries_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let e = err(
        dir.path(),
        &["bench", "nexmark", "--query", "q9", "--events", "10"],
        None,
    );
    assert!(
        e.contains("no Nexmark query q9; there are q0, q1, q2, q3, q4, q5, q7, q8"),
        "{e}"
    );
}
