//! librdkafka's own integration tests (shipped in the `rdkafka-sys` crate) against a
//! `sluice server`: every test named in `librdkafka/allowlist.txt` must pass. The runner
//! script fetches and builds the suite once (cached under ~/.cache/sluice); the server is
//! configured as librdkafka's "default" test scenario expects (auto-created topics with 4
//! partitions). `librdkafka/README.md` says which tests are left out and why.

use std::path::Path;
use std::process::Command;

mod common;
use common::server::Server;

#[test]
fn librdkafka_test_suite_allowlist_passes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "server",
            "--kafka",
            "127.0.0.1:0",
            "--num-partitions",
            "4",
            "--http",
            "off",
        ],
    );
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/librdkafka");
    let allowlist = std::fs::read_to_string(here.join("allowlist.txt")).unwrap();
    let tests: Vec<&str> = allowlist
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(tests.len() >= 40, "the allowlist lost tests: {tests:?}");
    let logs = dir.path().join("logs");
    let out = Command::new("bash")
        .arg(here.join("run.sh"))
        .arg("run")
        .arg(&server.addr)
        .args(&tests)
        .env("LOG_DIR", &logs)
        .env("TEST_TIMEOUT", "120")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the runner failed: {errors}\n{report}"
    );
    let passed: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("PASS "))
        .collect();
    let missing: Vec<&&str> = tests.iter().filter(|t| !passed.contains(t)).collect();
    if !missing.is_empty() {
        // Print the failing tests' last lines to make the failure readable in CI.
        for t in &missing {
            let log = std::fs::read_to_string(logs.join(format!("{t}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- {t} ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        panic!("allowlisted librdkafka tests did not pass: {missing:?}\n{report}");
    }
}
