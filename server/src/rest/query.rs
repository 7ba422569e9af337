//! `POST /query` (ksqlDB's chunked JSON array of header, rows and a final message),
//! `POST /query-stream` (a metadata line then one JSON array per row, or one JSON array
//! with `Accept: application/json`) and `POST /close-query`.
//!
//! A query is planned with the engine locked, then runs on its own thread: it polls the
//! push query, writes each poll's rows as one chunk, and waits for data in short slices
//! so that a closed query, a departed client or a stopping server ends it promptly.
//! `/query` also takes `PRINT 'topic' …`, answered as ksqlDB does: the records as text
//! lines, streamed the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_engine::{Printer, PushQuery, StatementResult};
use sluice_sql::ast::Statement;

use super::rows::{rows_json, schema_text};
use super::{
    ApiError, Shared, body_with_text, error, json_response, lock, parse_body, streaming,
    with_properties,
};

/// How long a query thread waits for data before it looks at its stop conditions again.
const WAIT_SLICE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// `/query`: `[{"header":…},\n{"row":…},\n…{"finalMessage":…}]`.
    QueryArray,
    /// `/query-stream` default: a metadata object line, then one array per line.
    Delimited,
    /// `/query-stream` with `Accept: application/json`: `[metadata, row, …]`.
    JsonArray,
}

pub(super) async fn query(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    start(
        shared,
        body,
        "ksql",
        "streamsProperties",
        Framing::QueryArray,
    )
    .await
}

pub(super) async fn query_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let framing = if accept.contains("application/json") {
        Framing::JsonArray
    } else if accept.contains("application/vnd.ksql.v1+json") {
        Framing::QueryArray
    } else {
        Framing::Delimited
    };
    start(shared, body, "sql", "properties", framing).await
}

pub(super) async fn close_query(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(id) = request.get("queryId").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, 40000, "No queryId in the request");
    };
    match lock(&shared.running).get(id) {
        Some(flag) => {
            flag.store(true, Ordering::SeqCst);
            json_response(StatusCode::OK, &json!({}))
        }
        None => error(
            StatusCode::BAD_REQUEST,
            40000,
            format!("No query with id {id}"),
        ),
    }
}

/// What a request to the query endpoints runs.
enum Planned {
    Query(Box<PushQuery>),
    /// `PRINT`, only on `/query` (as in ksqlDB).
    Print(Printer),
}

/// Plans the request's query and starts streaming its answer.
async fn start(
    shared: Arc<Shared>,
    body: Bytes,
    sql_field: &'static str,
    properties_field: &'static str,
    framing: Framing,
) -> Response {
    let (request, sql) = match body_with_text(&body, sql_field, "the query") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let planner = shared.clone();
    let planned = tokio::task::spawn_blocking(move || {
        plan(
            &planner,
            &sql,
            request.get(properties_field),
            framing == Framing::QueryArray,
        )
        .map(|q| {
            let scalable = scalable_push(&planner, request.get(properties_field));
            (q, scalable)
        })
    })
    .await;
    let (query, scalable) = match planned {
        Ok(Ok(q)) => q,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                50000,
                format!("planning failed: {e}"),
            );
        }
    };
    let serial = shared.query_serial.fetch_add(1, Ordering::SeqCst);
    let query = match query {
        Planned::Query(q) => *q,
        Planned::Print(printer) => return start_print(shared, printer, serial),
    };
    // With `ksql.query.push.v2.enabled` ksqlDB names push queries as its scalable ones:
    // here every push query already reads the log from its end, as those do.
    let id = if scalable && !query.ends() {
        format!("SCALABLE_PUSH_QUERY_{}_{serial}", query.id())
    } else {
        format!("{}_{serial}", query.id())
    };
    let stop = Arc::new(AtomicBool::new(shared.stopping.load(Ordering::SeqCst)));
    lock(&shared.running).insert(id.clone(), stop.clone());
    let content_type = match framing {
        Framing::QueryArray => "application/vnd.ksql.v1+json",
        Framing::Delimited => "application/vnd.ksqlapi.delimited.v1",
        Framing::JsonArray => "application/json",
    };
    let (tx, response) = streaming(content_type);
    let runner = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("rest-query".into())
        .spawn(move || {
            run(query, &id, framing, &tx, &stop);
            lock(&runner.running).remove(&id);
        });
    if let Err(e) = spawned {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50000,
            format!("cannot start the query: {e}"),
        );
    }
    response
}

/// Whether `ksql.query.push.v2.enabled` is on for this request (or the server).
fn scalable_push(shared: &Shared, properties: Option<&Value>) -> bool {
    const NAME: &str = "ksql.query.push.v2.enabled";
    let on = |v: &Value| v == &Value::Bool(true) || v.as_str() == Some("true");
    match properties.and_then(|p| p.get(NAME)) {
        Some(v) => on(v),
        None => shared
            .engine()
            .properties()
            .get(NAME)
            .is_some_and(|v| v == "true"),
    }
}

