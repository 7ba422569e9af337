//! Stateful queries through the `sluice` binary: a windowed aggregation killed with
//! SIGKILL in the middle of its input resumes from its last checkpoint, and the final
//! result of every window is what an uninterrupted run gives (updates after the checkpoint
//! may appear twice; no window misses a record or counts one twice).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::ok;

/// Bytes in the log files of the topics whose name starts with `prefix` (0 before anything
/// is written).
fn log_bytes(data: &Path, prefix: &str) -> u64 {
    let Ok(topics) = std::fs::read_dir(data.join("topics")) else {
        return 0;
    };
    topics
        .flatten()
        .filter(|t| t.file_name().to_string_lossy().starts_with(prefix))
        .flat_map(|t| walk(&t.path()))
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .map(|f| std::fs::metadata(&f).map_or(0, |m| m.len()))
        .sum()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Starts `sluice sql --execute <sql>` and returns it once it says its query is created,
/// with its output (kept open while it runs).
fn start_query(data: &Path, sql: &str, deadline: Instant) -> (Child, impl BufRead) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--data-dir")
        .arg(data)
        .args(["sql", "--execute", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let created = (&mut output)
        .lines()
        .any(|l| l.is_ok_and(|l| l.contains("Created query")));
    if !created || Instant::now() >= deadline {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no query created");
    }
    (child, output)
}

/// Kills `child` (SIGKILL) once `written` says so, or at the deadline.
fn kill_when(mut child: Child, written: impl Fn() -> bool, deadline: Instant) {
    while !written() && Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs statements through `sluice sql --execute`; its output.
fn sql(data: &Path, statements: &str) -> String {
    ok(data, &["sql", "--execute", statements], None)
}

/// `n` item records for `produce --key-separator '|'`: key i, name `item-i`.
fn named_items(n: u64) -> String {
    (0..n)
        .map(|i| format!("{i}|{{\"NAME\":\"item-{i}\"}}\n"))
        .collect()
}

/// Every value of a topic, from the beginning, one per line.
fn values(data: &Path, topic: &str) -> String {
    ok(
        data,
        &["consume", topic, "--from-beginning", "--timeout-ms", "200"],
        None,
    )
}

#[test]
fn kill_dash_nine_mid_window_aggregation_keeps_every_window_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sql(
        d,
        "CREATE STREAM ev (k BIGINT, v BIGINT, ts BIGINT) \
             WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', PARTITIONS=1, TIMESTAMP='ts');",
    );
    let n = 300_000i64;
    let mut expected: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    let mut input = String::new();
    // Recent event times: the sink keeps them (a week's retention by record time).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = now - now % 10_000 - 3 * n;
    for i in 0..n {
        let (k, v, ts) = (i % 13, i % 100, first + i * 3);
        input.push_str(&format!("{{\"K\":{k},\"V\":{v},\"TS\":{ts}}}\n"));
        let w = expected.entry((k, ts - ts % 10_000)).or_default();
        w.0 += 1;
        w.1 += v;
    }
    ok(d, &["produce", "ev"], Some(&input));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (child, _output) = start_query(
        d,
        "SET 'auto.offset.reset'='earliest'; SET 'commit.interval.ms'='100'; \
         CREATE TABLE per_window AS SELECT k, AS_VALUE(k) AS kk, WINDOWSTART AS ws, \
           COUNT(*) AS n, SUM(v) AS s FROM ev WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY k;",
        deadline,
    );
    // Kill once a checkpoint is on disk: the query is then somewhere in its input (or
    // done), with output written past its last checkpoint.
    kill_when(child, || log_bytes(d, "_sluice_state_") > 0, deadline);
    let at_kill = values(d, "PER_WINDOW").lines().count();
    eprintln!("{at_kill} updates written when killed");
    // The next process restores the state and catches up.
    sql(d, "SHOW QUERIES;");
    let out = values(d, "PER_WINDOW");
    let mut last: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |f: &str| v[f].as_i64().unwrap();
        last.insert((field("KK"), field("WS")), (field("N"), field("S")));
    }
    assert_eq!(last.len(), expected.len(), "every window has a result");
    assert_eq!(last, expected, "every window's final result is exact");
    // A clean stop and start replays nothing: the output does not grow.
    let updates = out.lines().count();
    eprintln!("{updates} updates for {n} records (more: replayed after the kill)");
    sql(d, "SHOW QUERIES;");
    let again = values(d, "PER_WINDOW");
    assert_eq!(again.lines().count(), updates);
    assert!(
        updates >= n as usize,
        "one update per input record at least"
    );
}

#[test]
fn pull_queries_read_materialized_and_source_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = sql(
        d,
        "CREATE STREAM bids (auction BIGINT KEY, price BIGINT) \
               WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='JSON', PARTITIONS=2);
             INSERT INTO bids (auction, price) VALUES (1, 10);
             INSERT INTO bids (auction, price) VALUES (1, 20);
             INSERT INTO bids (auction, price) VALUES (2, 5);
             SET 'auto.offset.reset'='earliest';
             CREATE TABLE totals AS SELECT auction, COUNT(*) AS n, SUM(price) AS total
               FROM bids GROUP BY auction;
             CREATE TABLE hourly AS SELECT auction, COUNT(*) AS n
               FROM bids WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY auction;
             CREATE TABLE copy (auction BIGINT PRIMARY KEY, n BIGINT, total BIGINT)
               WITH (KAFKA_TOPIC='TOTALS', VALUE_FORMAT='JSON');",
    );
    assert!(out.contains("Created query"), "{out}");
    let rows = |statement: &str| -> Vec<Vec<String>> {
        sql(d, statement)
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1) // the header
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    };
    let mut all = rows("SELECT auction, n, total FROM totals;");
    all.sort();
    assert_eq!(all, [["1", "2", "30"], ["2", "1", "5"]]);
    assert_eq!(
        rows("SELECT total FROM totals WHERE auction = 1;"),
        [["30"]]
    );
    let windows = rows("SELECT auction, n FROM hourly WHERE auction = 2 AND WINDOWSTART >= 0;");
    assert_eq!(windows, [["2", "1"]]);
    // A table over a topic: the latest row of each key, read from the log.
    let mut copy = rows("SELECT auction, total FROM copy;");
    copy.sort();
    assert_eq!(copy, [["1", "30"], ["2", "5"]]);
}

