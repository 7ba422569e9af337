//! ksqlDB's REST query-validation tests (`rest-query-validation-tests`) against a real
//! REST server over HTTP, as ksqlDB's `RestTestExecutor` runs them: the statements before
//! the first SELECT go to `/ksql` as one request, inputs are produced (after the push query
//! is running with `waitForActivePushQuery`), each SELECT goes to `/query`, and the
//! responses are compared with the expected ones — subset matching, `|startsWith` keys,
//! the `{STATEMENT}` macro, rows as a multiset unless `verifyOrder` — then the output
//! topics as in the engine's runner.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_engine::Engine;
use sluice_engine::conformance::compare::value_mismatch;
use sluice_engine::conformance::json as qtt_json;
use sluice_engine::conformance::model::Variant;
use sluice_engine::conformance::runner::{
    Status, case_engine, check_outputs, produce_input, property_text, skip_reason,
};
use sluice_storage::EventLog;

use super::client::Client;
use super::{RestConfig, RestServer, lock};

/// How long a query's response may take to reach what the case expects.
const QUERY_DEADLINE: Duration = Duration::from_secs(10);

/// Runs one REST case variant against a fresh server.
pub fn run_variant(v: &Variant<'_>) -> Status {
    if let Some(why) = skip_reason(v) {
        return Status::Skip(why);
    }
    let raw: Value = match serde_json::from_str(&v.case.raw.to_string()) {
        Ok(raw) => raw,
        Err(e) => return Status::Fail(format!("the case does not read back as JSON: {e}")),
    };
    if raw.get("testPullWithProtoFormat") == Some(&Value::Bool(true)) {
        return Status::Skip("protobuf query responses".into());
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(v, &raw))) {
        Ok(Ok(())) => Status::Pass,
        Ok(Err(why)) => Status::Fail(why),
        Err(_) => Status::Fail("the server panicked".into()),
    }
}

fn run(v: &Variant<'_>, raw: &Value) -> Result<(), String> {
    let (_dir, log, mut engine) = case_engine(v)?;
    // ksqlDB's REST test server runs with scalable push queries on.
    engine.set_property("ksql.query.push.v2.enabled", "true");
    // The case's properties also go with each request, as ksqlDB's harness sends them.
    let properties: serde_json::Map<String, Value> = v
        .properties
        .iter()
        .map(|(k, val)| (k.clone(), Value::String(property_text(val))))
        .collect();
    let engine = Arc::new(Mutex::new(engine));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let server = RestServer::start(listener, engine.clone(), RestConfig::default())
        .map_err(|e| e.to_string())?;
    let client = Client::new(&server.local_addr().to_string())?.with_timeout(QUERY_DEADLINE);
    let result = exchange(v, raw, &client, &engine, &log, &properties);
    server.stop();
    result?;
    check_outputs(&lock(&engine), &log, v)
}

/// What a statement answered: `/ksql`'s entities, a query's elements, or an error body.
enum Answer {
    Admin(Vec<Value>),
    Query(Vec<Value>),
    Error(u16, Value),
}

fn exchange(
    v: &Variant<'_>,
    raw: &Value,
    client: &Client,
    engine: &Arc<Mutex<Engine>>,
    log: &Arc<dyn EventLog>,
    properties: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    let is_query = |s: &str| s.trim_start().to_uppercase().starts_with("SELECT");
    let first_query = v
        .statements
        .iter()
        .position(|s| is_query(s))
        .unwrap_or(v.statements.len());
    if v.statements[first_query..].iter().any(|s| !is_query(s)) {
        return Err("an admin statement follows a query (not a REST case)".into());
    }
    let mut answers: Vec<Answer> = Vec::new();
    if first_query > 0 {
        let sql = v.statements[..first_query].join("\n");
        let reply = client.post(
            "/ksql",
            &json!({"ksql": sql, "streamsProperties": properties}),
        )?;
        let body = reply.json()?;
        if reply.status == 200 {
            match body {
                Value::Array(entities) => answers.push(Answer::Admin(entities)),
                other => return Err(format!("/ksql answered {other}")),
            }
        } else {
            answers.push(Answer::Error(reply.status, body));
        }
    }
    let failed_admin = matches!(answers.last(), Some(Answer::Error(..)));
    let wait_for_push = raw
        .pointer("/inputConditions/waitForActivePushQuery")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let produce = || -> Result<(), String> {
        for r in &v.case.inputs {
            produce_input(&lock(engine), log, r)?;
        }
        lock(engine)
            .run_until_idle()
            .map_err(|e| format!("processing failed: {e}"))
    };
    if !failed_admin {
        if !wait_for_push {
            produce()?;
        }
        for (n, sql) in v.statements[first_query..].iter().enumerate() {
            let expected = expected_query(raw, first_query + n);
            let expected_rows = expected.map_or(0, |items| {
                items.iter().filter(|i| i.get("row").is_some()).count()
            });
            let expects_end = expected.is_none_or(|items| {
                items
                    .iter()
                    .any(|i| i.get("finalMessage").is_some() || i.get("errorMessage").is_some())
            });
            let answer = query(client, sql, properties, expected_rows, expects_end, || {
                if wait_for_push && n == 0 {
                    produce()
                } else {
                    Ok(())
                }
            })?;
            let failed = matches!(answer, Answer::Error(..));
            answers.push(answer);
            if failed {
                break;
            }
        }
    }
    compare(v, raw, &answers, first_query)
}

