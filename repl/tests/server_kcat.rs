//! `sluice server` with a Kafka client nobody here wrote: kcat (librdkafka). Metadata,
//! keyed produce landing where Kafka's partitioner puts keys, consume from the beginning,
//! a persistent query fed and read over the protocol, and a graceful SIGTERM after which
//! the data is all there. `.ci/run` installs kcat (Debian's `kcat`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::ok;

/// A running `sluice server` and the address it listens on.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--data-dir")
            .arg(data)
            .args(["server", "--kafka", "127.0.0.1:0", "--num-partitions", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("Kafka protocol listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    /// SIGTERM, then the exit status and what it printed after the address line.
    fn terminate(mut self) -> (bool, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let mut printed = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut printed).unwrap();
        }
        let status = self.child.wait().unwrap();
        (status.success(), printed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