#[test]
fn kill_dash_nine_mid_stream_table_join_loses_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sql(
        d,
        "CREATE STREAM orders (id BIGINT KEY, item BIGINT) \
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=2);
             CREATE TABLE items (id BIGINT PRIMARY KEY, name STRING) \
               WITH (KAFKA_TOPIC='items', KEY_FORMAT='JSON', VALUE_FORMAT='JSON', PARTITIONS=2);",
    );
    // The table first (older records), then the orders.
    let items = named_items(1000);
    ok(
        d,
        &["produce", "items", "--key-separator", "|"],
        Some(&items),
    );
    let n = 200_000u64;
    let orders: String = (0..n)
        .map(|i| format!("{{\"ITEM\":{}}}\n", i % 1500))
        .collect();
    ok(d, &["produce", "orders", "--partition", "1"], Some(&orders));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (child, _output) = start_query(
        d,
        "SET 'auto.offset.reset'='earliest'; \
         CREATE STREAM named AS SELECT o.item, AS_VALUE(o.item) AS it, i.name FROM orders o \
           LEFT JOIN items i ON o.item = i.id;",
        deadline,
    );
    // Kill once some output is on disk.
    kill_when(child, || log_bytes(d, "NAMED") > 0, deadline);
    // The next process rebuilds the table, resumes the orders and catches up.
    sql(d, "SHOW QUERIES;");
    let out = values(d, "NAMED");
    // Each order's output: its item, and the item's name when the table has it.
    let mut per_item: BTreeMap<i64, (u64, bool)> = BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let item = v["IT"].as_i64().unwrap();
        let named = v["NAME"].as_str().map(str::to_string);
        assert_eq!(named.is_some(), item < 1000, "{line}");
        if let Some(name) = named {
            assert_eq!(name, format!("item-{item}"));
        }
        per_item.entry(item).or_default().0 += 1;
    }
    assert_eq!(per_item.len(), 1500, "every item's orders came through");
    // At-least-once: every order at least once (rows after the last commit may repeat).
    for (item, (count, _)) in &per_item {
        let expected = (0..n).filter(|i| i % 1500 == *item as u64).count() as u64;
        assert!(*count >= expected, "item {item}: {count} < {expected}");
    }
    eprintln!("{} rows for {n} orders", out.lines().count());
}

