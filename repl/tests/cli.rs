//! The `sluice` binary end to end, as a user runs it: the README's Kafka-style tour, errors
//! that are one clear line, the data-directory lock naming its holder, and a `kill -9` in
//! the middle of a produce that leaves a readable log.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{err, ok, sluice, sorted_lines};

#[test]
fn readme_tour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        ok(
            d,
            &["topics", "create", "orders", "--partitions", "3"],
            None
        ),
        "Created topic orders.\n"
    );
    assert_eq!(ok(d, &["topics", "list"], None), "orders\n");
    ok(
        d,
        &["produce", "orders", "--key-separator", ":"],
        Some("alice:pizza\nbob:sushi\nalice:tacos\ncarol:ramen\n"),
    );
    let all = ok(
        d,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--print-key",
            "--timeout-ms",
            "500",
        ],
        None,
    );
    assert_eq!(
        sorted_lines(&all),
        ["alice\tpizza", "alice\ttacos", "bob\tsushi", "carol\tramen"]
    );
    // Records of one key stay in order (same partition, Kafka's partitioner).
    let alice: Vec<&str> = all.lines().filter(|l| l.starts_with("alice")).collect();
    assert_eq!(alice, ["alice\tpizza", "alice\ttacos"]);
    // A group reads some, commits, and the next run continues where it stopped.
    let first = ok(
        d,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--group",
            "billing",
            "--max-messages",
            "2",
        ],
        None,
    );
    assert_eq!(first.lines().count(), 2);
    let rest = ok(
        d,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--group",
            "billing",
            "--timeout-ms",
            "500",
        ],
        None,
    );
    assert_eq!(rest.lines().count(), 2);
    let mut both: Vec<&str> = first.lines().chain(rest.lines()).collect();
    both.sort_unstable();
    assert_eq!(both, ["pizza", "ramen", "sushi", "tacos"]);
    assert_eq!(ok(d, &["groups", "list"], None), "billing\n");
    let describe = ok(d, &["groups", "describe", "billing"], None);
    assert!(describe.starts_with("GROUP"));
    assert_eq!(describe.lines().count(), 4);
    assert!(
        describe
            .lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(5) == Some("0")),
        "no lag:\n{describe}"
    );
    // Timestamps, and reading one partition from an offset.
    let ts = ok(
        d,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--print-timestamp",
            "--max-messages",
            "1",
        ],
        None,
    );
    assert!(ts.starts_with("CreateTime:"), "{ts}");
    ok(
        d,
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
        d,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--timeout-ms",
            "300",
        ],
        None,
    );
    assert_eq!(again.lines().count(), 4);
    let desc = ok(d, &["topics", "describe", "orders"], None);
    assert!(desc.contains("PartitionCount: 3"), "{desc}");
    ok(d, &["topics", "delete", "orders"], None);
    assert_eq!(ok(d, &["topics", "list"], None), "__consumer_offsets\n");
}

#[test]
fn consume_prints_null_and_escapes_bytes_and_counts_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["topics", "create", "t"], None);
    ok(d, &["produce", "t"], Some("plain\r\nwith\u{e9}accent\n"));
    let out = sluice(
        d,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--print-key",
            "--max-messages",
            "5",
            "--timeout-ms",
            "200",
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "null\tplain\nnull\twith\u{e9}accent\n"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("Processed a total of 2 messages")
    );
    let one = ok(
        d,
        &[
            "consume",
            "t",
            "--partition",
            "0",
            "--offset",
            "1",
            "--max-messages",
            "1",
        ],
        None,
    );
    assert_eq!(one, "with\u{e9}accent\n");
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        err(d, &["consume", "missing", "--timeout-ms", "10"], None)
            .contains("unknown topic 'missing'")
    );
    assert!(err(d, &["topics", "create", "bad name"], None).contains("illegal"));
    assert!(
        err(
            d,
            &["topics", "create", "t", "--config", "retention.ms=soon"],
            None
        )
        .contains("retention.ms")
    );
    assert!(
        err(d, &["topics", "create", "t", "--config", "nonsense"], None).contains("name=value")
    );
    ok(d, &["topics", "create", "t", "--partitions", "2"], None);
    assert!(err(d, &["topics", "create", "t"], None).contains("already exists"));
    let e = err(
        d,
        &["produce", "t", "--key-separator", ","],
        Some("a,1\nb,2\nno separator here\nc,3\n"),
    );
    assert!(e.contains("line 3"), "{e}");
    // The lines before the bad one were kept.
    let kept = ok(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "200"],
        None,
    );
    assert_eq!(sorted_lines(&kept), ["1", "2"]);
    assert!(err(d, &["produce", "t", "--partition", "7"], Some("x\n")).contains("no partition 7"));
    assert!(
        err(
            d,
            &["consume", "t", "--partition", "0", "--offset", "99"],
            None
        )
        .contains("out of range")
    );
    assert!(err(d, &["groups", "describe", "nobody"], None).contains("does not exist"));
    assert!(err(d, &["topics", "delete", "nope"], None).contains("unknown topic"));
}

