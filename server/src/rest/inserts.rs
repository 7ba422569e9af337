//! `POST /inserts-stream`: newline-delimited JSON in — a first object naming the target
//! (`{"target": "S"}`), then one object per row — and one ack per row out, as the rows
//! arrive (`{"status":"ok","seq":N}` or `{"status":"error","seq":N,…}`). Each row is an
//! `INSERT INTO … VALUES` of the engine, so it is checked and serialized exactly as one.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use futures_core::Stream;
use serde_json::{Value, json};
use sluice_engine::catalog::Column;
use sluice_sql::types::SqlType;

use super::{Shared, streaming};

pub(super) async fn inserts_stream(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let (tx, response) = streaming("application/vnd.ksqlapi.delimited.v1");
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        let mut pending = Vec::<u8>::new();
        let mut target: Option<(String, Vec<Column>)> = None;
        let mut seq = 0u64;
        loop {
            // Wait for the client in slices, so a stopping server does not wait on it.
            let next = poll_fn(|cx| Pin::new(&mut data).poll_next(cx));
            let chunk = match tokio::time::timeout(Duration::from_millis(100), next).await {
                Ok(chunk) => chunk,
                Err(_) if shared.stopping.load(Ordering::SeqCst) => return,
                Err(_) => continue,
            };
            let ended = match chunk {
                Some(Ok(bytes)) => {
                    pending.extend_from_slice(&bytes);
                    false
                }
                Some(Err(_)) | None => true,
            };
            // Complete lines (and, at the end, what is left).
            let cut = if ended {
                pending.len()
            } else {
                pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            if cut == 0 && pending.len() > MAX_LINE {
                let ack = json!({"status": "error", "seq": seq, "error_code": 40000,
                    "message": format!("a row longer than {MAX_LINE} bytes")});
                let _ = tx.send(Bytes::from(format!("{ack}\n"))).await;
                return;
            }
            let lines: Vec<Vec<u8>> = pending
                .drain(..cut)
                .collect::<Vec<u8>>()
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .map(<[u8]>::to_vec)
                .collect();
            if !lines.is_empty() {
                let engine = shared.clone();
                let first_target = target.take();
                let start = seq;
                let done = tokio::task::spawn_blocking(move || {
                    insert_lines(&engine, first_target, start, &lines)
                })
                .await;
                let Ok((kept_target, acks, next_seq, fatal)) = done else {
                    return;
                };
                target = kept_target;
                seq = next_seq;
                for ack in acks {
                    if tx.send(Bytes::from(ack)).await.is_err() {
                        return;
                    }
                }
                if fatal {
                    return;
                }
            }
            if ended {
                return;
            }
        }
    });
    response
}

type Target = Option<(String, Vec<Column>)>;