#[test]
fn push_queries_over_a_join_stream_joined_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = sql(d, "CREATE STREAM orders (id BIGINT KEY, item BIGINT) \
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE items (id BIGINT PRIMARY KEY, name STRING) \
               WITH (KAFKA_TOPIC='items', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO items (id, name) VALUES (1, 'pen');
             INSERT INTO orders (id, item) VALUES (10, 1);
             INSERT INTO orders (id, item) VALUES (11, 2);
             SET 'auto.offset.reset'='earliest';
             SELECT o.id, i.name FROM orders o LEFT JOIN items i ON o.item = i.id EMIT CHANGES LIMIT 2;");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows[0].contains("O_ID") && rows[0].contains("NAME"),
        "{out}"
    );
    assert!(rows[1].contains("10") && rows[1].contains("pen"), "{out}");
    assert!(rows[2].contains("11") && rows[2].contains("null"), "{out}");
}

#[test]
fn kill_dash_nine_mid_three_way_join_loses_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sql(d, "CREATE STREAM orders (id BIGINT KEY, item BIGINT, customer BIGINT) \
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=2);
             CREATE TABLE items (id BIGINT PRIMARY KEY, name STRING) \
               WITH (KAFKA_TOPIC='items', KEY_FORMAT='JSON', VALUE_FORMAT='JSON', PARTITIONS=2);
             CREATE TABLE customers (id BIGINT PRIMARY KEY, city STRING) \
               WITH (KAFKA_TOPIC='customers', KEY_FORMAT='JSON', VALUE_FORMAT='JSON', PARTITIONS=2);");
    // The tables first (older records), then the orders.
    let items = named_items(1000);
    ok(
        d,
        &["produce", "items", "--key-separator", "|"],
        Some(&items),
    );
    let customers: String = (0..300)
        .map(|i| format!("{i}|{{\"CITY\":\"city-{}\"}}\n", i % 7))
        .collect();
    ok(
        d,
        &["produce", "customers", "--key-separator", "|"],
        Some(&customers),
    );
    let n = 150_000u64;
    let orders: String = (0..n)
        .map(|i| format!("{{\"ITEM\":{},\"CUSTOMER\":{}}}\n", i % 1000, i % 400))
        .collect();
    ok(d, &["produce", "orders", "--partition", "1"], Some(&orders));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (child, _output) = start_query(
        d,
        "SET 'auto.offset.reset'='earliest'; \
         CREATE STREAM enriched AS SELECT o.customer, AS_VALUE(o.item) AS it, \
             AS_VALUE(o.customer) AS cu, i.name, c.city \
           FROM orders o JOIN items i ON o.item = i.id \
           LEFT JOIN customers c ON o.customer = c.id;",
        deadline,
    );
    kill_when(child, || log_bytes(d, "ENRICHED") > 0, deadline);
    sql(d, "SHOW QUERIES;");
    let out = values(d, "ENRICHED");
    let mut per_customer: BTreeMap<i64, u64> = BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (item, customer) = (v["IT"].as_i64().unwrap(), v["CU"].as_i64().unwrap());
        assert_eq!(v["NAME"], format!("item-{item}"), "{line}");
        match v["CITY"].as_str() {
            Some(city) => assert_eq!(city, format!("city-{}", customer % 7), "{line}"),
            None => assert!(customer >= 300, "{line}"),
        }
        *per_customer.entry(customer).or_default() += 1;
    }
    // At-least-once: every order at least once.
    assert_eq!(
        per_customer.len(),
        400,
        "every customer's orders came through"
    );
    for (customer, count) in &per_customer {
        let expected = (0..n).filter(|i| i % 400 == *customer as u64).count() as u64;
        assert!(
            *count >= expected,
            "customer {customer}: {count} < {expected}"
        );
    }
}

