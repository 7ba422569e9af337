//! `sluice server` with a Kafka client nobody here wrote: kcat (librdkafka). Metadata,
//! keyed produce landing where Kafka's partitioner puts keys, consume from the beginning,
//! a persistent query fed and read over the protocol, a graceful SIGTERM after which the
//! data is all there, and balanced consumers (`-G`) splitting a topic, rebalancing when
//! one joins and when one dies. `.ci/run` installs kcat (Debian's `kcat`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::ok;
use common::server::Server;

/// kcat's output (`.ci/run` installs kcat; Debian: `apt-get install kcat`).
fn kcat(args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new("kcat");
    command.args(args);
    let out = common::run(command, stdin);
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kcat -C` of a whole topic from the beginning, with a format.
fn consume(addr: &str, topic: &str, format: &str) -> Vec<String> {
    kcat(
        &[
            "-b",
            addr,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            format,
        ],
        None,
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn kcat_lists_produces_with_keys_and_consumes_through_sluice_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "sql",
            "--execute",
            "CREATE STREAM clicks (user STRING KEY, page STRING) \
               WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM pricing AS SELECT user, page FROM clicks WHERE page = '/pricing';",
        ],
        None,
    );
    let server = Server::start(d);
    let addr = server.addr.as_str();

    let listed = kcat(&["-b", addr, "-L"], None);
    assert!(listed.contains("broker 0 at"), "{listed}");
    assert!(listed.contains("topic \"clicks\""), "{listed}");

    // Keyed records through librdkafka's murmur2 partitioner (the Java client's) into a
    // topic Produce auto-creates with 3 partitions: each key lands where Kafka puts it.
    let lines: String = (0..300).map(|i| format!("user-{i}:v{i}\n")).collect();
    kcat(
        &[
            "-b",
            addr,
            "-P",
            "-t",
            "keyed",
            "-K:",
            "-X",
            "partitioner=murmur2_random",
        ],
        Some(&lines),
    );
    let got = consume(addr, "keyed", "%k %p %s\n");
    assert_eq!(got.len(), 300, "{got:?}");
    for line in &got {
        let mut parts = line.split(' ');
        let (key, partition) = (parts.next().unwrap(), parts.next().unwrap());
        let want = sluice_storage::partitioner::partition_for_key(key.as_bytes(), 3);
        assert_eq!(partition, want.to_string(), "{line}");
    }

    // The persistent query runs inside the server: clicks produced over the protocol come
    // out filtered in its sink, read over the protocol too.
    let clicks: String = (0..50)
        .map(|i| {
            let page = if i % 5 == 0 { "/pricing" } else { "/docs" };
            format!("u{i}:{{\"PAGE\":\"{page}\"}}\n")
        })
        .collect();
    kcat(&["-b", addr, "-P", "-t", "clicks", "-K:"], Some(&clicks));
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = consume(addr, "PRICING", "%k %s\n");
        if out.len() >= 10 || Instant::now() > deadline {
            break out;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    };
    assert_eq!(out.len(), 10, "{out:?}");
    assert!(
        out.contains(&r#"u0 {"PAGE":"/pricing"}"#.to_string()),
        "{out:?}"
    );

    // SIGTERM: a clean stop; every record is still there for the next reader.
    let (clean, printed) = server.terminate();
    assert!(clean && printed.contains("Stopped."), "{printed}");
    let after = ok(
        d,
        &[
            "consume",
            "keyed",
            "--from-beginning",
            "--timeout-ms",
            "100",
        ],
        None,
    );
    assert_eq!(after.lines().count(), 300);
}

/// A long-running process whose output lines are collected as they come.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |stream: Box<dyn Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let into = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn out(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn err(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (with a deadline) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// `kcat -G group topic`: a balanced consumer printing `partition key` lines.
fn group_consumer(addr: &str, group: &str, topic: &str) -> Running {
    let mut command = Command::new("kcat");
    command.args([
        "-u", // unbuffered: lines arrive as read
        "-b",
        addr,
        "-G",
        group,
        "-X",
        "auto.offset.reset=earliest",
        "-X",
        "session.timeout.ms=3000",
        "-X",
        "heartbeat.interval.ms=200",
        "-X",
        "auto.commit.interval.ms=100",
        "-f",
        "%p %k\n",
        topic,
    ]);
    Running::spawn(command)
}

/// The partitions of a consumer's latest assignment, from kcat's "assigned:" lines.
fn assigned(consumer: &Running) -> Option<BTreeSet<String>> {
    let err = consumer.err();
    let line = err.iter().rev().find(|l| l.contains("rebalanced"))?;
    let (_, list) = line.split_once("assigned:")?;
    Some(
        list.split(',')
            .filter_map(|p| {
                p.trim()
                    .split_once('[')
                    .map(|(_, n)| n.trim_end_matches(']').to_string())
            })
            .collect(),
    )
}

/// The keys each consumer printed, keyed by partition.
fn keys_by_partition(lines: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by = BTreeMap::<String, BTreeSet<String>>::new();
    for line in lines {
        if let Some((p, k)) = line.split_once(' ') {
            by.entry(p.to_string()).or_default().insert(k.to_string());
        }
    }
    by
}

fn produce_keys(addr: &str, topic: &str, keys: impl Iterator<Item = String>) {
    let lines: String = keys.map(|k| format!("{k}:v\n")).collect();
    kcat(&["-b", addr, "-P", "-t", topic, "-K:"], Some(&lines));
}

#[test]
fn kcat_balanced_consumers_split_partitions_and_rebalance_on_join_and_death() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The server's settings come from a Kafka server.properties (flags absent).
    let properties = d.join("server.properties");
    std::fs::write(
        &properties,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\nnum.partitions=4\n\
             group.initial.rebalance.delay.ms=0\ngroup.min.session.timeout.ms=1000\n\
             zookeeper.connect=localhost:2181\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let server = Server::start_with(d, &["server", "--config", properties.to_str().unwrap()]);
    let addr = server.addr.as_str();
    produce_keys(addr, "events", (0..400).map(|i| format!("a{i}")));

    // One member: every partition, every record.
    let first = group_consumer(addr, "readers", "events");
    wait_until("the first member read the first 400 records", || {
        first.out().len() >= 400
    });
    assert_eq!(
        assigned(&first).map(|a| a.len()),
        Some(4),
        "{:?}",
        first.err()
    );

    // A second member joins: the four partitions are split between the two.
    let second = group_consumer(addr, "readers", "events");
    wait_until("both members hold two partitions each", || {
        assigned(&first).is_some_and(|a| a.len() == 2)
            && assigned(&second).is_some_and(|a| a.len() == 2)
    });
    let (a, b) = (assigned(&first).unwrap(), assigned(&second).unwrap());
    assert!(a.is_disjoint(&b), "{a:?} {b:?}");
    let before = (first.out().len(), second.out().len());
    produce_keys(addr, "events", (0..400).map(|i| format!("b{i}")));
    let fresh = |c: &Running, from: usize| -> Vec<String> {
        c.out()[from..]
            .iter()
            .filter(|l| l.contains(" b"))
            .cloned()
            .collect()
    };
    wait_until("the members together read the next 400 records", || {
        let keys: BTreeSet<String> = fresh(&first, before.0)
            .into_iter()
            .chain(fresh(&second, before.1))
            .collect();
        keys.len() >= 400
    });
    // Each read only its own partitions.
    for (consumer, mine, from) in [(&first, &a, before.0), (&second, &b, before.1)] {
        let read = keys_by_partition(&fresh(consumer, from));
        assert!(
            !read.is_empty(),
            "a member read nothing after the rebalance"
        );
        for partition in read.keys() {
            assert!(mine.contains(partition), "{partition} not in {mine:?}");
        }
    }

    // The first member dies without leaving: its session times out and the survivor
    // takes every partition, continuing where the group committed.
    drop(first);
    wait_until("the survivor holds all four partitions", || {
        assigned(&second).is_some_and(|a| a.len() == 4)
    });
    let from = second.out().len();
    produce_keys(addr, "events", (0..400).map(|i| format!("c{i}")));
    wait_until("the survivor read the last 400 records", || {
        second.out()[from..]
            .iter()
            .filter(|l| l.contains(" c"))
            .count()
            >= 400
    });
    drop(second);
    let (clean, printed) = server.terminate();
    assert!(clean && printed.contains("Stopped."), "{printed}");
}
