//! The REPL and `sluice sql` against a running `sluice server` (or ksqlDB) over its REST
//! API (`--server http://host:port`), as the ksqlDB CLI works: statements go to `/ksql`,
//! SELECT and PRINT stream from `/query`, `SET`/`UNSET` change properties kept here and
//! sent with every request, and `RUN SCRIPT` is read here. Results are printed as the
//! local REPL prints them.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Shutdown;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sluice_server::rest::client::Client;
use sluice_sql::ast::Statement;

use crate::{interrupt, render};

/// How long the streaming loop waits for a chunk before it looks for Ctrl-C again.
const WAIT_SLICE: Duration = Duration::from_millis(100);

pub struct Remote {
    url: String,
    /// The server's version, from `/info` at connect.
    version: String,
    client: Client,
    /// Properties set with `SET`, sent as `streamsProperties`.
    properties: BTreeMap<String, String>,
}

impl Remote {
    /// Connects to `url` (`http://host:port`, optionally `http://user:password@host:port`)
    /// and checks that a ksqlDB REST API answers there.
    pub fn connect(url: &str) -> Result<Remote> {
        let (address, credentials) = split_credentials(url);
        let mut client = Client::new(&address).map_err(|e| anyhow!(e))?;
        if let Some((user, password)) = credentials {
            client = client.with_basic_auth(&user, &password);
        }
        let reply = client
            .get("/info")
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("no ksqlDB REST API at {address}"))?;
        if reply.status == 401 {
            bail!("the server at {address} refused the credentials (401 Unauthorized)");
        }
        if reply.status != 200 {
            bail!(
                "the server at {address} answered /info with {}",
                reply.status
            );
        }
        let version = reply
            .json()
            .ok()
            .and_then(|v| {
                v.pointer("/KsqlServerInfo/version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into());
        Ok(Remote {
            url: address,
            version,
            client,
            properties: BTreeMap::new(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's version, as `/info` gave it at connect.
    pub fn server_version(&self) -> &str {
        &self.version
    }

    /// Runs every statement of `sql`, printing results to `out`; stops at the first that
    /// fails and returns its error.
    pub fn run_text(&mut self, sql: &str, out: &mut dyn Write) -> Result<()> {
        let statements = sluice_sql::parse_with_text(sql).map_err(|e| anyhow!("{e}"))?;
        for (statement, text) in statements {
            match &statement {
                Statement::RunScript(path) => {
                    let script = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the script {path}"))?;
                    self.run_text(&script, out)?;
                }
                Statement::Set { name, value } => {
                    self.properties.insert(name.clone(), value.clone());
                    writeln!(
                        out,
                        " Successfully changed local property '{name}' to '{value}'."
                    )?;
                }
                Statement::Unset(name) => {
                    self.properties.remove(name);
                    writeln!(out, " Successfully unset local property '{name}'.")?;
                }
                Statement::Select(_) | Statement::Print { .. } => self.stream(&text, out)?,
                _ => self.statement(&text, out)?,
            }
            out.flush()?;
        }
        Ok(())
    }

    /// Source and topic names for tab completion.
    pub fn names(&self) -> Vec<String> {
        let request = json!({"ksql": "SHOW STREAMS; SHOW TABLES; SHOW TOPICS;",
                             "streamsProperties": {}});
        let Ok(entities) = self
            .client
            .post("/ksql", &request)
            .and_then(|r| r.json())
            .map(|v| v.as_array().cloned().unwrap_or_default())
        else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entity in entities {
            for list in ["streams", "tables", "topics"] {
                for item in entity
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        names.push(name.to_string());
                    }
                }
            }
        }
        names
    }

    fn request_properties(&self) -> Value {
        Value::Object(
            self.properties
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    /// A statement for `/ksql`, its entity printed.
    fn statement(&self, text: &str, out: &mut dyn Write) -> Result<()> {
        let request = json!({"ksql": text, "streamsProperties": self.request_properties()});
        let reply = self
            .client
            .post("/ksql", &request)
            .map_err(|e| anyhow!(e))?;
        let body = reply.json().map_err(|e| anyhow!(e))?;
        if reply.status != 200 {
            bail!("{}", error_message(&body, reply.status));
        }
        for entity in body.as_array().into_iter().flatten() {
            print_entity(entity, out)?;
        }
        Ok(())
    }

    /// A SELECT or PRINT streamed from `/query` until it ends or Ctrl-C closes it.
    fn stream(&self, text: &str, out: &mut dyn Write) -> Result<()> {
        let request = json!({"ksql": text, "streamsProperties": self.request_properties()});
        let mut response = self
            .client
            .post_streaming(
                "/query",
                request.to_string().as_bytes(),
                "application/vnd.ksql.v1+json",
            )
            .map_err(|e| anyhow!(e))?;
        if response.status != 200 {
            let status = response.status;
            let reply = response.whole().map_err(|e| anyhow!(e))?;
            let body = reply.json().unwrap_or(Value::String(reply.body.clone()));
            bail!("{}", error_message(&body, status));
        }
        let is_print = response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("text/"));
        let closer = response.closer().map_err(|e| anyhow!(e))?;
        // The body is read on its own thread so that this one can watch for Ctrl-C.
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            loop {
                let chunk = response.next_chunk();
                let more = matches!(chunk, Ok(Some(_)));
                if tx.send(chunk).is_err() || !more {
                    break;
                }
            }
        });
        interrupt::install();
        interrupt::clear();
        let mut view = if is_print {
            View::Print
        } else {
            View::Rows(RowView::default())
        };
        let mut pending = Vec::new();
        let mut interrupted = false;
        let outcome: Result<()> = loop {
            match rx.recv_timeout(WAIT_SLICE) {
                Ok(Ok(Some(chunk))) => {
                    pending.extend_from_slice(&chunk);
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&line[..line.len() - 1]);
                        view.line(&line, out)?;
                    }
                    // `/query` ends a row's line only when the next row arrives: a
                    // remainder that is a whole JSON item is shown now.
                    if matches!(view, View::Rows(_))
                        && !pending.is_empty()
                        && let Some(item) = whole_item(&pending)
                    {
                        view.item(item, out)?;
                        pending.clear();
                    }
                    out.flush()?;
                }
                Ok(Ok(None)) => break Ok(()),
                Ok(Err(e)) => break Err(anyhow!("the query's stream broke: {e}")),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt::pending() {
                        interrupted = true;
                        break Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
            }
        };
        if interrupted {
            if let View::Rows(rows) = &view
                && let Some(id) = &rows.query_id
            {
                let _ = self.client.post("/close-query", &json!({"queryId": id}));
            }
            let _ = closer.shutdown(Shutdown::Both);
        }
        let _ = reader.join();
        interrupt::clear();
        if !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending).into_owned();
            view.line(&line, out)?;
        }
        view.finish(interrupted, out)?;
        outcome
    }
}

