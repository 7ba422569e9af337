//! Statements that define and remove sources and persistent queries: CREATE STREAM over a
//! topic, CREATE STREAM … AS SELECT, INSERT INTO … SELECT, DROP, TERMINATE, and the WITH
//! clause properties they share (formats, delimiters, wrapping).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sql::SqlType;
use sluice_sql::ast::{ColumnConstraint, CreateAsSelect, CreateSource, Literal, Query, SourceKind};
use sluice_storage::TopicConfig;

use crate::catalog::{Column, Format, Source};
use crate::codec::Serde;
use crate::engine::{Engine, EngineError, err, kind_name};
use crate::planner::QueryUse;
use crate::query::{PersistentQuery, QueryStats};

pub(crate) fn prop_string(props: &BTreeMap<String, Literal>, name: &str) -> Option<String> {
    props.get(name).map(|l| match l {
        Literal::String(s) => s.clone(),
        other => other.to_string(),
    })
}

pub(crate) fn contains_map(ty: &sluice_sql::SqlType) -> bool {
    use sluice_sql::SqlType;
    match ty {
        SqlType::Map(..) => true,
        SqlType::Array(t) => contains_map(t),
        SqlType::Struct(fs) => fs.iter().any(|(_, t)| contains_map(t)),
        _ => false,
    }
}

/// `KEY_DELIMITER` / `VALUE_DELIMITER`, checked against the formats they go with.
fn delimiters(
    props: &BTreeMap<String, Literal>,
    key_format: Format,
    value_format: Format,
    key_default: char,
    value_default: char,
) -> Result<(char, char), EngineError> {
    let one = |name: &str, format: Format, default: char| -> Result<char, EngineError> {
        match prop_string(props, name) {
            None => Ok(default),
            Some(_) if format != Format::Delimited => err(format!(
                "{} does not support the following configs: [delimiter]",
                format.name()
            )),
            Some(d) => crate::format::delimited::parse_delimiter(&d).map_err(|why| {
                EngineError(format!(
                    "Failed to prepare statement: Configuration {name} is invalid: {why}"
                ))
            }),
        }
    };
    Ok((
        one("KEY_DELIMITER", key_format, key_default)?,
        one("VALUE_DELIMITER", value_format, value_default)?,
    ))
}

/// `WRAP_SINGLE_VALUE`, which formats without wrapping reject when set to true.
/// The `HEADERS` / `HEADER('k')` columns of a CREATE, their types checked as ksqlDB does.
fn header_columns(
    c: &CreateSource,
    columns: &[Column],
) -> Result<Vec<crate::catalog::HeaderColumn>, EngineError> {
    let all_headers = SqlType::Array(Box::new(SqlType::Struct(vec![
        ("KEY".into(), SqlType::String),
        ("VALUE".into(), SqlType::Bytes),
    ])));
    let mut out = Vec::new();
    for (d, column) in c.columns.iter().zip(columns) {
        let key = match &d.constraint {
            ColumnConstraint::Headers => {
                if column.ty != all_headers {
                    return err(format!(
                        "Invalid type for HEADERS column: expected {all_headers}, got {}",
                        column.ty
                    ));
                }
                None
            }
            ColumnConstraint::Header(k) => {
                if column.ty != SqlType::Bytes {
                    return err(format!(
                        "Invalid type for HEADER('{k}') column: expected BYTES, got {}",
                        column.ty
                    ));
                }
                Some(k.clone())
            }
            _ => continue,
        };
        out.push(crate::catalog::HeaderColumn {
            column: column.name.clone(),
            key,
        });
    }
    Ok(out)
}

/// The TIMESTAMP property: a column name, upper-cased unless quoted with backticks.
fn timestamp_column(props: &BTreeMap<String, Literal>) -> Option<crate::catalog::TimestampColumn> {
    let name = prop_string(props, "TIMESTAMP")?;
    let column = match name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
        Some(quoted) => quoted.to_string(),
        None => name.to_uppercase(),
    };
    Some(crate::catalog::TimestampColumn {
        column,
        format: prop_string(props, "TIMESTAMP_FORMAT"),
    })
}