/// The `query` responses a case expects for statement `i`.
fn expected_query(raw: &Value, i: usize) -> Option<&Vec<Value>> {
    raw.get("responses")?.get(i)?.get("query")?.as_array()
}

/// Runs a query on `/query`; `started` runs once its header arrived. Reads until the
/// final message (when the case expects one), else until `expected_rows` rows, or the
/// deadline.
fn query(
    client: &Client,
    sql: &str,
    properties: &serde_json::Map<String, Value>,
    expected_rows: usize,
    expects_end: bool,
    started: impl FnOnce() -> Result<(), String>,
) -> Result<Answer, String> {
    let body = json!({"ksql": sql, "streamsProperties": properties}).to_string();
    let mut response =
        client.post_streaming("/query", body.as_bytes(), "application/vnd.ksql.v1+json")?;
    if response.status != 200 {
        let reply = response.whole()?;
        return Ok(Answer::Error(reply.status, reply.json()?));
    }
    let mut text = String::new();
    let mut started = Some(started);
    let deadline = Instant::now() + QUERY_DEADLINE;
    loop {
        let elements = parse_elements(&text);
        if let Some(run) = started.take_if(|_| !elements.is_empty()) {
            run()?;
        }
        let rows = elements.iter().filter(|e| e.get("row").is_some()).count();
        let finished = elements
            .iter()
            .any(|e| e.get("finalMessage").is_some() || e.get("errorMessage").is_some());
        if finished
            || (!expects_end && rows >= expected_rows && text.ends_with('}'))
            || Instant::now() > deadline
        {
            return Ok(Answer::Query(elements));
        }
        match response.next_chunk() {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(None) => return Ok(Answer::Query(parse_elements(&text))),
            // The read timeout: what arrived is the answer.
            Err(_) => return Ok(Answer::Query(elements)),
        }
    }
}

/// `/query`'s array elements, one per line, from what has arrived so far.
fn parse_elements(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix('[').unwrap_or(line);
            let line = line.strip_suffix(']').unwrap_or(line);
            let line = line.strip_suffix(',').unwrap_or(line);
            serde_json::from_str::<Value>(line).ok()
        })
        .collect()
}

fn compare(
    v: &Variant<'_>,
    raw: &Value,
    answers: &[Answer],
    first_query: usize,
) -> Result<(), String> {
    let expected_error = raw.get("expectedError");
    let last_error = answers.iter().find_map(|a| match a {
        Answer::Error(status, body) => Some((*status, body)),
        _ => None,
    });
    match (expected_error, last_error) {
        (Some(want), Some((status, body))) => return error_matches(want, status, body),
        (Some(want), None) => return Err(format!("expected an error: {want}")),
        (None, Some((status, body))) => return Err(format!("statement failed ({status}): {body}")),
        (None, None) => {}
    }
    let responses = raw
        .get("responses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let verify_order = raw
        .pointer("/outputConditions/verifyOrder")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Answers by statement: entity i of the admin request answers statement i, then one
    // answer per query.
    let mut by_statement: Vec<Option<Value>> = vec![None; v.statements.len()];
    let mut next_query = first_query;
    for answer in answers {
        match answer {
            Answer::Admin(entities) => {
                for (slot, entity) in by_statement.iter_mut().zip(entities) {
                    *slot = Some(entity.clone());
                }
            }
            Answer::Query(elements) => {
                if let Some(slot) = by_statement.get_mut(next_query) {
                    *slot = Some(Value::Array(elements.clone()));
                }
                next_query += 1;
            }
            Answer::Error(..) => {}
        }
    }
    for (i, expected) in responses.iter().enumerate() {
        let statement = v.statements.get(i).map(String::as_str).unwrap_or_default();
        if let Some(admin) = expected.get("admin") {
            let got = by_statement
                .get(i)
                .and_then(Option::as_ref)
                .ok_or_else(|| format!("no entity answered statement {i}"))?;
            subset(admin, got, statement)
                .map_err(|why| format!("statement {i}: {why}\n  got: {got}"))?;
        } else if let Some(items) = expected.get("query").and_then(Value::as_array) {
            let got = by_statement
                .get(i)
                .and_then(Option::as_ref)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("no query answered statement {i}"))?;
            query_matches(items, got, statement, verify_order)
                .map_err(|why| format!("statement {i}: {why}\n  got: {got:?}"))?;
        } else {
            return Err(format!("unsupported expected response: {expected}"));
        }
    }
    Ok(())
}