/// Streams a PRINT's lines (text, one record per line) until it ends, is closed, or its
/// client leaves.
fn start_print(shared: Arc<Shared>, mut printer: Printer, serial: u64) -> Response {
    let id = format!("PRINT_{}_{serial}", printer.topic());
    let stop = Arc::new(AtomicBool::new(shared.stopping.load(Ordering::SeqCst)));
    lock(&shared.running).insert(id.clone(), stop.clone());
    let (tx, response) = streaming("text/plain; charset=utf-8");
    let runner = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("rest-print".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) && !tx.is_closed() {
                let lines = match printer.poll() {
                    Ok(lines) => lines,
                    Err(e) => {
                        let _ = tx.blocking_send(Bytes::from(format!("{e}\n")));
                        break;
                    }
                };
                if !lines.is_empty() {
                    let mut chunk = lines.join("\n");
                    chunk.push('\n');
                    if tx.blocking_send(Bytes::from(chunk)).is_err() {
                        break;
                    }
                }
                if printer.is_done() {
                    break;
                }
                if lines.is_empty() {
                    printer.wait(Instant::now() + WAIT_SLICE);
                }
            }
            lock(&runner.running).remove(&id);
        });
    if let Err(e) = spawned {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50000,
            format!("cannot start printing: {e}"),
        );
    }
    response
}

/// The request's one SELECT (or, when `print_allowed`, PRINT) as a running query, or
/// ksqlDB's error.
fn plan(
    shared: &Shared,
    sql: &str,
    properties: Option<&Value>,
    print_allowed: bool,
) -> Result<Planned, ApiError> {
    let bad = |code: u32, message: String| {
        ApiError(
            StatusCode::BAD_REQUEST,
            json!({"@type": "statement_error", "error_code": code, "message": message,
                    "statementText": sql, "entities": []}),
        )
    };
    let statements = sluice_sql::parse_with_text(sql).map_err(|e| bad(40001, e.to_string()))?;
    let [(statement, text)] = statements.as_slice() else {
        return Err(bad(
            40001,
            "Expected exactly one SELECT statement".to_string(),
        ));
    };
    let print = print_allowed && matches!(statement, Statement::Print { .. });
    if !print && !matches!(statement, Statement::Select(_)) {
        return Err(bad(
            40001,
            "The /query endpoints run SELECT statements; send others to /ksql".to_string(),
        ));
    }
    let mut engine = shared.engine();
    let result = with_properties(&mut engine, properties, |e| e.execute(statement, text))
        .map_err(|e| bad(40001, e.to_string()))?;
    match result {
        StatementResult::Query(q) => Ok(Planned::Query(q)),
        StatementResult::Print(p) => Ok(Planned::Print(*p)),
        other => Err(bad(40001, format!("not a query: {}", other.message()))),
    }
}

/// Streams a query's answer until it ends, is closed, or its client leaves.
fn run(
    mut query: PushQuery,
    id: &str,
    framing: Framing,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    stop: &AtomicBool,
) {
    let columns = query.output_columns().to_vec();
    let send = |text: String| tx.blocking_send(Bytes::from(text)).is_ok();
    let opening = match framing {
        Framing::QueryArray => format!(
            "[{}",
            json!({"header": {"queryId": id, "schema": schema_text(&columns, query.is_pull())}})
        ),
        Framing::Delimited | Framing::JsonArray => {
            let metadata = json!({
                "queryId": id,
                "columnNames": columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                "columnTypes": columns.iter().map(|c| c.ty.to_string()).collect::<Vec<_>>(),
            });
            if framing == Framing::JsonArray {
                format!("[{metadata}")
            } else {
                format!("{metadata}\n")
            }
        }
    };
    if !send(opening) {
        return;
    }
    let ending = loop {
        if stop.load(Ordering::SeqCst) || tx.is_closed() {
            break None;
        }
        let batches = match query.poll() {
            Ok(b) => b,
            Err(e) => break Some(Err(e.to_string())),
        };
        let mut chunk = String::new();
        for batch in &batches {
            let written = rows_json(&columns, batch, |row| match framing {
                Framing::QueryArray => {
                    chunk.push_str(",\n{\"row\":{\"columns\":");
                    chunk.push_str(row);
                    chunk.push_str("}}");
                }
                Framing::Delimited => {
                    chunk.push_str(row);
                    chunk.push('\n');
                }
                Framing::JsonArray => {
                    chunk.push_str(",\n");
                    chunk.push_str(row);
                }
            });
            if let Err(e) = written {
                tracing::warn!(query = id, error = %e, "a row could not be written");
            }
        }
        if !chunk.is_empty() && !send(chunk) {
            return;
        }
        if query.is_done() {
            break Some(Ok(if query.limit_reached() {
                "Limit Reached"
            } else {
                "Query Completed"
            }));
        }
        if batches.is_empty() {
            query.wait(Instant::now() + WAIT_SLICE);
        }
    };
    let closing = match (framing, ending) {
        (Framing::QueryArray, Some(Ok(message))) => {
            format!(",\n{}]\n", json!({"finalMessage": message}))
        }
        (Framing::QueryArray, Some(Err(e))) => format!(
            ",\n{}]\n",
            json!({"errorMessage": {"@type": "generic_error", "error_code": 50000, "message": e}})
        ),
        (Framing::QueryArray, None) | (Framing::JsonArray, _) => "]\n".to_string(),
        (Framing::Delimited, Some(Err(e))) => format!(
            "{}\n",
            json!({"@type": "generic_error", "error_code": 50000, "message": e})
        ),
        (Framing::Delimited, _) => String::new(),
    };
    if !closing.is_empty() {
        send(closing);
    }
}