fn wrapping(props: &BTreeMap<String, Literal>, value_format: Format) -> Result<bool, EngineError> {
    match props.get("WRAP_SINGLE_VALUE") {
        Some(Literal::Boolean(true))
            if matches!(value_format, Format::Delimited | Format::Kafka) =>
        {
            err(format!(
                "Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'true'.",
                value_format.name()
            ))
        }
        Some(Literal::Boolean(false)) => Ok(false),
        _ => Ok(true),
    }
}

impl Engine {
    pub(crate) fn formats(
        &self,
        props: &BTreeMap<String, Literal>,
        value_required: bool,
    ) -> Result<(Format, Option<Format>), EngineError> {
        let both = prop_string(props, "FORMAT");
        let key = prop_string(props, "KEY_FORMAT")
            .or(both.clone())
            .or_else(|| {
                self.properties
                    .get("ksql.persistence.default.format.key")
                    .cloned()
            })
            .unwrap_or_else(|| "KAFKA".into());
        let value = prop_string(props, "VALUE_FORMAT").or(both).or_else(|| {
            self.properties
                .get("ksql.persistence.default.format.value")
                .cloned()
        });
        let parse =
            |f: &str| Format::parse(f).ok_or_else(|| EngineError(format!("Unknown format: {f}")));
        let value = match value {
            Some(v) => Some(parse(&v)?),
            None if value_required => {
                return err(
                    "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config.",
                );
            }
            None => None,
        };
        Ok((parse(&key)?, value))
    }

    pub(crate) fn create_source(&mut self, c: &CreateSource) -> Result<String, EngineError> {
        let replacing_read_only = self.catalog.get(&c.name).is_some_and(|s| s.read_only);
        if c.or_replace && (c.read_only || replacing_read_only) {
            let kind = kind_name(c.kind);
            return err(format!(
                "Cannot add {kind} '{}': CREATE OR REPLACE is not supported on source {kind}s.",
                c.name
            ));
        }
        if let Some(done) = self.check_new_name(&c.name, c.kind, c.if_not_exists)? {
            return Ok(done);
        }
        check_key_constraints(c)?;
        if let Some(d) = c
            .columns
            .iter()
            .find(|d| crate::planner::RESERVED_COLUMNS.contains(&d.name.as_str()))
        {
            return err(format!(
                "'{}' is a reserved column name. You cannot use it as a name for a column.",
                d.name
            ));
        }
        let topic = prop_string(&c.properties, "KAFKA_TOPIC").ok_or_else(|| {
            EngineError("Missing required property \"KAFKA_TOPIC\" in WITH clause".into())
        })?;
        let (key_format, value_format) = self.formats(&c.properties, true)?;
        let value_format = value_format.unwrap_or(Format::Json);
        let columns: Vec<Column> = c
            .columns
            .iter()
            .map(|d| {
                Ok(Column {
                    name: d.name.clone(),
                    ty: self
                        .catalog
                        .resolve(&d.ty)
                        .map_err(|name| EngineError(format!("Unknown type: {name}")))?,
                    key: matches!(
                        d.constraint,
                        ColumnConstraint::Key | ColumnConstraint::PrimaryKey
                    ),
                })
            })
            .collect::<Result<_, EngineError>>()?;
        let headers = header_columns(c, &columns)?;
        let mut source = self.new_source(
            &c.name,
            c.kind,
            &topic,
            (columns, headers),
            (key_format, value_format),
            &c.properties,
            (',', ','),
        )?;
        source.read_only = c.read_only;
        source.window = window_of(&c.properties)?;
        if source.window.is_some() && source.key_columns().next().is_none() {
            return err("Windowed sources require a key column.");
        }
        if self.log.describe_topic(&topic).is_err() {
            match prop_string(&c.properties, "PARTITIONS").and_then(|p| p.parse::<u32>().ok()) {
                Some(n) => {
                    self.log.create_topic(&topic, n, TopicConfig::default())?;
                }
                None => return err(format!("Kafka topic does not exist: {topic}")),
            }
        }
        self.catalog.insert(source);
        Ok(match c.kind {
            SourceKind::Stream => "Stream created".into(),
            SourceKind::Table => "Table created".into(),
        })
    }