#[test]
fn a_second_process_is_told_who_holds_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["topics", "create", "t"], None);
    // A consumer without a timeout waits at the end of the log, holding the directory.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--data-dir")
        .arg(d)
        .args(["consume", "t"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the holder has written its pid into the lock file.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = holder.id().to_string();
    while std::fs::read_to_string(d.join(".lock")).unwrap_or_default() != pid {
        assert!(
            Instant::now() < deadline,
            "the consumer never took the lock"
        );
        assert!(holder.try_wait().unwrap().is_none(), "the consumer exited");
        std::thread::yield_now();
    }
    let message = err(d, &["topics", "list"], None);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        message.contains(&format!("pid {}", holder.id())),
        "{message}"
    );
    // Once the holder is gone (even killed), the directory opens again.
    assert_eq!(ok(d, &["topics", "list"], None), "t\n");
}

#[test]
fn kill_dash_nine_during_produce_leaves_a_readable_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["topics", "create", "t", "--config", "segment.bytes=2000000"],
        None,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--data-dir")
        .arg(d)
        .args(["produce", "t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut i = 0u64;
    // Feed records until the log shows progress on disk, then kill without warning.
    let seg = d.join("topics/t/0/00000000000000000000.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&seg).map_or(0, |m| m.len()) < 300_000 {
        let mut chunk = String::new();
        for _ in 0..500 {
            chunk.push_str(&format!("record-{i:08}\n"));
            i += 1;
        }
        stdin.write_all(chunk.as_bytes()).unwrap();
        assert!(Instant::now() < deadline, "produce made no progress");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    let out = ok(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "200"],
        None,
    );
    let got: Vec<&str> = out.lines().collect();
    assert!(got.len() > 1000, "only {} records survived", got.len());
    for (n, line) in got.iter().enumerate() {
        assert_eq!(
            *line,
            format!("record-{n:08}"),
            "records form a prefix of the input"
        );
    }
    // The log takes new records after the recovery.
    ok(d, &["produce", "t"], Some("after\n"));
    let last = ok(
        d,
        &[
            "consume",
            "t",
            "--partition",
            "0",
            "--offset",
            &got.len().to_string(),
            "--max-messages",
            "1",
        ],
        None,
    );
    assert_eq!(last, "after\n");
}

#[test]
fn topics_alter_changes_configs_and_partitions_durably() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "topics",
            "create",
            "t",
            "--partitions",
            "2",
            "--config",
            "retention.ms=1000",
        ],
        None,
    );
    ok(
        d,
        &["produce", "t", "--key-separator", ":"],
        Some("a:1\nb:2\n"),
    );
    let out = ok(
        d,
        &[
            "topics",
            "alter",
            "t",
            "--config",
            "min.insync.replicas=2",
            "--delete-config",
            "retention.ms",
            "--partitions",
            "3",
        ],
        None,
    );
    assert_eq!(
        out,
        "Altered the configs of topic t.\nTopic t has 3 partitions now.\n"
    );
    // A new process sees both changes (topic.json was rewritten), and the new partition
    // takes records.
    ok(d, &["produce", "t", "--partition", "2"], Some("x\n"));
    let desc = ok(d, &["topics", "describe", "t"], None);
    assert!(
        desc.starts_with(
            "Topic: t\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: min.insync.replicas=2\n"
        ),
        "{desc}"
    );
    assert!(
        desc.contains("Partition: 2\tLeader: 0\tReplicas: 0\tIsr: 0\tStartOffset: 0\tEndOffset: 1"),
        "{desc}"
    );
    let all = ok(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "200"],
        None,
    );
    assert_eq!(sorted_lines(&all), ["1", "2", "x"]);
    let e = err(
        d,
        &[
            "topics",
            "alter",
            "t",
            "--config",
            "message.timestamp.type=LogAppendTime",
        ],
        None,
    );
    assert!(e.contains("only 'CreateTime'"), "{e}");
    let e = err(d, &["topics", "alter", "t"], None);
    assert!(e.contains("required"), "{e}");
}