fn error_matches(want: &Value, status: u16, body: &Value) -> Result<(), String> {
    if let Some(s) = want.get("status").and_then(Value::as_u64)
        && s != u64::from(status)
    {
        return Err(format!("expected HTTP {s}, got {status}: {body}"));
    }
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    if let Some(m) = want.get("message").and_then(Value::as_str)
        && !message.contains(m)
    {
        return Err(format!(
            "expected an error containing \"{m}\", got \"{message}\""
        ));
    }
    if let Some(kind) = want.get("type").and_then(Value::as_str) {
        let got = body.get("@type").and_then(Value::as_str).unwrap_or("");
        let wanted = if kind.ends_with("KsqlStatementErrorMessage") {
            "statement_error"
        } else {
            "generic_error"
        };
        if got != wanted && !(wanted == "generic_error" && got == "statement_error") {
            return Err(format!("expected a {wanted}, got {body}"));
        }
    }
    Ok(())
}

/// A query's elements against the expected ones: the header and final message as subsets,
/// the rows equal (as a multiset unless `verify_order`).
fn query_matches(
    expected: &[Value],
    actual: &[Value],
    statement: &str,
    verify_order: bool,
) -> Result<(), String> {
    let rows = |items: &[Value]| -> Vec<Value> {
        items.iter().filter_map(|i| i.get("row").cloned()).collect()
    };
    for kind in ["header", "finalMessage"] {
        if let Some(want) = expected.iter().find_map(|i| i.get(kind)) {
            let got = actual
                .iter()
                .find_map(|i| i.get(kind))
                .ok_or_else(|| format!("no {kind}"))?;
            subset(want, got, statement).map_err(|why| format!("{kind}: {why}"))?;
        }
    }
    let (want, mut got) = (rows(expected), rows(actual));
    if want.len() != got.len() {
        return Err(format!("expected {} rows, got {}", want.len(), got.len()));
    }
    for (n, w) in want.iter().enumerate() {
        let found = if verify_order {
            row_matches(w, &got[0]).then_some(0)
        } else {
            got.iter().position(|g| row_matches(w, g))
        };
        match found {
            Some(at) => {
                got.remove(at);
            }
            None => return Err(format!("row {n} {w} not found")),
        }
    }
    Ok(())
}

fn row_matches(want: &Value, got: &Value) -> bool {
    let (Ok(w), Ok(g)) = (
        qtt_json::parse(&want["columns"].to_string()),
        qtt_json::parse(&got["columns"].to_string()),
    ) else {
        return false;
    };
    let tombstone = |v: &Value| v.get("tombstone").and_then(Value::as_bool).unwrap_or(false);
    value_mismatch(&w, &g, false).is_none() && tombstone(want) == tombstone(got)
}

/// `want` is contained in `got`: objects key by key (`key|startsWith` compares a prefix),
/// arrays element by element, `{STATEMENT}` standing for the statement's text.
fn subset(want: &Value, got: &Value, statement: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, wv) in w {
                if let Some(name) = key
                    .strip_suffix("|startsWith")
                    .or_else(|| key.strip_suffix("|starts_with"))
                {
                    let prefix = wv
                        .as_str()
                        .unwrap_or_default()
                        .replace("{STATEMENT}", statement);
                    let actual = g.get(name).and_then(Value::as_str).unwrap_or_default();
                    if !actual.starts_with(&prefix) {
                        return Err(format!(
                            "{name}: \"{actual}\" does not start with \"{prefix}\""
                        ));
                    }
                    continue;
                }
                let gv = g.get(key).ok_or_else(|| format!("missing \"{key}\""))?;
                subset(wv, gv, statement).map_err(|why| format!("{key}.{why}"))?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{} elements expected, got {}", w.len(), g.len()));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(wv, gv, statement).map_err(|why| format!("[{i}]{why}"))?;
            }
            Ok(())
        }
        (Value::String(w), Value::String(g)) if w.replace("{STATEMENT}", statement) == *g => Ok(()),
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => Ok(()),
        (w, g) if w == g => Ok(()),
        (w, g) => Err(format!(" expected {w}, got {g}")),
    }
}
