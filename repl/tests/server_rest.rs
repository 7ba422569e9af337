//! ksqlDB's REST API of `sluice server`, over real HTTP: statements through `/ksql` with
//! ksqlDB's entities and errors, a push query on `/query-stream` fed by `/inserts-stream`
//! and ended by `/close-query`, pull and LIMIT queries on `/query`, `/info`,
//! `/healthcheck`, `/status`, malformed requests, basic auth, and a clean SIGTERM with a
//! query still streaming and an inserts stream left open.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_server::rest::client::Client;

mod common;
use common::server::Server;

fn client(server: &Server) -> Client {
    Client::new(server.http.as_deref().unwrap())
        .unwrap()
        .with_timeout(Duration::from_secs(60))
}

fn ksql(c: &Client, sql: &str) -> (u16, Value) {
    let reply = c.post("/ksql", &json!({"ksql": sql})).unwrap();
    (reply.status, reply.json().unwrap())
}

/// `/query`'s elements (the chunked array, parsed whole).
fn query(c: &Client, sql: &str, properties: Value) -> Vec<Value> {
    let reply = c
        .post(
            "/query",
            &json!({"ksql": sql, "streamsProperties": properties}),
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    match reply.json().unwrap() {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn ksql_statements_push_pull_inserts_and_close_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = client(&server);

    let info = c.get("/info").unwrap().json().unwrap();
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING", "{info}");
    let health = c.get("/healthcheck").unwrap().json().unwrap();
    assert_eq!(health["isHealthy"], true, "{health}");

    let (status, entities) = ksql(
        &c,
        "CREATE STREAM clicks (user STRING KEY, page STRING) \
           WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE views AS SELECT user, COUNT(*) AS n FROM clicks GROUP BY user;",
    );
    assert_eq!(status, 200, "{entities}");
    assert_eq!(entities[0]["@type"], "currentStatus");
    assert_eq!(entities[0]["commandId"], "stream/CLICKS/create");
    assert_eq!(entities[0]["commandStatus"]["status"], "SUCCESS");
    assert_eq!(entities[1]["commandId"], "table/VIEWS/create");
    let query_id = entities[1]["commandStatus"]["queryId"].as_str().unwrap();
    assert!(query_id.starts_with("CTAS_VIEWS"), "{entities}");
    let status = c.get("/status/table/VIEWS/create").unwrap().json().unwrap();
    assert_eq!(status["status"], "SUCCESS", "{status}");

    let (_, shown) = ksql(&c, "SHOW STREAMS;");
    assert_eq!(shown[0]["@type"], "streams");
    assert_eq!(shown[0]["streams"][0]["name"], "CLICKS", "{shown}");
    let (_, described) = ksql(&c, "DESCRIBE CLICKS;");
    let fields = &described[0]["sourceDescription"]["fields"];
    assert_eq!(
        fields[0],
        json!({"name": "USER", "type": "KEY",
        "schema": {"type": "STRING", "fields": null, "memberSchema": null}})
    );

    // ksqlDB's errors: a query sent to /ksql, a statement that fails, bad JSON.
    let (status, e) = ksql(&c, "SELECT * FROM clicks EMIT CHANGES;");
    assert_eq!(
        (status, e["error_code"].as_i64()),
        (400, Some(40002)),
        "{e}"
    );
    let (status, e) = ksql(
        &c,
        "CREATE STREAM clicks (a INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON', PARTITIONS=1);",
    );
    assert_eq!(
        (status, e["@type"].as_str()),
        (400, Some("statement_error")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("CLICKS"), "{e}");
    let bad = c
        .post_streaming("/ksql", b"{not json", "application/json")
        .unwrap()
        .whole()
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json().unwrap()["error_code"], 40000);

    // A push query over /query-stream, fed through /inserts-stream.
    let mut push = c
        .post_streaming(
            "/query-stream",
            json!({"sql": "SELECT * FROM clicks EMIT CHANGES;"})
                .to_string()
                .as_bytes(),
            "application/vnd.ksqlapi.delimited.v1",
        )
        .unwrap();
    assert_eq!(push.status, 200);
    let mut received = String::new();
    let mut next_line = |push: &mut sluice_server::rest::client::Streaming| -> Option<String> {
        loop {
            if let Some(i) = received.find('\n') {
                let line = received[..i].to_string();
                received.drain(..=i);
                return Some(line);
            }
            let chunk = push.next_chunk().unwrap()?;
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let metadata: Value = serde_json::from_str(&next_line(&mut push).unwrap()).unwrap();
    assert_eq!(
        metadata["columnNames"],
        json!(["USER", "PAGE"]),
        "{metadata}"
    );
    assert_eq!(metadata["columnTypes"], json!(["STRING", "STRING"]));
    let push_id = metadata["queryId"].as_str().unwrap().to_string();

    let rows = "{\"target\":\"CLICKS\"}\n\
                {\"USER\":\"u1\",\"PAGE\":\"/home\"}\n\
                {\"user\":\"u2\",\"page\":\"/docs\"}\n\
                {\"USER\":\"u1\",\"PAGE\":\"/pricing\"}\n\
                {\"USER\":\"u3\",\"NOPE\":1}\n";
    let acks = c
        .post_streaming("/inserts-stream", rows.as_bytes(), "application/json")
        .unwrap()
        .whole()
        .unwrap();
    let acks: Vec<Value> = acks
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(acks.len(), 4, "{acks:?}");
    for (seq, ack) in acks.iter().take(3).enumerate() {
        assert_eq!(*ack, json!({"status": "ok", "seq": seq}));
    }
    assert_eq!(acks[3]["status"], "error", "{acks:?}");

    let pushed: Vec<String> = (0..3).map(|_| next_line(&mut push).unwrap()).collect();
    assert_eq!(
        pushed,
        [
            r#"["u1","/home"]"#,
            r#"["u2","/docs"]"#,
            r#"["u1","/pricing"]"#
        ]
    );
    let closed = c
        .post("/close-query", &json!({"queryId": push_id}))
        .unwrap();
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(next_line(&mut push), None, "the stream ends once closed");

    // A pull query on the materialized table, once the aggregation has caught up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pulled = loop {
        let items = query(&c, "SELECT * FROM views WHERE user = 'u1';", json!({}));
        if items.len() == 3 && items[1]["row"]["columns"] == json!(["u1", 2]) {
            break items;
        }
        assert!(Instant::now() < deadline, "{items:?}");
        std::thread::park_timeout(Duration::from_millis(50));
    };
    assert_eq!(
        pulled[0]["header"]["schema"],
        "`USER` STRING KEY, `N` BIGINT"
    );
    assert_eq!(pulled[2], json!({"finalMessage": "Query Completed"}));

    // A push query with LIMIT from the start of the stream (a per-request property).
    let limited = query(
        &c,
        "SELECT page FROM clicks EMIT CHANGES LIMIT 2;",
        json!({"ksql.streams.auto.offset.reset": "earliest"}),
    );
    assert_eq!(limited[0]["header"]["schema"], "`PAGE` STRING");
    assert_eq!(limited[1], json!({"row": {"columns": ["/home"]}}));
    assert_eq!(limited[2], json!({"row": {"columns": ["/docs"]}}));
    assert_eq!(limited[3], json!({"finalMessage": "Limit Reached"}));

    // SIGTERM with a push query still streaming: the server ends it and stops cleanly.
    let mut open = c
        .post_streaming(
            "/query",
            json!({"ksql": "SELECT * FROM clicks EMIT CHANGES;"})
                .to_string()
                .as_bytes(),
            "application/vnd.ksql.v1+json",
        )
        .unwrap();
    assert!(open.next_chunk().unwrap().is_some(), "the header arrives");
    // ...and an inserts stream whose client went quiet without ending its body.
    let mut quiet = std::net::TcpStream::connect(
        server
            .http
            .as_deref()
            .unwrap()
            .trim_start_matches("http://"),
    )
    .unwrap();
    let target = "{\"target\":\"CLICKS\"}\n";
    write!(
        quiet,
        "POST /inserts-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{target}\r\n",
        target.len()
    )
    .unwrap();
    let mut head = [0u8; 12];
    quiet.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the stream is answered at once");
    let (clean, printed) = server.terminate();
    assert!(clean && printed.contains("Stopped."), "{printed}");
}

/// A server in `dir` whose REST API requires basic auth from a password file of `lines`.
fn with_passwords(dir: &std::path::Path, lines: &str) -> Server {
    let passwords = dir.join("passwords");
    std::fs::write(&passwords, lines).unwrap();
    Server::start_with(
        &dir.join("data"),
        &[
            "server",
            "--kafka",
            "127.0.0.1:0",
            "--http-auth",
            passwords.to_str().unwrap(),
        ],
    )
}

#[test]
fn basic_auth_guards_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_passwords(dir.path(), "# users\nalice: s3cret,admin\n");
    let anonymous = client(&server);
    let reply = anonymous.get("/info").unwrap();
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json().unwrap()["error_code"], 40100);
    assert!(reply.header("WWW-Authenticate").is_some());
    let wrong = client(&server).with_basic_auth("alice", "guess");
    assert_eq!(
        wrong
            .post("/ksql", &json!({"ksql": "SHOW STREAMS;"}))
            .unwrap()
            .status,
        401
    );
    let alice = client(&server).with_basic_auth("alice", "s3cret");
    let reply = alice
        .post("/ksql", &json!({"ksql": "SHOW STREAMS;"}))
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json().unwrap()[0]["@type"], "streams");
}

