//! Runs QTT variants through the real engine and log: a fresh data directory per variant,
//! the statements executed in order, inputs appended one record at a time with the engine
//! driven to idle after each, then every expected output topic read back and compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use datafusion::arrow::array::Array;
use sluice_storage::batch::{self, BatchBuilder, Batches};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{Compression, EventLog, LogStore, StoreOptions, TopicConfig};

use super::compare::records_mismatch;
use super::json::{self, Json};
use super::model::{TestCase, TestFile, TestRecord, Variant, load_file};
use crate::catalog::{Format, Source};
use crate::codec::Serde;
use crate::engine::Engine;
use crate::format::{json as json_format, kafka};

/// Text of every error about a feature Sluice does not have yet.
pub const NOT_SUPPORTED: &str = "not supported yet";

/// The ksqlDB version Sluice answers to when a case names version bounds.
pub const KSQL_VERSION: (u32, u32, u32) = (7, 9, 0);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail(String),
    Skip(String),
}

/// Passed, failed and skipped counts of a list of results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(results: &[CaseResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.status {
                Status::Pass => c.passed += 1,
                Status::Fail(_) => c.failed += 1,
                Status::Skip(_) => c.skipped += 1,
            }
        }
        c
    }

    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed / {} failed / {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub index: usize,
    pub name: String,
    pub status: Status,
}

const REGISTRY_FORMATS: [&str; 4] = ["AVRO", "PROTOBUF_NOSR", "PROTOBUF", "JSON_SR"];