    /// Builds a source with the delimiters and wrapping its WITH clause asks for (the
    /// delimiters default to `default_delimiters`), and checks its formats can carry it.
    #[allow(clippy::too_many_arguments)]
    fn new_source(
        &self,
        name: &str,
        kind: SourceKind,
        topic: &str,
        (columns, headers): (Vec<Column>, Vec<crate::catalog::HeaderColumn>),
        (key_format, value_format): (Format, Format),
        props: &BTreeMap<String, Literal>,
        default_delimiters: (char, char),
    ) -> Result<Source, EngineError> {
        let (key_delimiter, value_delimiter) = delimiters(
            props,
            key_format,
            value_format,
            default_delimiters.0,
            default_delimiters.1,
        )?;
        let source = Source {
            name: name.to_string(),
            kind,
            topic: topic.to_string(),
            columns,
            key_format,
            value_format,
            wrap_single_value: wrapping(props, value_format)?,
            key_delimiter,
            value_delimiter,
            timestamp: timestamp_column(props),
            read_only: false,
            headers,
            window: None,
        };
        if let Some(spec) = &source.timestamp {
            crate::timestamps::check(spec, &source.columns)?;
        }
        self.check_formats(&source)?;
        Ok(source)
    }

    fn check_formats(&self, s: &Source) -> Result<(), EngineError> {
        for k in s.key_columns() {
            if contains_map(&k.ty) {
                return err(format!(
                    "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent serialization. Key column name: `{}`. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                    k.name, k.ty
                ));
            }
        }
        let key = Serde::key(s);
        key.check().map_err(|e| {
            EngineError(format!(
                "Key format does not support schema.\nformat: {}\nschema: Persistence{{columns=[{}], features=[]}}\nreason: {e}",
                s.key_format.name(),
                key.describe_columns()
            ))
        })?;
        Serde::value(s).check()?;
        Ok(())
    }

