//! `POST /ksql`: statements other than queries, each answered with a ksqlDB entity
//! (`currentStatus`, `streams`, `tables`, `queries`, `kafka_topics`, `properties`,
//! `sourceDescription`). Statements run in order; the first failure answers 400 with a
//! `statement_error` carrying the entities of the statements before it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_engine::catalog::Source;
use sluice_engine::{Engine, StatementResult};
use sluice_sql::ast::{ShowWhat, SourceKind, Statement};

use super::{Shared, body_with_text, error, json_response, lock, with_properties};

pub(super) async fn ksql(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let (request, sql) = match body_with_text(&body, "ksql", "the statements to run") {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let task = tokio::task::spawn_blocking(move || run_statements(&shared, &sql, &request));
    match task.await {
        Ok(response) => response,
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50000,
            format!("statement execution failed: {e}"),
        ),
    }
}

fn run_statements(shared: &Shared, sql: &str, request: &Value) -> Response {
    let statements = match sluice_sql::parse_with_text(sql) {
        Ok(s) => s,
        Err(e) => return statement_error(40001, e.to_string(), sql, Vec::new()),
    };
    let mut engine = shared.engine();
    let properties = request.get("streamsProperties");
    let mut entities = Vec::new();
    for (statement, text) in statements {
        if matches!(statement, Statement::Select(_) | Statement::Print { .. }) {
            return statement_error(
                40002,
                "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT".into(),
                &text,
                entities,
            );
        }
        let result = with_properties(&mut engine, properties, |e| e.execute(&statement, &text));
        match result {
            Ok(result) => {
                if let Some(entity) = entity(shared, &engine, &statement, &text, result) {
                    entities.push(entity);
                }
            }
            Err(e) => return statement_error(40001, e.to_string(), &text, entities),
        }
    }
    json_response(StatusCode::OK, &Value::Array(entities))
}

/// ksqlDB's `statement_error` (400), with the entities of the statements that ran.
fn statement_error(code: u32, message: String, text: &str, entities: Vec<Value>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({
            "@type": "statement_error",
            "error_code": code,
            "message": message,
            "statementText": text,
            "entities": entities,
        }),
    )
}

/// The entity a statement's result is shown as (none for SET/UNSET, which only change
/// this request's properties, and for INSERT VALUES, as in ksqlDB).
fn entity(
    shared: &Shared,
    engine: &Engine,
    statement: &Statement,
    text: &str,
    result: StatementResult,
) -> Option<Value> {
    let kind_word = |k: &SourceKind| match k {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    };
    let status = |command_id: String, message: String| {
        Some(current_status(shared, text, command_id, message))
    };
    match statement {
        Statement::Set { .. } | Statement::Unset(_) | Statement::InsertValues { .. } => None,
        Statement::CreateSource(c) => status(
            format!("{}/{}/create", kind_word(&c.kind), c.name),
            result.message(),
        ),
        Statement::CreateAsSelect(c) => status(
            format!("{}/{}/create", kind_word(&c.kind), c.name),
            result.message(),
        ),
        Statement::InsertInto { target, .. } => {
            let kind = engine
                .catalog()
                .get(target)
                .map_or("stream", |s| kind_word(&s.kind));
            status(format!("{kind}/{target}/create"), result.message())
        }
        Statement::Drop { kind, name, .. } => status(
            format!("{}/{}/drop", kind_word(kind), name),
            result.message(),
        ),
        Statement::AlterSource { kind, name, .. } => status(
            format!("{}/{}/alter", kind_word(kind), name),
            result.message(),
        ),
        Statement::CreateType { name, .. } => {
            status(format!("type/{name}/create"), result.message())
        }
        Statement::DropType { name, .. } => status(format!("type/{name}/drop"), result.message()),
        Statement::Terminate(id) => status(
            format!("terminate/{}/execute", id.as_deref().unwrap_or("ALL")),
            result.message(),
        ),
        Statement::Show { what, .. } => Some(show(engine, what, text, result)),
        Statement::DescribeStreams { .. } => Some(show(engine, &ShowWhat::Streams, text, result)),
        Statement::Describe { name, extended } => Some(match engine.catalog().get(name) {
            Some(source) => json!({
                "@type": "sourceDescription",
                "statementText": text,
                "sourceDescription": describe(engine, source, *extended),
                "warnings": [],
            }),
            None => table_entity(text, result),
        }),
        _ => Some(match result {
            StatementResult::Table { .. } => table_entity(text, result),
            other => current_status(
                shared,
                text,
                format!("cluster/{}/execute", statement_word(statement)),
                other.message(),
            ),
        }),
    }
}

fn statement_word(statement: &Statement) -> &'static str {
    match statement {
        Statement::Explain(_) => "explain",
        Statement::Pause(_) => "pause",
        Statement::Resume(_) => "resume",
        _ => "statement",
    }
}