#[test]
fn foreign_key_join_follows_changes_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sql(
        d,
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner BIGINT) \
               WITH (KAFKA_TOPIC='accounts', VALUE_FORMAT='JSON', PARTITIONS=2);
             CREATE TABLE owners (id BIGINT PRIMARY KEY, name STRING) \
               WITH (KAFKA_TOPIC='owners', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO owners (id, name) VALUES (1, 'ann');
             INSERT INTO owners (id, name) VALUES (2, 'bob');
             INSERT INTO accounts (id, owner) VALUES (10, 1);
             INSERT INTO accounts (id, owner) VALUES (11, 1);
             INSERT INTO accounts (id, owner) VALUES (12, 2);
             INSERT INTO accounts (id, owner) VALUES (13, 3);
             SET 'auto.offset.reset'='earliest';
             CREATE TABLE named AS SELECT a.id AS account, o.name FROM accounts a \
               LEFT JOIN owners o ON a.owner = o.id;
             INSERT INTO owners (id, name) VALUES (1, 'anna');
             INSERT INTO accounts (id, owner) VALUES (12, 1);
             INSERT INTO owners (id, name) VALUES (3, 'cy');",
    );
    // The last value per account: every account follows its owner's renames and moves.
    let out = sql(d, "SELECT * FROM named WHERE account >= 10;");
    for (account, name) in [("10", "anna"), ("11", "anna"), ("12", "anna"), ("13", "cy")] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!(" {account} ")) && l.contains(name)),
            "account {account} is {name}: {out}"
        );
    }
    assert!(!out.contains("bob"), "{out}");
}

#[test]
fn kill_dash_nine_mid_stream_stream_join_keeps_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sql(
        d,
        "CREATE STREAM l (k BIGINT, lv BIGINT, ts BIGINT) \
               WITH (KAFKA_TOPIC='l', VALUE_FORMAT='JSON', PARTITIONS=1, TIMESTAMP='ts');
             CREATE STREAM r (k BIGINT, rv BIGINT, ts BIGINT) \
               WITH (KAFKA_TOPIC='r', VALUE_FORMAT='JSON', PARTITIONS=1, TIMESTAMP='ts');",
    );
    // Left record i has key i; right record j has key (j + n/2) % n, so each record's
    // partner is a quarter to three quarters of the input away: read in another step
    // than it, it must still be in the join window after a restart, or the pair is lost.
    let n = 400_000u64;
    // Recent times, so the sink's retention keeps what the join writes.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 3_600_000;
    let lefts: String = (0..n)
        .map(|i| format!("{{\"K\":{i},\"LV\":{i},\"TS\":{}}}\n", base + i))
        .collect();
    let rights: String = (0..n)
        .map(|j| {
            let k = (j + n / 2) % n;
            format!("{{\"K\":{k},\"RV\":{j},\"TS\":{}}}\n", base + n + j)
        })
        .collect();
    ok(d, &["produce", "l"], Some(&lefts));
    ok(d, &["produce", "r"], Some(&rights));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (child, _output) = start_query(
        d,
        "SET 'auto.offset.reset'='earliest'; \
         CREATE STREAM pairs AS SELECT l.k, l.lv, r.rv FROM l JOIN r WITHIN 1 HOURS ON l.k = r.k;",
        deadline,
    );
    kill_when(child, || log_bytes(d, "PAIRS") > 0, deadline);
    sql(d, "SHOW QUERIES;");
    let out = values(d, "PAIRS");
    let mut pairs = std::collections::HashSet::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (lv, rv) = (v["LV"].as_u64().unwrap(), v["RV"].as_u64().unwrap());
        assert_eq!(lv, (rv + n / 2) % n, "{line}");
        pairs.insert((lv, rv));
    }
    // Every pair at least once.
    assert_eq!(pairs.len() as u64, n, "{} rows", out.lines().count());
    eprintln!("{} rows for {} pairs", out.lines().count(), pairs.len());
}