    pub(crate) fn create_as_select(&mut self, c: &CreateAsSelect) -> Result<String, EngineError> {
        if let Some(done) = self.check_new_name(&c.name, c.kind, c.if_not_exists)? {
            return Ok(done);
        }
        let q = &c.query;
        if q.limit.is_some() {
            let kind = match c.kind {
                SourceKind::Table => "TABLE",
                SourceKind::Stream => "STREAM",
            };
            return err(format!(
                "CREATE {kind} AS SELECT statements don't support LIMIT clause."
            ));
        }
        if c.kind == SourceKind::Table
            && q.group_by.is_empty()
            && q.window.is_none()
            && q.having.is_none()
            && crate::aggregate::plan::ungrouped_columns(&q.select).is_none()
        {
            let calls = crate::aggregate::plan::aggregate_calls(&q.select);
            if !calls.is_empty() {
                return err(format!(
                    "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP BY clause.",
                    calls.join(", ")
                ));
            }
        }
        let planned = self.plan_query(&c.query, &c.name, QueryUse::Persistent)?;
        let source = &planned.source;
        if planned.kind != c.kind {
            let (produces, wanted) = match planned.kind {
                SourceKind::Table => ("TABLE", "CREATE TABLE AS SELECT"),
                SourceKind::Stream => ("STREAM", "CREATE STREAM AS SELECT"),
            };
            return err(format!(
                "Invalid result type. Your SELECT query produces a {produces}. Please use {wanted} statement instead."
            ));
        }
        if planned.kind == SourceKind::Table && !c.query.partition_by.is_empty() {
            return err("ksqlDB does not support PARTITION BY on a TABLE.");
        }
        let topic = prop_string(&c.properties, "KAFKA_TOPIC").unwrap_or_else(|| c.name.clone());
        let (key_format, value_format) = self.formats(&c.properties, false)?;
        let key_format =
            if c.properties.contains_key("KEY_FORMAT") || c.properties.contains_key("FORMAT") {
                key_format
            } else if source.key_format == Format::None
                && planned.pipeline.result_columns().iter().any(|c| c.key)
            {
                // A keyless source whose result has a key (a join's, a GROUP BY's, a
                // PARTITION BY's) writes it in ksqlDB's default key format.
                Format::Kafka
            } else {
                source.key_format
            };
        let value_format = value_format.unwrap_or(source.value_format);
        // An aggregate whose running state is not a single primitive (AVG's sum and count,
        // TOPK's list, …) cannot be kept in a DELIMITED changelog, as ksqlDB says.
        if value_format == Format::Delimited
            && planned
                .pipeline
                .aggregation
                .as_ref()
                .is_some_and(|a| a.aggregation.plan.has_structured_state())
        {
            return err(
                "One of the functions used in the statement has an intermediate type that the value format can not handle. Please remove the function or change the format.",
            );
        }
        let mut sink = self.new_source(
            &c.name,
            c.kind,
            &topic,
            (planned.pipeline.result_columns().to_vec(), Vec::new()),
            (key_format, value_format),
            &c.properties,
            (source.key_delimiter, source.value_delimiter),
        )?;
        sink.window = planned.window;
        // A join's sink takes the left source's partitions.
        let input_topic = match &planned.join {
            Some(j) => j.leftmost().planned.source.topic.clone(),
            None => source.topic.clone(),
        };
        let source_partitions = self.log.describe_topic(&input_topic)?.partitions.len() as u32;
        let partitions = prop_string(&c.properties, "PARTITIONS")
            .and_then(|p| p.parse().ok())
            .unwrap_or(source_partitions);
        let prefix = match c.kind {
            SourceKind::Stream => "CSAS",
            SourceKind::Table => "CTAS",
        };
        let id = self.next_query_id(prefix, &c.name);
        self.start_query(id.clone(), planned, sink.clone(), partitions)?;
        self.catalog.insert(sink);
        Ok(format!("Created query with ID {id}"))
    }

    /// Whether `name` is free for a new source. `Some(message)` when it exists and the
    /// statement said IF NOT EXISTS (nothing to do).
    fn check_new_name(
        &self,
        name: &str,
        kind: SourceKind,
        if_not_exists: bool,
    ) -> Result<Option<String>, EngineError> {
        let Some(existing) = self.catalog.get(name) else {
            return Ok(None);
        };
        if if_not_exists {
            return Ok(Some(format!(
                "{} {} already exists",
                capitalized(existing.kind),
                existing.name
            )));
        }
        err(format!(
            "Cannot add {} '{name}': A {} with the same name already exists",
            kind_name(kind),
            kind_name(existing.kind)
        ))
    }