/// `currentStatus`, recorded for `/status` with the next command sequence number.
fn current_status(shared: &Shared, text: &str, command_id: String, message: String) -> Value {
    let sequence = shared.command_sequence.fetch_add(1, Ordering::SeqCst) as i64;
    let mut command_status = json!({"status": "SUCCESS", "message": message});
    if let Some(id) = message.strip_prefix("Created query with ID ") {
        command_status["queryId"] = json!(id.trim_end_matches('.').trim());
    }
    lock(&shared.statuses).insert(command_id.clone(), command_status.clone());
    json!({
        "@type": "currentStatus",
        "statementText": text,
        "commandId": command_id,
        "commandStatus": command_status,
        "commandSequenceNumber": sequence,
        "warnings": [],
    })
}

fn show(engine: &Engine, what: &ShowWhat, text: &str, result: StatementResult) -> Value {
    let sources = |kind: SourceKind| -> Vec<Value> {
        engine
            .catalog()
            .sources()
            .filter(|s| s.kind == kind)
            .map(|s| {
                json!({
                    "type": s.kind.to_string(),
                    "name": s.name,
                    "topic": s.topic,
                    "keyFormat": s.key_format.name(),
                    "valueFormat": s.value_format.name(),
                    "isWindowed": s.window.is_some(),
                })
            })
            .collect()
    };
    match what {
        ShowWhat::Streams => json!({
            "@type": "streams", "statementText": text, "streams": sources(SourceKind::Stream),
            "warnings": [],
        }),
        ShowWhat::Tables => json!({
            "@type": "tables", "statementText": text, "tables": sources(SourceKind::Table),
            "warnings": [],
        }),
        ShowWhat::Topics { .. } => {
            let topics: Vec<Value> = rows_of(&result)
                .into_iter()
                .map(|row| {
                    let partitions: usize = cell(&row, "Partitions").parse().unwrap_or(0);
                    json!({"name": cell(&row, "Kafka Topic"), "replicaInfo": vec![1; partitions]})
                })
                .collect();
            json!({"@type": "kafka_topics", "statementText": text, "topics": topics,
                   "warnings": []})
        }
        ShowWhat::Queries => {
            let queries: Vec<Value> = rows_of(&result)
                .into_iter()
                .map(|row| {
                    let state = cell(&row, "Status");
                    json!({
                        "queryString": cell(&row, "Query String"),
                        "sinks": [cell(&row, "Sink Name")],
                        "sinkKafkaTopics": [cell(&row, "Sink Kafka Topic")],
                        "id": cell(&row, "Query ID"),
                        "statusCount": {state.clone(): 1},
                        "queryType": cell(&row, "Query Type"),
                        "state": state,
                    })
                })
                .collect();
            json!({"@type": "queries", "statementText": text, "queries": queries,
                   "warnings": []})
        }
        ShowWhat::Properties => {
            let properties: Vec<Value> = rows_of(&result)
                .into_iter()
                .map(|row| {
                    json!({"name": cell(&row, "Property"), "scope": cell(&row, "Scope"),
                           "value": cell(&row, "Value")})
                })
                .collect();
            json!({"@type": "properties", "statementText": text, "properties": properties,
                   "overwrittenProperties": [], "defaultProperties": [], "warnings": []})
        }
        _ => table_entity(text, result),
    }
}

/// A table result's rows as header name -> cell maps.
fn rows_of(result: &StatementResult) -> Vec<Vec<(String, String)>> {
    match result {
        StatementResult::Table { header, rows, .. } => rows
            .iter()
            .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
            .collect(),
        _ => Vec::new(),
    }
}

fn cell(row: &[(String, String)], name: &str) -> String {
    row.iter()
        .find(|(h, _)| h == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Results ksqlDB has no entity for here (SHOW FUNCTIONS, EXPLAIN …): the rows as the
/// REPL prints them, under Sluice's own `@type`.
fn table_entity(text: &str, result: StatementResult) -> Value {
    match result {
        StatementResult::Table {
            title,
            header,
            rows,
        } => json!({
            "@type": "sluice_table",
            "statementText": text,
            "title": title,
            "header": header,
            "rows": rows,
            "warnings": [],
        }),
        other => json!({
            "@type": "sluice_message",
            "statementText": text,
            "message": other.message(),
            "warnings": [],
        }),
    }
}

/// `DESCRIBE`'s `sourceDescription`.
fn describe(engine: &Engine, source: &Source, extended: bool) -> Value {
    let fields: Vec<Value> = source
        .columns
        .iter()
        .map(|c| {
            let mut field = json!({"name": c.name, "schema": super::rows::schema_json(&c.ty)});
            if c.key {
                field["type"] = json!("KEY");
            }
            field
        })
        .collect();
    let partitions = engine
        .log()
        .describe_topic(&source.topic)
        .map_or(0, |t| t.partitions.len());
    json!({
        "name": source.name,
        "windowType": source.window.as_ref().map(|w| format!("{w:?}").to_uppercase()),
        "readQueries": [],
        "writeQueries": [],
        "fields": fields,
        "type": source.kind.to_string(),
        "timestamp": source.timestamp.as_ref().map(|t| t.column.clone()).unwrap_or_default(),
        "statistics": "",
        "errorStats": "",
        "extended": extended,
        "keyFormat": source.key_format.name(),
        "valueFormat": source.value_format.name(),
        "topic": source.topic,
        "partitions": partitions,
        "replication": 1,
        "statement": "",
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
    })
}