#[test]
fn sluice_sql_runs_statements_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_passwords(dir.path(), "alice:s3cret\n");
    let url = server.http.clone().unwrap();
    let with_user = url.replace("http://", "http://alice:s3cret@");
    // No data directory is opened: the statements run in the server.
    let elsewhere = dir.path().join("unused");
    let out = common::ok(
        &elsewhere,
        &[
            "--server",
            &with_user,
            "sql",
            "-e",
            "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=2);
             INSERT INTO s (id, v) VALUES (1, 'one');
             INSERT INTO s (id, v) VALUES (2, 'two');
             SET 'auto.offset.reset'='earliest';
             CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;
             SELECT id, v FROM s EMIT CHANGES LIMIT 2;
             SHOW TABLES;",
        ],
        None,
    );
    assert!(out.contains(" Stream created"), "{out}");
    assert!(out.contains(" Created query with ID CTAS_COUNTS_"), "{out}");
    let mut rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("| one") || l.contains("| two"))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "| 1            | one          |",
            "| 2            | two          |"
        ],
        "{out}"
    );
    assert!(out.contains("Limit Reached"), "{out}");
    assert!(
        out.contains(" COUNTS     | COUNTS      | KAFKA      | JSON         | false"),
        "{out}"
    );
    assert!(!elsewhere.exists(), "the data directory was opened");
    // The server's table answers a pull query once the persistent query caught up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = common::ok(
            &elsewhere,
            &[
                "--server",
                &with_user,
                "sql",
                "-e",
                "SELECT * FROM counts WHERE id = 2;",
            ],
            None,
        );
        if out.contains("| 2            | 1            |") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        std::thread::yield_now();
    }
    // Wrong credentials and statement errors are one line and a failure.
    let wrong = common::err(
        &elsewhere,
        &["--server", &url, "sql", "-e", "SHOW STREAMS;"],
        None,
    );
    assert!(wrong.contains("401"), "{wrong}");
    let bad = common::err(
        &elsewhere,
        &["--server", &with_user, "sql", "-e", "DROP STREAM nope;"],
        None,
    );
    assert!(bad.contains("nope") || bad.contains("NOPE"), "{bad}");
}