    /// `CREATE TYPE name AS type`: a name for a type, usable in column definitions.
    pub(crate) fn create_type(
        &mut self,
        name: &str,
        if_not_exists: bool,
        ty: &sluice_sql::SqlType,
    ) -> Result<String, EngineError> {
        if self
            .catalog
            .types()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if if_not_exists {
                return Ok(format!("Type {name} already exists"));
            }
            return err(format!(
                "Cannot register custom type '{name}' since it is already registered with type: {}",
                self.catalog
                    .types()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default()
            ));
        }
        let resolved = self
            .catalog
            .resolve(ty)
            .map_err(|n| EngineError(format!("Unknown type: {n}")))?;
        self.catalog.add_type(name, resolved);
        Ok(format!(
            "Registered custom type with name '{name}' and SQL type {ty}"
        ))
    }

    pub(crate) fn drop_type(&mut self, name: &str, if_exists: bool) -> Result<String, EngineError> {
        match self.catalog.remove_type(name) {
            Some(_) => Ok(format!("Dropped type '{name}'")),
            None if if_exists => Ok(format!("Type '{name}' does not exist")),
            None => err(format!("Type {name} does not exist.")),
        }
    }

    /// `INSERT INTO target SELECT …`: a persistent query writing into an existing stream
    /// whose columns the query's result must match.
    pub(crate) fn insert_into(
        &mut self,
        target: &str,
        (line, column): (u64, u64),
        q: &Query,
    ) -> Result<String, EngineError> {
        let Some(sink) = self.catalog.get(target).cloned() else {
            let place = crate::expr_text::position_at(line, column);
            return err(format!("{place}Source `{target}` does not exist."));
        };
        if sink.kind != SourceKind::Stream {
            return err(format!(
                "INSERT INTO can only be used to insert into a stream. {target} is a table."
            ));
        }
        let planned = self.plan_query(q, target, QueryUse::Persistent)?;
        let result = planned.pipeline.result_columns();
        let same = result.len() == sink.columns.len()
            && result
                .iter()
                .zip(&sink.columns)
                .all(|(a, b)| a.name == b.name && a.ty == b.ty && a.key == b.key);
        if !same {
            return err(format!(
                "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                describe_columns(result),
                describe_columns(&sink.columns)
            ));
        }
        let id = self.next_query_id("INSERTQUERY", target);
        let partitions = self.log.describe_topic(&sink.topic)?.partitions.len() as u32;
        self.start_query(id.clone(), planned, sink, partitions)?;
        Ok(format!("Created query with ID {id}"))
    }

    /// Creates the sink topic if needed, fixes the start positions and registers the query.
    fn start_query(
        &mut self,
        id: String,
        planned: crate::planner::Planned,
        sink: Source,
        partitions: u32,
    ) -> Result<(), EngineError> {
        let sink_partitions = match self.log.describe_topic(&sink.topic) {
            Ok(info) => info.partitions.len() as u32,
            Err(_) => {
                self.log
                    .create_topic(&sink.topic, partitions, TopicConfig::default())?;
                partitions
            }
        };
        let mut pipeline = planned.pipeline;
        let join = match planned.join {
            Some(mut plan) => {
                // Stream sides resume where the query was; table sides are rebuilt from
                // their start.
                for side in plan.source_sides_mut() {
                    let source = side.planned.source.clone();
                    side.planned.pipeline.positions = match source.kind {
                        SourceKind::Stream => self.start_positions(&id, &source.topic)?,
                        SourceKind::Table => {
                            let n = self.log.describe_topic(&source.topic)?.partitions.len();
                            (0..n as u32)
                                .map(|p| self.log.offsets(&source.topic, p).map(|(s, _)| s))
                                .collect::<Result<_, _>>()?
                        }
                    };
                }
                let mut join = crate::join::Join::new(*plan, &pipeline)?;
                join.resume(self.log.as_ref(), &id)?;
                Some(Box::new(join))
            }
            None => {
                pipeline.positions = self.start_positions(&id, &planned.source.topic)?;
                None
            }
        };
        // An aggregation resumes from its last checkpoint: its state and the positions that
        // go with it.
        let checkpoints = match pipeline.aggregation.as_mut() {
            Some(agg) if join.is_none() => {
                if let Some(restored) = crate::aggregate::checkpoint::restore(
                    self.log.as_ref(),
                    &id,
                    &mut agg.aggregation,
                )? && restored.positions.len() == pipeline.positions.len()
                {
                    pipeline.positions = restored.positions;
                }
                // ksqlDB's `commit.interval.ms` (also as a `ksql.streams.` property).
                let interval = ["commit.interval.ms", "ksql.streams.commit.interval.ms"]
                    .iter()
                    .find_map(|p| self.properties.get(*p))
                    .and_then(|v| v.parse().ok())
                    .map_or(
                        crate::query::CHECKPOINT_INTERVAL,
                        std::time::Duration::from_millis,
                    );
                Some((std::time::Instant::now(), interval))
            }
            _ => None,
        };
        self.add_query(
            PersistentQuery {
                id,
                sink_key: Serde::key(&sink),
                sink_value: Serde::value(&sink),
                sink_partitions,
                sink,
                pipeline,
                stats: Arc::new(QueryStats::default()),
                checkpoints,
                join,
            },
            self.current_text.clone(),
        );
        Ok(())
    }

    /// `ALTER STREAM|TABLE name ADD [COLUMN] col type, …`: new value columns on a stream or
    /// table declared over a topic (ksqlDB refuses source tables and streams, and those a
    /// query writes). Queries already running keep the columns they were planned with.
    pub(crate) fn alter_source(
        &mut self,
        kind: SourceKind,
        name: &str,
        add: &[sluice_sql::ast::ColumnDef],
    ) -> Result<String, EngineError> {
        let kind_word = kind_name(kind);
        let Some(mut source) = self.catalog.get(name).cloned() else {
            return err(format!("Source {name} does not exist."));
        };
        if source.kind != kind {
            return err(format!(
                "Incompatible data source type is {}, but statement was ALTER {}",
                source.kind, kind
            ));
        }
        if source.read_only {
            return err(format!(
                "Cannot alter {kind_word} '{name}': ALTER operations are not supported on source {kind_word}s."
            ));
        }
        if self.queries.iter().any(|q| q.sink_name == name) {
            return err("ALTER command is not supported for CREATE ... AS statements.");
        }
        for d in add {
            if d.constraint != ColumnConstraint::None {
                return err(format!(
                    "Cannot add column `{}`: ALTER can only add value columns.",
                    d.name
                ));
            }
            if source.columns.iter().any(|c| c.name == d.name) {
                return err(format!(
                    "Cannot add column `{}` to schema. A column with the same name already exists.",
                    d.name
                ));
            }
            let ty = self
                .catalog
                .resolve(&d.ty)
                .map_err(|name| EngineError(format!("Unknown type: {name}")))?;
            source.columns.push(Column {
                name: d.name.clone(),
                ty,
                key: false,
            });
        }
        self.catalog.insert(source);
        Ok(format!("{} {name} altered.", capitalized(kind)))
    }

    pub(crate) fn drop_source(
        &mut self,
        kind: SourceKind,
        name: &str,
        if_exists: bool,
        delete_topic: bool,
    ) -> Result<String, EngineError> {
        let kind_word = kind_name(kind);
        let Some(source) = self.catalog.get(name).cloned() else {
            if if_exists {
                return Ok(format!("Source `{name}` does not exist."));
            }
            return err(format!("{kind_word} {name} does not exist."));
        };
        if source.kind != kind {
            return err(format!(
                "Incompatible data source type is {}, but statement was DROP {}",
                source.kind, kind
            ));
        }
        let readers: Vec<&str> = self
            .queries
            .iter()
            .filter(|q| q.source_name == name)
            .map(|q| q.id.as_str())
            .collect();
        let writers: Vec<&str> = self
            .queries
            .iter()
            .filter(|q| q.sink_name == name)
            .map(|q| q.id.as_str())
            .collect();
        if !readers.is_empty() || !writers.is_empty() {
            return err(format!(
                "Cannot drop {name}.\nThe following queries read from this source: [{}].\nThe following queries write into this source: [{}].\nYou need to terminate them before dropping {name}.",
                readers.join(", "),
                writers.join(", ")
            ));
        }
        if delete_topic && source.read_only {
            return err(format!("Cannot delete topic for read-only source: {name}"));
        }
        self.catalog.remove(name);
        if delete_topic {
            self.log.delete_topic(&source.topic)?;
        }
        Ok(format!(
            "Source `{name}` (topic: {}) was dropped.",
            source.topic
        ))
    }

    pub(crate) fn terminate(&mut self, id: Option<&str>) -> Result<String, EngineError> {
        let doomed: Vec<usize> = match id {
            None => (0..self.queries.len()).collect(),
            Some(id) => match self
                .queries
                .iter()
                .position(|q| q.id.eq_ignore_ascii_case(id))
            {
                Some(i) => vec![i],
                None => return err(format!("Unknown queryId: {id}")),
            },
        };
        for &i in doomed.iter().rev() {
            let q = self.queries.remove(i);
            q.stop();
            // A terminated query's state goes with it.
            let state = crate::aggregate::checkpoint::topic(&q.id);
            if self.log.describe_topic(&state).is_ok() {
                self.log.delete_topic(&state)?;
            }
        }
        Ok(match id {
            Some(id) => format!("Query terminated: {}", id.to_uppercase()),
            None => "All queries terminated.".to_string(),
        })
    }
}

