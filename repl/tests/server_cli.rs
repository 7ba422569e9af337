//! The CLI's log commands against a running broker (`--bootstrap-server`): `topics`,
//! `produce`, `consume` (also one waiting at the end of the log for new records),
//! `groups` and `topics alter` (configs and partitions) through the Kafka protocol of a `sluice server`, with kcat (librdkafka) on the
//! other side to show the records are the same ones any Kafka client sees.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::server::Server;

/// `sluice --bootstrap-server ADDR ARGS`: (success, stdout, stderr).
fn cli(addr: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("--bootstrap-server").arg(addr).args(args);
    let out = common::run(command, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn ok(addr: &str, args: &[&str], stdin: Option<&str>) -> String {
    let (success, out, err) = cli(addr, args, stdin);
    assert!(success, "sluice {args:?} failed: {err}");
    out
}

fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn topics_produce_consume_and_groups_over_the_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let addr = server.addr.clone();

    let out = ok(
        &addr,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert_eq!(out, "Created topic orders.\n");
    let (success, _, err) = cli(&addr, &["topics", "create", "orders"], None);
    assert!(
        !success && err.contains("topic 'orders' already exists"),
        "{err}"
    );
    ok(
        &addr,
        &["topics", "create", "orders", "--if-not-exists"],
        None,
    );
    assert!(
        ok(&addr, &["topics", "list"], None)
            .lines()
            .any(|l| l == "orders")
    );

    let lines: String = (1..=6).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(
        &addr,
        &["produce", "orders", "--key-separator", ":"],
        Some(&lines),
    );
    let described = ok(&addr, &["topics", "describe", "orders"], None);
    assert!(
        described.starts_with(
            "Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000\n"
        ),
        "{described}"
    );
    let ends: u64 = described
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit("EndOffset: ")
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(ends, 6, "{described}");

    // kcat reads the same records, in the partitions Kafka's partitioner picks.
    let by_kcat = kcat(&[
        "-b",
        &addr,
        "-C",
        "-t",
        "orders",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%p %k %s\n",
    ]);
    let by_sluice = ok(
        &addr,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--print-key",
            "--print-offset",
            "--timeout-ms",
            "500",
        ],
        None,
    );
    let as_kcat: String = by_sluice
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!(
                "{} {} {}\n",
                f[0].trim_start_matches("Partition:"),
                f[2],
                f[3]
            )
        })
        .collect();
    assert_eq!(sorted(&as_kcat), sorted(&by_kcat));
    assert_eq!(sorted(&by_kcat).len(), 6);

    // A group consumer reads everything, then waits at the end of the log (a long poll)
    // and wakes for records produced while it waits.
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--bootstrap-server",
            &addr,
            "consume",
            "orders",
            "--from-beginning",
        ])
        .args(["--group", "billing", "--max-messages", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = waiting.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 6 {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(rx.recv_timeout(left).expect("the first six records"));
    }
    // kcat produces the next two (to one partition each, by key).
    kcat_in(
        &["-b", &addr, "-P", "-t", "orders", "-K", ":"],
        Some("k7:v7\nk8:v8\n"),
    );
    while seen.len() < 8 {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            rx.recv_timeout(left)
                .expect("the records produced while waiting"),
        );
    }
    seen.sort();
    assert_eq!(seen, (1..=8).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(waiting.wait());
    });
    let status = exited
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .expect("the consumer exits after its eighth record");
    assert!(status.unwrap().success());

    // The group's commits are visible over the protocol, and can be moved.
    assert!(
        ok(&addr, &["groups", "list"], None)
            .lines()
            .any(|l| l == "billing")
    );
    let described = ok(&addr, &["groups", "describe", "billing"], None);
    let lags: Vec<&str> = described
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(lags, ["0", "0", "0"], "{described}");
    ok(
        &addr,
        &[
            "groups",
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
        None,
    );
    let again = ok(
        &addr,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--timeout-ms",
            "500",
        ],
        None,
    );
    assert_eq!(again.lines().count(), 8, "{again}");

    // Configs changed and partitions added over the protocol (IncrementalAlterConfigs,
    // CreatePartitions); a compacted topic refuses a record without a key.
    let out = ok(
        &addr,
        &[
            "topics",
            "alter",
            "orders",
            "--config",
            "cleanup.policy=compact",
            "--delete-config",
            "retention.ms",
            "--partitions",
            "4",
        ],
        None,
    );
    assert!(out.contains("Topic orders has 4 partitions now."), "{out}");
    let described = ok(&addr, &["topics", "describe", "orders"], None);
    assert!(
        described.starts_with(
            "Topic: orders\tPartitionCount: 4\tReplicationFactor: 1\tConfigs: cleanup.policy=compact\n"
        ),
        "{described}"
    );
    let (success, _, err) = cli(&addr, &["produce", "orders"], Some("no key\n"));
    assert!(
        !success && err.contains("Compacted topic cannot accept message without key"),
        "{err}"
    );
    let (success, _, err) = cli(
        &addr,
        &["topics", "alter", "orders", "--partitions", "2"],
        None,
    );
    assert!(
        !success
            && err.contains(
                "Topic currently has 4 partitions, which is higher than the requested 2."
            ),
        "{err}"
    );
    let (success, _, err) = cli(
        &addr,
        &["topics", "alter", "orders", "--config", "no.such=1"],
        None,
    );
    assert!(
        !success && err.contains("unknown topic config 'no.such'"),
        "{err}"
    );

    // Deleting is seen by the next command; errors are one line, not a panic.
    assert_eq!(
        ok(&addr, &["topics", "delete", "orders"], None),
        "Deleted topic orders.\n"
    );
    let (success, _, err) = cli(&addr, &["topics", "describe", "orders"], None);
    assert!(!success && err.contains("unknown topic 'orders'"), "{err}");
    let (success, _, err) = cli(&addr, &["sql", "-e", "SHOW STREAMS;"], None);
    assert!(!success && err.contains("--server"), "{err}");
    drop(server);
    let (success, _, err) = cli(&addr, &["topics", "list"], None);
    assert!(
        !success && err.contains("cannot reach a Kafka broker"),
        "{err}"
    );
}

fn kcat(args: &[&str]) -> String {
    kcat_in(args, None)
}

/// kcat's output (`.ci/run` installs kcat; Debian: `apt-get install kcat`).
fn kcat_in(args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new("kcat");
    command.args(args);
    let out = common::run(command, stdin);
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