/// Sends raw bytes on a fresh connection and reads whatever comes back until the server
/// closes it (or 10 s pass): the answer's status line, if any.
fn raw_exchange(addr: &str, bytes: &[u8], close_write: bool) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    if close_write {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn bad_input_at_the_rest_port_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = client(&server);
    let addr = server
        .http
        .as_deref()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    // A client that sends half a request and stays: it must not hold anyone else up.
    let mut lingering = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut lingering, b"POST /ksql HTTP/1.1\r\nContent-Le").unwrap();

    // Random bytes, then a request line that is not HTTP: 400 or a closed connection.
    let mut noise = Vec::new();
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let answer = raw_exchange(&addr, &noise, true);
    assert!(answer.is_empty() || answer.contains(" 400 "), "{answer}");
    let answer = raw_exchange(&addr, b"HELLO THERE\r\n\r\n", true);
    assert!(answer.is_empty() || answer.contains(" 400 "), "{answer}");
    // A body announced as 10 GB is refused before it is read.
    let answer = raw_exchange(
        &addr,
        b"POST /ksql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{",
        false,
    );
    assert!(answer.contains(" 413 "), "{answer}");
    // A body cut short: the server waits for the rest, then gives up when the client
    // closes its side; nothing is run.
    let answer = raw_exchange(
        &addr,
        b"POST /ksql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ksql\": \"CREATE STR",
        true,
    );
    assert!(!answer.contains(" 200 "), "{answer}");
    // JSON nested far deeper than any request: an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = c
        .post_streaming("/ksql", deep.as_bytes(), "application/json")
        .unwrap()
        .whole()
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    // Invalid UTF-8 inside a string, wrong field types, unknown endpoints and methods.
    let reply = c
        .post_streaming(
            "/ksql",
            b"{\"ksql\": \"SHOW \xff\xfe STREAMS;\"}",
            "application/json",
        )
        .unwrap()
        .whole()
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    let (status, body) = ksql_raw(&c, &json!({"ksql": 42}));
    assert_eq!(status, 400, "{body}");
    let reply = c
        .post("/query-stream", &json!({"sql": ["SELECT"]}))
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = c
        .post("/close-query", &json!({"queryId": "NOPE_1"}))
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(c.get("/ksql").unwrap().status, 405);
    // Garbage rows on /inserts-stream are error acks; the stream and the server go on.
    ksql(
        &c,
        "CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);",
    );
    let body = b"{\"target\": \"S\"}\nnot json at all\n{\"ID\": \"x\", \"V\": 1}\n{\"ID\": 1, \"V\": \"ok\"}\n";
    let acks = c
        .post_streaming("/inserts-stream", body, "application/json")
        .unwrap()
        .whole()
        .unwrap();
    let acks: Vec<Value> = acks
        .body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert_eq!(acks[0]["status"], "error", "{acks:?}");
    assert_eq!(acks[1]["status"], "error", "{acks:?}");
    assert_eq!(acks[2]["status"], "ok", "{acks:?}");

    // Through all of it, with the half-request still open, the server answers.
    let reply = c.get("/healthcheck").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rows = query(
        &c,
        "SELECT * FROM s EMIT CHANGES LIMIT 1;",
        json!({"auto.offset.reset": "earliest"}),
    );
    assert!(
        rows.iter()
            .any(|r| r.pointer("/row/columns") == Some(&json!([1, "ok"]))),
        "{rows:?}"
    );
    drop(lingering);
    let (clean, printed) = server.terminate();
    assert!(clean, "{printed}");
}

fn ksql_raw(c: &Client, body: &Value) -> (u16, String) {
    let reply = c.post("/ksql", body).unwrap();
    (reply.status, reply.body)
}