/// `WITH (WINDOW_TYPE='TUMBLING'|'HOPPING'|'SESSION', WINDOW_SIZE='30 SECONDS')`: a source
/// whose record keys carry windows (another query's windowed output).
fn window_of(
    props: &BTreeMap<String, Literal>,
) -> Result<Option<sluice_sql::ast::WindowKind>, EngineError> {
    use sluice_sql::ast::{Duration, WindowKind};
    let Some(kind) = prop_string(props, "WINDOW_TYPE") else {
        return Ok(None);
    };
    let size = match prop_string(props, "WINDOW_SIZE") {
        Some(text) => Some(
            sluice_sql::ast::Duration::parse_text(&text)
                .map_err(|e| EngineError(format!("Configuration WINDOW_SIZE is invalid: {e}")))?,
        ),
        None => None,
    };
    Ok(Some(match (kind.to_uppercase().as_str(), size) {
        ("SESSION", None) => WindowKind::Session {
            gap: Duration { millis: 0 },
        },
        ("SESSION", Some(_)) => {
            return err("'WINDOW_SIZE' should not be set for SESSION windows.");
        }
        ("TUMBLING", Some(size)) => WindowKind::Tumbling { size },
        ("HOPPING", Some(size)) => WindowKind::Hopping {
            size,
            advance: size,
        },
        ("TUMBLING" | "HOPPING", None) => {
            return err(format!(
                "WINDOW_SIZE must be set for {} windows.",
                kind.to_uppercase()
            ));
        }
        (other, _) => {
            return err(format!(
                "Invalid value {other} for property WINDOW_TYPE: String must be one of: SESSION, HOPPING, TUMBLING"
            ));
        }
    }))
}