/// A piece of `/query`'s JSON array (`[{…},`, `{…},`, `{…}]`) as its item, when whole.
fn whole_item(piece: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(piece).ok()?;
    let trimmed = text
        .trim()
        .trim_start_matches('[')
        .trim_start_matches(',')
        .trim_end_matches(',')
        .trim_end_matches(']')
        .trim();
    if trimmed.is_empty() {
        return None;
    }
    serde_json::from_str(trimmed).ok()
}

/// `http://user:password@host:port` → (`http://host:port`, credentials).
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
            (
                format!("{scheme}{host}"),
                Some((user.to_string(), password.to_string())),
            )
        }
        None => (url.to_string(), None),
    }
}

fn error_message(body: &Value, status: u16) -> String {
    match body.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => format!("the server answered {status}: {body}"),
    }
}

/// What a streamed answer looks like as it is printed.
enum View {
    Print,
    Rows(RowView),
}

#[derive(Default)]
struct RowView {
    query_id: Option<String>,
    widths: Vec<usize>,
    rows: u64,
    final_message: Option<String>,
}

impl View {
    /// One line of `/query`'s answer: `[{"header":…},`, `{"row":…},`, `{"finalMessage":…}]`,
    /// or a text line of PRINT.
    fn line(&mut self, line: &str, out: &mut dyn Write) -> Result<()> {
        if let View::Print = self {
            writeln!(out, "{line}")?;
            return Ok(());
        }
        match whole_item(line.as_bytes()) {
            Some(item) => self.item(item, out),
            None if line
                .trim()
                .trim_matches(|c| c == '[' || c == ']' || c == ',')
                .is_empty() =>
            {
                Ok(())
            }
            None => {
                writeln!(out, "{line}")?;
                Ok(())
            }
        }
    }

