//! `sluice server` with Python Kafka clients nobody here wrote, each driven by a script in
//! `tests/clients/`: kafka-python (Debian's python3-kafka: admin, the four compression
//! codecs, a consumer group of two that commits and a member that continues) and
//! confluent-kafka (PyPI: 100,000 records produced and read back exactly, with and
//! without idempotence). `.ci/run`
//! installs both.

use std::path::Path;
use std::process::Command;

mod common;
use common::server::Server;

/// Runs a client script against a fresh server; its output, or a failure with both.
fn run_script(python: &str, script: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &["server", "--kafka", "127.0.0.1:0", "--num-partitions", "2"],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut command = Command::new(python);
    command.arg(&script).arg(&server.addr).args(extra);
    let out = common::run(command, None);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} failed:\n{printed}",
        script.display()
    );
    let (clean, stopped) = server.terminate();
    assert!(clean && stopped.contains("Stopped."), "{stopped}");
    printed
}

#[test]
fn kafka_python_admin_codecs_and_a_committing_group() {
    // Debian's package lives in the system interpreter's dist-packages.
    let printed = run_script("/usr/bin/python3", "kafka_python_check.py", &[]);
    for line in [
        "admin: create, describe and alter configs, add partitions, delete: ok",
        "producer with zstd: 500 records read back: ok",
        "group of two: split 2+2, read 400, committed: ok",
        "restarted member continued from the committed offsets: ok",
    ] {
        assert!(printed.contains(line), "{printed}");
    }
}

#[test]
fn confluent_kafka_produces_and_consumes_100k_records_exactly() {
    let printed = run_script("python3", "confluent_kafka_check.py", &["100000"]);
    assert!(
        printed.contains("consumed 100000 records, contents equal: ok"),
        "{printed}"
    );
}

#[test]
fn confluent_kafka_idempotent_producer_writes_each_record_once() {
    let printed = run_script(
        "python3",
        "confluent_kafka_check.py",
        &["100000", "idempotent"],
    );
    assert!(
        printed.contains("consumed 100000 records, contents equal: ok"),
        "{printed}"
    );
}