fn capitalized(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "Stream",
        SourceKind::Table => "Table",
    }
}

/// Streams have KEY columns, tables one or more PRIMARY KEY columns.
fn check_key_constraints(c: &CreateSource) -> Result<(), EngineError> {
    for d in &c.columns {
        match (c.kind, &d.constraint) {
            (SourceKind::Table, ColumnConstraint::Key) => {
                return err(format!(
                    "Column `{}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.\nTables have PRIMARY KEYs, which are unique and NON NULL.\nStreams have KEYs, which have no uniqueness or NON NULL constraints.",
                    d.name
                ));
            }
            (SourceKind::Stream, ColumnConstraint::PrimaryKey) => {
                return err(format!(
                    "Column `{}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.\nTables have PRIMARY KEYs, which are unique and NON NULL.\nStreams have KEYs, which have no uniqueness or NON NULL constraints.",
                    d.name
                ));
            }
            _ => {}
        }
    }
    if c.kind == SourceKind::Table
        && !c.columns.is_empty()
        && !c
            .columns
            .iter()
            .any(|d| d.constraint == ColumnConstraint::PrimaryKey)
    {
        return err("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.");
    }
    Ok(())
}

fn describe_columns(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("`{}` {}{}", c.name, c.ty, if c.key { " KEY" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}
