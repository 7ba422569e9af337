//! Statements that describe: SHOW STREAMS|TABLES|TOPICS|QUERIES|PROPERTIES|FUNCTIONS,
//! DESCRIBE source, DESCRIBE FUNCTION — as tables with ksqlDB's column headings.

use std::sync::atomic::Ordering;

use sluice_sql::SqlType;
use sluice_sql::ast::{ShowWhat, SourceKind};

use crate::catalog::Source;
use crate::engine::{Engine, EngineError, StatementResult, err};

fn table(header: &[&str], rows: Vec<Vec<String>>) -> StatementResult {
    StatementResult::Table {
        title: None,
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// A type as ksqlDB's DESCRIBE prints it.
fn show_type(ty: &SqlType) -> String {
    match ty {
        SqlType::String => "VARCHAR(STRING)".into(),
        other => other.to_string(),
    }
}

/// Properties SHOW PROPERTIES lists with their defaults, and what they mean here.
const DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("auto.offset.reset", "latest"),
    ("ksql.persistence.default.format.key", "KAFKA"),
    ("ksql.persistence.default.format.value", ""),
    ("ksql.persistence.wrap.single.values", "true"),
    (
        "ksql.logging.processing.topic.name",
        crate::processing_log::TOPIC,
    ),
];

impl Engine {
    pub(crate) fn show(
        &self,
        what: &ShowWhat,
        extended: bool,
    ) -> Result<StatementResult, EngineError> {
        Ok(match what {
            ShowWhat::Streams => self.show_sources(SourceKind::Stream, extended),
            ShowWhat::Tables => self.show_sources(SourceKind::Table, extended),
            ShowWhat::Topics { all } => {
                let rows = self
                    .log
                    .list_topics()
                    .into_iter()
                    .filter(|t| *all || !t.internal)
                    .map(|t| vec![t.name.clone(), t.partitions.len().to_string(), "1".into()])
                    .collect();
                table(&["Kafka Topic", "Partitions", "Partition Replicas"], rows)
            }
            ShowWhat::Queries => self.show_queries(),
            ShowWhat::Properties => {
                let mut rows: Vec<Vec<String>> = DEFAULT_PROPERTIES
                    .iter()
                    .filter(|(k, _)| !self.properties.contains_key(*k))
                    .map(|(k, v)| vec![k.to_string(), "SERVER".into(), v.to_string()])
                    .collect();
                for (k, v) in &self.properties {
                    rows.push(vec![k.clone(), "SESSION".into(), v.clone()]);
                }
                rows.sort();
                table(&["Property", "Scope", "Value"], rows)
            }
            ShowWhat::Functions => {
                let state = self.ctx.state();
                let mut rows: Vec<Vec<String>> = state
                    .scalar_functions()
                    .keys()
                    .map(|n| vec![n.to_uppercase(), "SCALAR".into()])
                    .chain(
                        state
                            .aggregate_functions()
                            .keys()
                            .map(|n| vec![n.to_uppercase(), "AGGREGATE".into()]),
                    )
                    .collect();
                rows.sort();
                rows.dedup();
                table(&["Function Name", "Type"], rows)
            }
            ShowWhat::Types => table(
                &["Type Name", "Schema"],
                self.catalog
                    .types()
                    .map(|(n, t)| vec![n.clone(), t.to_string()])
                    .collect(),
            ),
            ShowWhat::Variables => table(&["Variable Name", "Value"], Vec::new()),
            ShowWhat::Connectors => return err("connectors are not supported yet"),
        })
    }

    fn show_sources(&self, kind: SourceKind, extended: bool) -> StatementResult {
        let word = match kind {
            SourceKind::Stream => "Stream Name",
            SourceKind::Table => "Table Name",
        };
        let rows = self
            .catalog
            .sources()
            .filter(|s| s.kind == kind)
            .map(|s| {
                let mut row = vec![
                    s.name.clone(),
                    s.topic.clone(),
                    s.key_format.name().to_string(),
                    s.value_format.name().to_string(),
                    "false".to_string(),
                ];
                if extended {
                    row.push(columns_text(s));
                }
                row
            })
            .collect();
        let mut header = vec![
            word,
            "Kafka Topic",
            "Key Format",
            "Value Format",
            "Windowed",
        ];
        if extended {
            header.push("Columns");
        }
        table(&header, rows)
    }

    fn show_queries(&self) -> StatementResult {
        let rows = self
            .queries
            .iter()
            .map(|q| {
                let status = q.status().label();
                let records = q.stats.records_in.load(Ordering::Relaxed);
                let secs = q.started.elapsed().as_secs_f64().max(1e-3);
                vec![
                    q.id.clone(),
                    q.kind.to_string(),
                    status,
                    q.sink_name.clone(),
                    q.sink_topic.clone(),
                    records.to_string(),
                    format!("{:.0}", records as f64 / secs),
                    q.lag(self.log.as_ref()).to_string(),
                    q.statement.split_whitespace().collect::<Vec<_>>().join(" "),
                ]
            })
            .collect();
        table(
            &[
                "Query ID",
                "Query Type",
                "Status",
                "Sink Name",
                "Sink Kafka Topic",
                "Records In",
                "Records/s",
                "Lag",
                "Query String",
            ],
            rows,
        )
    }

    pub(crate) fn describe(
        &self,
        name: &str,
        extended: bool,
    ) -> Result<StatementResult, EngineError> {
        let Some(s) = self.catalog.get(name) else {
            return err(format!(
                "Could not find STREAM/TABLE '{name}' in the Metastore"
            ));
        };
        let mut rows: Vec<Vec<String>> = s
            .key_columns()
            .chain(s.row_columns())
            .map(|c| {
                let key = match (c.key, s.kind) {
                    (false, _) => "",
                    (true, SourceKind::Stream) => " (key)",
                    (true, SourceKind::Table) => " (primary key)",
                };
                vec![c.name.clone(), format!("{}{key}", show_type(&c.ty))]
            })
            .collect();
        let mut title = format!("Name                 : {}", s.name);
        if extended {
            title.push_str(&format!(
                "\nType                 : {}\nKey format           : {}\nValue format         : {}\nKafka topic          : {}",
                s.kind,
                s.key_format.name(),
                s.value_format.name(),
                s.topic
            ));
            for q in self.queries.iter().filter(|q| q.sink_name == s.name) {
                rows.push(vec![format!("(written by {})", q.id), String::new()]);
            }
        }
        Ok(StatementResult::Table {
            title: Some(title),
            header: vec!["Field".into(), "Type".into()],
            rows,
        })
    }

    pub(crate) fn describe_function(&self, name: &str) -> Result<StatementResult, EngineError> {
        let state = self.ctx.state();
        let lower = name.to_lowercase();
        let kind = if state.scalar_functions().contains_key(&lower) {
            "SCALAR"
        } else if state.aggregate_functions().contains_key(&lower) {
            "AGGREGATE"
        } else {
            return err(format!("Can't find any functions with the name '{name}'"));
        };
        Ok(StatementResult::Table {
            title: Some(format!(
                "Name        : {}\nType        : {kind}",
                name.to_uppercase()
            )),
            header: vec!["Function".into(), "Type".into()],
            rows: vec![vec![name.to_uppercase(), kind.to_string()]],
        })
    }
}

fn columns_text(s: &Source) -> String {
    s.columns
        .iter()
        .map(|c| format!("{} {}{}", c.name, c.ty, if c.key { " KEY" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}
