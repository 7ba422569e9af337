//! ksqlDB query-validation test files as data: cases, records, expected exceptions, and the
//! variants a case expands into (`format` x `config`), with the full names ksqlDB's runner
//! gives them: `"<file> - <name>[ - <FORMAT>][ - <prop>=<CONFIG>]"`.

use std::path::Path;

use super::json::{self, Json};

/// One record of a case's inputs or outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord {
    pub topic: String,
    /// `Json::Null` when absent.
    pub key: Json,
    /// `Json::Null` is a tombstone.
    pub value: Json,
    pub timestamp: Option<i64>,
    pub window: Option<WindowSpec>,
    /// (key, base64 value or null); `None` when the record says nothing about headers.
    pub headers: Option<Vec<(String, Option<String>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub start: i64,
    pub end: i64,
    pub session: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedException {
    /// A Java class name, e.g. `io.confluent.ksql.util.KsqlStatementException`.
    pub kind: Option<String>,
    /// Text the error message must contain.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub index: usize,
    pub name: String,
    pub statements: Vec<String>,
    pub inputs: Vec<TestRecord>,
    pub outputs: Vec<TestRecord>,
    /// Pre-created topics, as written (name, formats, schemas, partitions).
    pub topics: Vec<Json>,
    pub properties: Vec<(String, Json)>,
    pub formats: Vec<String>,
    pub configs: Vec<String>,
    pub expected_exception: Option<ExpectedException>,
    pub post: Option<Json>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub enabled: bool,
    /// The case as written, for the fields only some runners read (the REST cases'
    /// `responses`, `inputConditions`, `outputConditions`, `expectedError`).
    pub raw: Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestFile {
    /// The file name without `.json`.
    pub name: String,
    pub cases: Vec<TestCase>,
}

impl TestFile {
    /// A REST query-validation file (`rest-query-validation-tests`): its cases expect
    /// `responses` from a server.
    pub fn is_rest(&self) -> bool {
        self.cases.iter().any(|c| c.raw.get("responses").is_some())
    }
}

/// One runnable variant of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant<'a> {
    pub file: &'a str,
    pub case: &'a TestCase,
    pub full_name: String,
    pub statements: Vec<String>,
    pub properties: Vec<(String, Json)>,
}

fn record(j: &Json) -> Result<TestRecord, String> {
    let topic = j
        .get("topic")
        .and_then(Json::as_str)
        .ok_or("a record needs a topic")?
        .to_string();
    let window = match j.get("window") {
        Some(w @ Json::Object(_)) => Some(WindowSpec {
            start: w
                .get("start")
                .and_then(Json::as_i64)
                .ok_or("window.start")?,
            end: w.get("end").and_then(Json::as_i64).ok_or("window.end")?,
            session: w
                .get("type")
                .and_then(Json::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("session")),
        }),
        _ => None,
    };
    let headers = match j.get("headers") {
        Some(Json::Array(hs)) => Some(
            hs.iter()
                .map(|h| {
                    let k = h
                        .get("KEY")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let v = h.get("VALUE").and_then(Json::as_str).map(str::to_string);
                    (k, v)
                })
                .collect(),
        ),
        _ => None,
    };
    Ok(TestRecord {
        topic,
        key: j.get("key").cloned().unwrap_or(Json::Null),
        value: j.get("value").cloned().unwrap_or(Json::Null),
        timestamp: j.get("timestamp").and_then(Json::as_i64),
        window,
        headers,
    })
}

fn strings(j: Option<&Json>) -> Vec<String> {
    j.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn records(j: Option<&Json>) -> Result<Vec<TestRecord>, String> {
    j.and_then(Json::as_array)
        .unwrap_or(&[])
        .iter()
        .map(record)
        .collect()
}

fn case(index: usize, j: &Json) -> Result<TestCase, String> {
    let name = j
        .get("name")
        .and_then(Json::as_str)
        .ok_or("a case needs a name")?
        .to_string();
    let statements = strings(j.get("statements"));
    if statements.is_empty() {
        return Err(format!("case '{name}' has no statements"));
    }
    let expected_exception = j.get("expectedException").map(|e| ExpectedException {
        kind: e.get("type").and_then(Json::as_str).map(str::to_string),
        message: e.get("message").and_then(Json::as_str).map(str::to_string),
    });
    let properties = match j.get("properties") {
        Some(Json::Object(fields)) => fields.clone(),
        _ => Vec::new(),
    };
    let versions = j.get("versions");
    Ok(TestCase {
        index,
        name,
        statements,
        inputs: records(j.get("inputs"))?,
        outputs: records(j.get("outputs"))?,
        topics: j
            .get("topics")
            .and_then(Json::as_array)
            .map(<[Json]>::to_vec)
            .unwrap_or_default(),
        properties,
        formats: strings(j.get("format")),
        configs: strings(j.get("config")),
        expected_exception,
        post: j.get("post").cloned(),
        raw: j.clone(),
        min_version: versions
            .and_then(|v| v.get("min"))
            .and_then(Json::as_str)
            .map(str::to_string),
        max_version: versions
            .and_then(|v| v.get("max"))
            .and_then(Json::as_str)
            .map(str::to_string),
        enabled: !matches!(j.get("enabled"), Some(Json::Bool(false))),
    })
}

/// Parses a test file's text; `name` is its file name without `.json`.
pub fn parse_file(name: &str, text: &str) -> Result<TestFile, String> {
    let root = json::parse(text)?;
    let cases = root
        .get("tests")
        .and_then(Json::as_array)
        .ok_or("the file has no \"tests\" list")?
        .iter()
        .enumerate()
        .map(|(i, c)| case(i, c).map_err(|e| format!("case {i}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(TestFile {
        name: name.to_string(),
        cases,
    })
}

/// Reads and parses a test file from disk.
pub fn load_file(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_file(&name, &text).map_err(|e| format!("{}: {e}", path.display()))
}

impl TestFile {
    /// Every variant of every case, in file order.
    pub fn variants(&self) -> Vec<Variant<'_>> {
        let mut out = Vec::new();
        for case in &self.cases {
            let formats: Vec<Option<&str>> = if case.formats.is_empty() {
                vec![None]
            } else {
                case.formats.iter().map(|f| Some(f.as_str())).collect()
            };
            let configs: Vec<Option<&str>> = if case.configs.is_empty() {
                vec![None]
            } else {
                case.configs.iter().map(|c| Some(c.as_str())).collect()
            };
            let config_prop = case
                .properties
                .iter()
                .find(|(_, v)| v.as_str() == Some("{CONFIG}"))
                .map(|(k, _)| k.clone());
            for format in &formats {
                for config in &configs {
                    let mut full_name = format!("{} - {}", self.name, case.name);
                    if let Some(f) = format {
                        full_name.push_str(&format!(" - {f}"));
                    }
                    if let (Some(c), Some(p)) = (config, &config_prop) {
                        full_name.push_str(&format!(" - {p}={c}"));
                    }
                    let statements = case
                        .statements
                        .iter()
                        .map(|s| match format {
                            Some(f) => s.replace("{FORMAT}", f),
                            None => s.clone(),
                        })
                        .collect();
                    let properties = case
                        .properties
                        .iter()
                        .map(|(k, v)| match (config, v.as_str()) {
                            (Some(c), Some("{CONFIG}")) => (k.clone(), Json::String(c.to_string())),
                            _ => (k.clone(), v.clone()),
                        })
                        .collect();
                    out.push(Variant {
                        file: &self.name,
                        case,
                        full_name,
                        statements,
                        properties,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"tests": [
        {"name": "one", "statements": ["CREATE STREAM S (A INT) WITH (kafka_topic='t', value_format='{FORMAT}');"],
         "format": ["JSON", "DELIMITED"], "config": ["a", "b"], "properties": {"ksql.x": "{CONFIG}", "ksql.y": 1},
         "inputs": [{"topic": "t", "value": {"A": 1.50}, "timestamp": 5}],
         "outputs": [{"topic": "O", "key": 1, "value": null, "window": {"start": 0, "end": 10, "type": "time"},
                      "headers": [{"KEY": "h", "VALUE": "AA=="}]}]},
        {"name": "two", "statements": ["SELECT 1;"], "enabled": false, "expectedException": {"message": "boom"},
         "versions": {"min": "7.3.0"}}
    ]}"#;

    #[test]
    fn cases_and_records_are_read() {
        let f = parse_file("demo", FILE).unwrap();
        assert_eq!(f.cases.len(), 2);
        let c = &f.cases[0];
        assert_eq!(
            c.inputs[0].value.get("A"),
            Some(&Json::Number("1.50".into()))
        );
        assert_eq!(c.inputs[0].key, Json::Null);
        assert_eq!(c.inputs[0].timestamp, Some(5));
        assert_eq!(
            c.outputs[0].window,
            Some(WindowSpec {
                start: 0,
                end: 10,
                session: false
            })
        );
        assert_eq!(
            c.outputs[0].headers,
            Some(vec![("h".into(), Some("AA==".into()))])
        );
        let t = &f.cases[1];
        assert!(!t.enabled);
        assert_eq!(
            t.expected_exception.as_ref().unwrap().message.as_deref(),
            Some("boom")
        );
        assert_eq!(t.min_version.as_deref(), Some("7.3.0"));
    }

    #[test]
    fn variants_expand_format_and_config() {
        let f = parse_file("demo", FILE).unwrap();
        let v = f.variants();
        assert_eq!(v.len(), 5);
        assert_eq!(v[0].full_name, "demo - one - JSON - ksql.x=a");
        assert_eq!(v[3].full_name, "demo - one - DELIMITED - ksql.x=b");
        assert!(v[2].statements[0].contains("value_format='DELIMITED'"));
        assert_eq!(
            v[3].properties[0],
            ("ksql.x".into(), Json::String("b".into()))
        );
        assert_eq!(v[4].full_name, "demo - two");
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(parse_file("x", "{}").is_err());
        assert!(parse_file("x", r#"{"tests": [{"name": "n", "statements": []}]}"#).is_err());
        assert!(
            parse_file(
                "x",
                r#"{"tests": [{"name": "n", "statements": ["s"], "inputs": [{"value": 1}]}]}"#
            )
            .is_err()
        );
    }
}