    /// One JSON item of `/query`'s answer: the header, a row, the final message or an error.
    fn item(&mut self, item: Value, out: &mut dyn Write) -> Result<()> {
        let View::Rows(rows) = self else {
            return Ok(());
        };
        if let Some(header) = item.get("header") {
            rows.query_id = header
                .get("queryId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let names = column_names(header.get("schema").and_then(Value::as_str).unwrap_or(""));
            rows.widths = render::widths(&names);
            render::stream_header(out, &names, &rows.widths)?;
        } else if let Some(columns) = item.pointer("/row/columns").and_then(Value::as_array) {
            let cells: Vec<String> = columns.iter().map(cell_text).collect();
            render::stream_line(out, &cells, &rows.widths)?;
            rows.rows += 1;
        } else if let Some(message) = item.get("finalMessage").and_then(Value::as_str) {
            rows.final_message = Some(message.to_string());
        } else if let Some(error) = item.get("errorMessage") {
            writeln!(out, "{}", error_message(error, 200))?;
        }
        Ok(())
    }

    fn finish(&self, interrupted: bool, out: &mut dyn Write) -> Result<()> {
        match self {
            View::Print => {
                if interrupted {
                    writeln!(out, "Topic printing ceased")?;
                }
            }
            View::Rows(rows) => {
                if rows.query_id.is_some() {
                    render::stream_footer(out, &rows.widths)?;
                }
                if interrupted {
                    writeln!(out, "Query terminated")?;
                } else if rows.final_message.as_deref() == Some("Limit Reached") {
                    writeln!(out, "Limit Reached ({} rows)", rows.rows)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// The column names of a header's schema text: `` `ID` BIGINT KEY, `NAME` STRING ``.
fn column_names(schema: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = schema;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        names.push(after[..end].to_string());
        // Skip the type, which may hold nested backquoted struct fields, up to the next
        // top-level comma.
        let mut depth = 0usize;
        let mut next = after.len();
        for (i, c) in after[end + 1..].char_indices() {
            match c {
                '<' | '(' => depth += 1,
                '>' | ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    next = end + 1 + i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &after[next.min(after.len())..];
    }
    names
}

/// A JSON value as a cell: strings bare, null as `null`, the rest as JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An entity of `/ksql`'s answer, printed as the local REPL prints the same result.
fn print_entity(entity: &Value, out: &mut dyn Write) -> Result<()> {
    let text = |v: &Value, field: &str| -> String {
        match v.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    let list = |field: &str| -> Vec<Value> {
        entity
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let headers = |names: &[&str]| -> Vec<String> { names.iter().map(|s| s.to_string()).collect() };
    match entity.get("@type").and_then(Value::as_str).unwrap_or("") {
        "currentStatus" => {
            let message = entity
                .pointer("/commandStatus/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !message.is_empty() {
                writeln!(out, " {message}")?;
            }
        }
        "sluice_message" => {
            let message = text(entity, "message");
            if !message.is_empty() {
                writeln!(out, " {message}")?;
            }
        }
        kind @ ("streams" | "tables") => {
            let first = if kind == "streams" {
                "Stream Name"
            } else {
                "Table Name"
            };
            let rows: Vec<Vec<String>> = list(kind)
                .iter()
                .map(|s| {
                    ["name", "topic", "keyFormat", "valueFormat", "isWindowed"]
                        .iter()
                        .map(|f| text(s, f))
                        .collect()
                })
                .collect();
            render::table(
                out,
                None,
                &headers(&[
                    first,
                    "Kafka Topic",
                    "Key Format",
                    "Value Format",
                    "Windowed",
                ]),
                &rows,
            )?;
        }
        "kafka_topics" => {
            let rows: Vec<Vec<String>> = list("topics")
                .iter()
                .map(|t| {
                    let replicas = t.get("replicaInfo").and_then(Value::as_array);
                    vec![
                        text(t, "name"),
                        replicas.map_or(0, Vec::len).to_string(),
                        replicas
                            .and_then(|r| r.first())
                            .map_or("1".into(), cell_text),
                    ]
                })
                .collect();
            render::table(
                out,
                None,
                &headers(&["Kafka Topic", "Partitions", "Partition Replicas"]),
                &rows,
            )?;
        }
        "queries" => {
            let rows: Vec<Vec<String>> = list("queries")
                .iter()
                .map(|q| {
                    let first = |field: &str| {
                        q.get(field)
                            .and_then(Value::as_array)
                            .and_then(|a| a.first())
                            .map(cell_text)
                            .unwrap_or_default()
                    };
                    vec![
                        text(q, "id"),
                        text(q, "queryType"),
                        text(q, "state"),
                        first("sinks"),
                        first("sinkKafkaTopics"),
                        text(q, "queryString"),
                    ]
                })
                .collect();
            render::table(
                out,
                None,
                &headers(&[
                    "Query ID",
                    "Query Type",
                    "Status",
                    "Sink Name",
                    "Sink Kafka Topic",
                    "Query String",
                ]),
                &rows,
            )?;
        }
        "properties" => {
            let rows: Vec<Vec<String>> = list("properties")
                .iter()
                .map(|p| vec![text(p, "name"), text(p, "scope"), text(p, "value")])
                .collect();
            render::table(out, None, &headers(&["Property", "Scope", "Value"]), &rows)?;
        }
        "sourceDescription" => {
            let source = entity.get("sourceDescription").unwrap_or(&Value::Null);
            let is_table = text(source, "type") == "TABLE";
            let mut title = format!("Name                 : {}", text(source, "name"));
            if source.get("extended") == Some(&Value::Bool(true)) {
                title.push_str(&format!(
                    "\nType                 : {}\nKey format           : {}\nValue format         : {}\nKafka topic          : {}",
                    text(source, "type"),
                    text(source, "keyFormat"),
                    text(source, "valueFormat"),
                    text(source, "topic"),
                ));
            }
            let rows: Vec<Vec<String>> = source
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|f| {
                    let key = match (text(f, "type") == "KEY", is_table) {
                        (false, _) => "",
                        (true, false) => " (key)",
                        (true, true) => " (primary key)",
                    };
                    let schema = f.get("schema").unwrap_or(&Value::Null);
                    let ty = match schema_type(schema).as_str() {
                        "STRING" => "VARCHAR(STRING)".to_string(),
                        other => other.to_string(),
                    };
                    vec![text(f, "name"), format!("{ty}{key}")]
                })
                .collect();
            render::table(out, Some(&title), &headers(&["Field", "Type"]), &rows)?;
        }
        "sluice_table" => {
            let strings = |v: &Value| -> Vec<String> {
                v.as_array().into_iter().flatten().map(cell_text).collect()
            };
            let header = strings(entity.get("header").unwrap_or(&Value::Null));
            let rows: Vec<Vec<String>> = list("rows").iter().map(strings).collect();
            let title = entity.get("title").and_then(Value::as_str);
            render::table(out, title, &header, &rows)?;
        }
        _ => writeln!(out, "{}", serde_json::to_string_pretty(entity)?)?,
    }
    Ok(())
}

/// A DESCRIBE schema object (`{"type", "fields", "memberSchema"}`) as SQL type text.
fn schema_type(schema: &Value) -> String {
    let name = schema.get("type").and_then(Value::as_str).unwrap_or("?");
    let member = || schema_type(schema.get("memberSchema").unwrap_or(&Value::Null));
    match name {
        "ARRAY" => format!("ARRAY<{}>", member()),
        "MAP" => format!("MAP<STRING, {}>", member()),
        "STRUCT" => {
            let fields: Vec<String> = schema
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "`{}` {}",
                        f.get("name").and_then(Value::as_str).unwrap_or("?"),
                        schema_type(f.get("schema").unwrap_or(&Value::Null))
                    )
                })
                .collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        "DECIMAL" => {
            let parameter = |p: &str| {
                schema
                    .pointer(&format!("/parameters/{p}"))
                    .map(cell_text)
                    .unwrap_or_default()
            };
            format!(
                "DECIMAL({}, {})",
                parameter("precision"),
                parameter("scale")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_skip_nested_types() {
        assert_eq!(
            column_names(
                "`ID` BIGINT KEY, `S` STRUCT<`A` INT, `B` MAP<STRING, INT>>, `D` DECIMAL(4, 2), `Z` STRING"
            ),
            vec!["ID", "S", "D", "Z"]
        );
        assert!(column_names("").is_empty());
    }

    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(
            split_credentials("http://bob:s3cret@127.0.0.1:8088"),
            (
                "http://127.0.0.1:8088".to_string(),
                Some(("bob".to_string(), "s3cret".to_string()))
            )
        );
        assert_eq!(split_credentials("http://h:1").1, None);
    }

    #[test]
    fn schema_objects_read_back_as_types() {
        let schema = json!({"type": "STRUCT", "fields": [
            {"name": "A", "schema": {"type": "ARRAY", "memberSchema": {"type": "INTEGER"}}},
            {"name": "D", "schema": {"type": "DECIMAL", "parameters": {"precision": 4, "scale": 2}}}
        ]});
        assert_eq!(
            schema_type(&schema),
            "STRUCT<`A` ARRAY<INTEGER>, `D` DECIMAL(4, 2)>"
        );
    }
}