/// The longest row accepted (a client that never sends a newline is cut off here).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Inserts a run of lines; the target (read from the first line of the stream), the acks,
/// the next sequence number, and whether the stream must end (a bad first line).
fn insert_lines(
    shared: &Shared,
    mut target: Target,
    mut seq: u64,
    lines: &[Vec<u8>],
) -> (Target, Vec<String>, u64, bool) {
    let mut acks = Vec::new();
    let mut engine = shared.engine();
    for line in lines {
        let parsed = serde_json::from_slice::<Value>(line);
        let Some((name, columns)) = &target else {
            // The first object names the target.
            let name = parsed
                .ok()
                .and_then(|v| v.get("target").and_then(Value::as_str).map(str::to_string));
            let source = name.as_deref().and_then(|n| {
                let catalog = engine.catalog();
                catalog
                    .get(n)
                    .or_else(|| catalog.get(&n.to_uppercase()))
                    .cloned()
            });
            match source {
                Some(s) => target = Some((s.name.clone(), s.columns.clone())),
                None => {
                    let message = match name {
                        Some(n) => format!("Cannot insert values into an unknown stream: {n}"),
                        None => "The first line must be {\"target\": \"<stream>\"}".to_string(),
                    };
                    acks.push(format!(
                        "{}\n",
                        json!({"status": "error", "seq": seq, "error_code": 40000,
                               "message": message})
                    ));
                    return (None, acks, seq, true);
                }
            }
            continue;
        };
        let outcome = parsed
            .map_err(|e| format!("Invalid JSON in inserts stream: {e}"))
            .and_then(|row| insert_statement(name, columns, &row))
            .and_then(|sql| {
                engine
                    .execute_sql(&sql)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        acks.push(format!(
            "{}\n",
            match outcome {
                Ok(()) => json!({"status": "ok", "seq": seq}),
                Err(message) => json!({"status": "error", "seq": seq, "error_code": 40000,
                                       "message": message}),
            }
        ));
        seq += 1;
    }
    (target, acks, seq, false)
}

/// `INSERT INTO target (cols…) VALUES (…)` for one JSON row.
fn insert_statement(target: &str, columns: &[Column], row: &Value) -> Result<String, String> {
    let Some(object) = row.as_object() else {
        return Err("Each row must be a JSON object".into());
    };
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (key, value) in object {
        let (name, ty) = if key.eq_ignore_ascii_case("ROWTIME") {
            ("ROWTIME".to_string(), SqlType::Bigint)
        } else {
            let column = columns
                .iter()
                .find(|c| c.name == *key)
                .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(key)))
                .ok_or_else(|| format!("Unknown column: {key}"))?;
            (column.name.clone(), column.ty.clone())
        };
        names.push(quote_identifier(&name));
        values.push(literal(value, &ty)?);
    }
    Ok(format!(
        "INSERT INTO {} ({}) VALUES ({});",
        quote_identifier(target),
        names.join(", "),
        values.join(", ")
    ))
}

fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A JSON value as a SQL literal of `ty`.
fn literal(value: &Value, ty: &SqlType) -> Result<String, String> {
    Ok(match (value, ty) {
        (Value::Null, _) => "NULL".into(),
        (Value::Array(items), SqlType::Array(member)) => format!(
            "ARRAY[{}]",
            items
                .iter()
                .map(|v| literal(v, member))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        (Value::Object(entries), SqlType::Map(_, member)) => format!(
            "MAP({})",
            entries
                .iter()
                .map(|(k, v)| Ok(format!("{} := {}", quote_string(k), literal(v, member)?)))
                .collect::<Result<Vec<_>, String>>()?
                .join(", ")
        ),
        (Value::Object(entries), SqlType::Struct(fields)) => format!(
            "STRUCT({})",
            entries
                .iter()
                .map(|(k, v)| {
                    let (name, t) = fields
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .ok_or_else(|| format!("Unknown struct field: {k}"))?;
                    Ok(format!("{} := {}", quote_identifier(name), literal(v, t)?))
                })
                .collect::<Result<Vec<_>, String>>()?
                .join(", ")
        ),
        (Value::String(s), SqlType::Bytes) => format!("TO_BYTES({}, 'base64')", quote_string(s)),
        (Value::String(s), _) => quote_string(s),
        (Value::Number(n), SqlType::String) => quote_string(&n.to_string()),
        (Value::Bool(b), SqlType::String) => quote_string(&b.to_string()),
        (Value::Number(n), _) => n.to_string(),
        (Value::Bool(b), _) => b.to_string().to_uppercase(),
        (other, ty) => return Err(format!("Cannot insert {other} into a column of type {ty}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_insert_statements() {
        let columns = vec![
            Column {
                name: "K".into(),
                ty: SqlType::String,
                key: true,
            },
            Column {
                name: "TAGS".into(),
                ty: SqlType::Array(Box::new(SqlType::Int)),
                key: false,
            },
        ];
        let row = json!({"k": "it's", "tags": [1, 2], "ROWTIME": 5});
        assert_eq!(
            insert_statement("S", &columns, &row).unwrap(),
            "INSERT INTO `S` (`ROWTIME`, `K`, `TAGS`) VALUES (5, 'it''s', ARRAY[1, 2]);"
        );
        assert!(insert_statement("S", &columns, &json!({"nope": 1})).is_err());
    }
}