fn version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// Why a variant is skipped, if it is: the legitimate reasons only.
pub fn skip_reason(v: &Variant<'_>) -> Option<String> {
    if !v.case.enabled {
        return Some("enabled: false".into());
    }
    if let Some(min) = &v.case.min_version
        && version(min) > KSQL_VERSION
    {
        return Some(format!("needs ksqlDB >= {min}"));
    }
    if let Some(max) = &v.case.max_version
        && version(max) < KSQL_VERSION
    {
        return Some(format!("needs ksqlDB <= {max}"));
    }
    let mut text = v.statements.join(" ").to_uppercase();
    for (k, val) in &v.properties {
        text.push_str(&format!(" {k}={val}").to_uppercase());
    }
    for t in &v.case.topics {
        text.push_str(&t.to_string().to_uppercase());
    }
    REGISTRY_FORMATS
        .iter()
        .find(|f| {
            text.match_indices(*f).any(|(i, _)| {
                let after = text[i + f.len()..].chars().next();
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .map(|f| format!("needs a schema registry ({f})"))
}

/// The text of the one KAFKA-format column of `serde`, converted through its type.
fn kafka_bytes(serde: &Serde, value: &Json) -> Result<Option<Vec<u8>>, String> {
    let Some(col) = serde.columns.first() else {
        return Ok(None);
    };
    let text = value.to_string();
    let (arrays, errors) =
        json_format::decode_columns(std::slice::from_ref(col), false, &[Some(text.as_bytes())])
            .map_err(|e| e.to_string())?;
    if let Some((_, e)) = errors.first() {
        return Err(e.to_string());
    }
    kafka::encode_value(&col.ty, arrays[0].as_ref(), 0).map_err(|e| e.to_string())
}

/// Serializes a test record's key or value as `serde` would have written it. JSON and
/// DELIMITED expectations are already in their written form.
fn serialize(serde: &Serde, value: &Json) -> Result<Option<Vec<u8>>, String> {
    match (serde.format, value) {
        (_, Json::Null) => Ok(None),
        (Format::Kafka, v) => kafka_bytes(serde, v),
        (Format::Delimited, Json::String(s)) => Ok(Some(s.clone().into_bytes())),
        (_, v) => Ok(Some(v.to_string().into_bytes())),
    }
}

/// Reads back a key or value as JSON for comparison. DELIMITED text stays text (a key of
/// several columns too: `"a,1"`).
fn deserialize(serde: &Serde, bytes: Option<&[u8]>) -> Result<Json, String> {
    let Some(bytes) = bytes else {
        return Ok(Json::Null);
    };
    match serde.format {
        Format::Delimited => Ok(Json::String(String::from_utf8_lossy(bytes).into_owned())),
        Format::Kafka => {
            let Some(col) = serde.columns.first() else {
                return Ok(Json::Null);
            };
            let (array, errors) =
                kafka::decode_column(&col.ty, &[Some(bytes)]).map_err(|e| e.to_string())?;
            if let Some((_, e)) = errors.first() {
                return Err(e.to_string());
            }
            if array.is_null(0) {
                return Ok(Json::Null);
            }
            let text = json_format::encode_row(std::slice::from_ref(col), &[array], false, 0)
                .map_err(|e| e.to_string())?;
            json::parse(&String::from_utf8_lossy(&text))
        }
        _ => json::parse(&String::from_utf8_lossy(bytes)),
    }
}

/// A case property's value as text (strings without their quotes).
pub fn property_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs one variant.
pub fn run_variant(v: &Variant<'_>) -> Status {
    if let Some(why) = skip_reason(v) {
        return Status::Skip(why);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(v))) {
        Ok(Ok(())) => Status::Pass,
        Ok(Err(why)) => Status::Fail(why),
        Err(_) => Status::Fail("the engine panicked".into()),
    }
}

/// A case's own log (in a temporary directory, removed with it) and an engine over it, as
/// ksqlDB's harness sets one up: reading from the earliest offset, the case's properties
/// set, its topics created.
pub fn case_engine(v: &Variant<'_>) -> Result<(CaseDir, Arc<dyn EventLog>, Engine), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Arc::new(
        LogStore::open_with(dir.path(), StoreOptions::default()).map_err(|e| e.to_string())?,
    );
    let log: Arc<dyn EventLog> = store.clone();
    let dir = CaseDir { store, _dir: dir };
    let mut engine = Engine::new(log.clone());
    engine.set_property("auto.offset.reset", "earliest");
    for (k, val) in &v.properties {
        engine.set_property(k, &property_text(val));
    }
    prepare_topics(&log, v.case, &v.statements)?;
    Ok((dir, log, engine))
}

/// A case's temporary data directory: the log is closed before the directory goes, even
/// when a query thread of the case still holds the log (it then sees a closed log instead
/// of files vanishing under it).
pub struct CaseDir {
    store: Arc<LogStore>,
    _dir: tempfile::TempDir,
}

impl Drop for CaseDir {
    fn drop(&mut self) {
        if let Err(e) = self.store.close() {
            tracing::warn!(error = %e, "closing a test case's log failed");
        }
    }
}

fn run(v: &Variant<'_>) -> Result<(), String> {
    let (_dir, log, mut engine) = case_engine(v)?;
    let expected_error = v.case.expected_exception.as_ref();
    // ksqlDB's harness runs the statements as one script, a statement per line: positions in
    // messages ("Line: 3, Col: 70") count from the script's start.
    let mut lines_before = 0;
    for (n, sql) in v.statements.iter().enumerate() {
        let placed = format!("{}{sql}", "\n".repeat(lines_before));
        lines_before += sql.matches('\n').count() + 1;
        if let Err(e) = engine.execute_sql(&placed) {
            // A feature Sluice lacks is never the error a case expects.
            let unsupported = e.0.contains(NOT_SUPPORTED);
            let wants_parse_error = expected_error
                .and_then(|x| x.kind.as_deref())
                .is_some_and(|k| k.ends_with("ParseFailedException"));
            if wants_parse_error && !e.0.starts_with("line ") {
                return Err(format!("expected a parse error, got: {e}"));
            }
            return match expected_error {
                Some(x) if !unsupported && x.message.as_deref().is_none_or(|m| e.0.contains(m)) => {
                    Ok(())
                }
                Some(x) => Err(format!(
                    "statement {n} failed with \"{e}\" but the expected error says \"{}\"",
                    x.message.clone().unwrap_or_default()
                )),
                None => Err(format!("statement {n} failed: {e}")),
            };
        }
    }
    if let Some(x) = expected_error
        && v.case.inputs.is_empty()
    {
        return Err(format!(
            "expected an error ({})",
            x.message.clone().unwrap_or_default()
        ));
    }
    for r in &v.case.inputs {
        produce_input(&engine, &log, r)?;
        if let Err(e) = engine.run_until_idle() {
            return match expected_error {
                Some(x) if x.message.as_deref().is_none_or(|m| e.0.contains(m)) => Ok(()),
                _ => Err(format!("processing failed: {e}")),
            };
        }
    }
    if let Some(x) = expected_error {
        return Err(format!(
            "expected an error ({})",
            x.message.clone().unwrap_or_default()
        ));
    }
    check_outputs(&engine, &log, v)
}

/// Creates the topics a case's harness creates beforehand: the declared ones, every input
/// topic, and the topics its CREATE statements name (as ksqlDB's harness does).
pub fn prepare_topics(
    log: &Arc<dyn EventLog>,
    case: &TestCase,
    statements: &[String],
) -> Result<(), String> {
    // Topics the harness creates: the declared ones, and every input topic.
    for t in &case.topics {
        if let Some(name) = t.get("name").and_then(Json::as_str) {
            let partitions = t
                .get("partitions")
                .and_then(Json::as_i64)
                .unwrap_or(1)
                .max(1) as u32;
            let _ = log.create_topic(name, partitions, TopicConfig::default());
        }
    }
    for r in &case.inputs {
        if log.describe_topic(&r.topic).is_err() {
            log.create_topic(&r.topic, 1, TopicConfig::default())
                .map_err(|e| e.to_string())?;
        }
    }
    // Like ksqlDB's harness: the topics that CREATE statements name exist beforehand.
    for sql in statements {
        if let Ok(statements) = sluice_sql::parse(sql) {
            for st in statements {
                if let sluice_sql::Statement::CreateSource(c) = st
                    && let Some(sluice_sql::ast::Literal::String(topic)) =
                        c.properties.get("KAFKA_TOPIC")
                    && log.describe_topic(topic).is_err()
                {
                    let partitions = match c.properties.get("PARTITIONS") {
                        Some(sluice_sql::ast::Literal::Number(n)) => n.parse().unwrap_or(1),
                        _ => 1,
                    };
                    let _ = log.create_topic(topic, partitions, TopicConfig::default());
                }
            }
        }
    }
    Ok(())
}

/// Appends one input record, serialized with its source's formats (as JSON text for a
/// topic no source reads), to the partition Kafka's partitioner picks for its key.
pub fn produce_input(
    engine: &Engine,
    log: &Arc<dyn EventLog>,
    r: &TestRecord,
) -> Result<(), String> {
    let source = engine.catalog().by_topic(&r.topic).cloned();
    let (key, value) = match &source {
        Some(s) => (
            serialize(&Serde::key(s), &r.key)?,
            serialize(&Serde::value(s), &r.value)?,
        ),
        None => (
            (r.key != Json::Null).then(|| r.key.to_string().into_bytes()),
            (r.value != Json::Null).then(|| r.value.to_string().into_bytes()),
        ),
    };
    // A windowed key: the key's bytes, then the window as Kafka Streams lays it out.
    let key = match (&r.window, key) {
        (Some(w), Some(mut k)) => {
            if w.session {
                k.extend_from_slice(&w.end.to_be_bytes());
            }
            k.extend_from_slice(&w.start.to_be_bytes());
            Some(k)
        }
        (_, k) => k,
    };
    let partitions = log
        .describe_topic(&r.topic)
        .map_err(|e| e.to_string())?
        .partitions
        .len() as u32;
    let p = key
        .as_deref()
        .map_or(0, |k| partition_for_key(k, partitions));
    // Headers as given: keys with base64 values (or null).
    let headers: Vec<(String, Option<Vec<u8>>)> = r
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| {
            let bytes = v
                .as_deref()
                .map(|b64| base64::engine::general_purpose::STANDARD.decode(b64))
                .transpose()
                .map_err(|e| format!("header {k} is not base64: {e}"))?;
            Ok((k.clone(), bytes))
        })
        .collect::<Result<_, String>>()?;
    let header_refs: Vec<(&str, Option<&[u8]>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    let mut b = BatchBuilder::new(Compression::None);
    b.push(
        r.timestamp.unwrap_or(0),
        key.as_deref(),
        value.as_deref(),
        &header_refs,
    );
    let mut bytes = b.finish().map_err(|e| e.to_string())?;
    log.append(&r.topic, p, &mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Compares every output topic's records with the case's expected outputs.
pub fn check_outputs(
    engine: &Engine,
    log: &Arc<dyn EventLog>,
    v: &Variant<'_>,
) -> Result<(), String> {
    let exact = v
        .properties
        .iter()
        .find(|(k, _)| k == "use.exact.numeric.comparison")
        .is_none_or(|(_, val)| property_text(val) != "false");
    let mut by_topic: BTreeMap<&str, Vec<TestRecord>> = BTreeMap::new();
    for r in &v.case.outputs {
        by_topic
            .entry(r.topic.as_str())
            .or_default()
            .push(r.clone());
    }
    for (topic, expected) in by_topic {
        let sink: Option<Source> = engine.catalog().by_topic(topic).cloned();
        let actual = read_topic(log, topic, sink.as_ref())?;
        if let Some(why) = records_mismatch(&expected, &actual, exact) {
            return Err(why);
        }
    }
    Ok(())
}

/// A windowed sink's key split into the inner key and its window (Kafka Streams' layout:
/// the start for time windows, the end then the start for sessions, 8 bytes big-endian).
fn split_window<'a>(
    key: Option<&'a [u8]>,
    sink: Option<&Source>,
) -> (Option<&'a [u8]>, Option<super::model::WindowSpec>) {
    use sluice_sql::ast::WindowKind;
    let (Some(key), Some(kind)) = (key, sink.and_then(|s| s.window)) else {
        return (key, None);
    };
    let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let spec = match kind {
        WindowKind::Session { .. } if key.len() >= 16 => {
            let at = key.len() - 16;
            let spec = super::model::WindowSpec {
                start: be(&key[at + 8..]),
                end: be(&key[at..at + 8]),
                session: true,
            };
            return (Some(&key[..at]), Some(spec));
        }
        WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } if key.len() >= 8 => {
            let at = key.len() - 8;
            let start = be(&key[at..]);
            (
                at,
                super::model::WindowSpec {
                    start,
                    end: start + size.millis as i64,
                    session: false,
                },
            )
        }
        _ => return (Some(key), None),
    };
    (Some(&key[..spec.0]), Some(spec.1))
}

fn read_topic(
    log: &Arc<dyn EventLog>,
    topic: &str,
    sink: Option<&Source>,
) -> Result<Vec<TestRecord>, String> {
    let info = log
        .describe_topic(topic)
        .map_err(|_| format!("topic {topic} does not exist"))?;
    let serdes = sink.map(|s| (Serde::key(s), Serde::value(s)));
    let mut out = Vec::new();
    for p in &info.partitions {
        let mut offset = p.log_start_offset;
        loop {
            let r = log
                .read(topic, p.id, offset, 1 << 20)
                .map_err(|e| e.to_string())?;
            if r.data.is_empty() {
                break;
            }
            for b in Batches::new(&r.data) {
                let h = batch::BatchHeader::parse(b).map_err(|e| e.to_string())?;
                let mut failure = None;
                batch::for_each_record(b, |rec| {
                    if (rec.offset as u64) < offset {
                        return Ok(());
                    }
                    let (key_bytes, window) = split_window(rec.key, sink);
                    let (key, value) = match &serdes {
                        Some((k, v)) => (deserialize(k, key_bytes), deserialize(v, rec.value)),
                        None => (
                            rec.key.map_or(Ok(Json::Null), |k| {
                                json::parse(&String::from_utf8_lossy(k))
                            }),
                            rec.value.map_or(Ok(Json::Null), |x| {
                                json::parse(&String::from_utf8_lossy(x))
                            }),
                        ),
                    };
                    let headers = rec.headers().map(|hs| {
                        hs.into_iter()
                            .map(|(k, v)| {
                                let v =
                                    v.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
                                (k, v)
                            })
                            .collect::<Vec<_>>()
                    });
                    match (key, value) {
                        (Ok(key), Ok(value)) => out.push(TestRecord {
                            topic: topic.to_string(),
                            key,
                            value,
                            timestamp: Some(rec.timestamp),
                            window,
                            headers: Some(headers?),
                        }),
                        (Err(e), _) | (_, Err(e)) => failure = Some(e),
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
                if let Some(e) = failure {
                    return Err(format!("output of {topic} does not decode: {e}"));
                }
                offset = h.next_offset();
            }
        }
    }
    Ok(out)
}

/// Runs every variant of a file.
pub fn run_file(file: &TestFile, filter: Option<&str>) -> Vec<CaseResult> {
    run_file_with(file, filter, &|_, v| run_variant(v))
}

/// Runs every variant of a file with `run` (the engine's runner, or the REST one).
pub fn run_file_with(
    file: &TestFile,
    filter: Option<&str>,
    run: &dyn Fn(&TestFile, &Variant<'_>) -> Status,
) -> Vec<CaseResult> {
    file.variants()
        .iter()
        .filter(|v| filter.is_none_or(|f| v.full_name.contains(f)))
        .map(|v| CaseResult {
            file: file.name.clone(),
            index: v.case.index,
            name: v.full_name.clone(),
            status: run(file, v),
        })
        .collect()
}

/// A suite's ratchet: prints per-file counts, and returns the cases `listed` (lines of
/// `file<TAB>index<TAB>name`, `#` comments) that no longer pass. With
/// `SLUICE_RATCHET_WRITE` set, `list_path` is rewritten with every passing case.
pub fn ratchet(
    results: &[(String, Vec<CaseResult>)],
    listed: &str,
    list_path: &Path,
    title: &str,
) -> Vec<String> {
    let mut total = Counts::default();
    let mut passing = std::collections::BTreeSet::new();
    for (file, cases) in results {
        let counts = Counts::of(cases);
        eprintln!("{file}: {counts}");
        total.add(counts);
        for c in cases.iter().filter(|c| c.status == Status::Pass) {
            passing.insert(format!("{}\t{}\t{}", c.file, c.index, c.name));
        }
    }
    eprintln!("total: {total}");
    let listed_lines: Vec<&str> = listed
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let new = passing
        .iter()
        .filter(|p| !listed_lines.contains(&p.as_str()))
        .count();
    if new > 0 {
        eprintln!(
            "{new} newly passing cases are not in {} yet (SLUICE_RATCHET_WRITE=1 rewrites it)",
            list_path.display()
        );
    }
    if std::env::var("SLUICE_RATCHET_WRITE").is_ok() {
        let mut text = format!("# {title}: file, case index, full name.\n");
        for p in &passing {
            text.push_str(p);
            text.push('\n');
        }
        if let Err(e) = std::fs::write(list_path, text) {
            eprintln!("cannot write {}: {e}", list_path.display());
        }
    }
    listed_lines
        .into_iter()
        .filter(|l| !passing.contains(*l))
        .map(str::to_string)
        .collect()
}

/// Runs a test file, or every `.json` file under a folder (sorted by name).
pub fn run_path(
    path: &Path,
    filter: Option<&str>,
) -> Result<Vec<(String, Vec<CaseResult>)>, String> {
    run_path_with(path, filter, &|_, v| run_variant(v))
}

/// `run_path` with a variant runner of the caller's (given the file, to tell a REST file).
pub fn run_path_with(
    path: &Path,
    filter: Option<&str>,
    run: &dyn Fn(&TestFile, &Variant<'_>) -> Status,
) -> Result<Vec<(String, Vec<CaseResult>)>, String> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        let file = load_file(&f)?;
        let results = run_file_with(&file, filter, run);
        out.push((file.name.clone(), results));
    }
    Ok(out)
}
