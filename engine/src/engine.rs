//! The engine: executes ksqlDB statements against the catalog and the log, and runs
//! persistent queries. A persistent query is a step function over the log — read what its
//! source partitions hold past its committed offsets, decode, filter and project with
//! DataFusion expressions, encode, append to the sink, commit — so a runtime can schedule
//! steps on threads while tests and the conformance runner drive them to idle,
//! deterministically.
//!
//! So far: CREATE STREAM over a topic and CREATE STREAM … AS SELECT (projection, WHERE) over
//! one stream, in the KAFKA and JSON formats.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::ExprSchemable;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{self as sqlast, Ident, VisitMut, VisitorMut};
use sluice_sql::ast::{
    CreateAsSelect, CreateSource, Literal, Query, Relation, SelectItem, SourceKind, Statement,
};
use sluice_storage::batch::{self, BatchBuilder, BatchHeader, Batches};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{CommittedOffset, Compression, EventLog, TopicConfig};

use crate::catalog::{Catalog, Column, Format, Source};
use crate::codec::Serde;
use crate::schema::{arrow_type, sql_type};

/// An error of a statement or a query, with ksqlDB's words where ksqlDB has words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, EngineError> {
    Err(EngineError(msg.into()))
}

impl From<sluice_storage::StorageError> for EngineError {
    fn from(e: sluice_storage::StorageError) -> Self {
        EngineError(e.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        EngineError(e.to_string())
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError(e.to_string())
    }
}

impl From<crate::FormatError> for EngineError {
    fn from(e: crate::FormatError) -> Self {
        EngineError(e.to_string())
    }
}

/// A record read from a source partition: timestamp, offset, key, value.
struct InputRecord {
    timestamp: i64,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// A running persistent query.
struct PersistentQuery {
    id: String,
    source: Source,
    sink: Source,
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// One expression per sink column, in the sink's column order.
    projection: Vec<Arc<dyn PhysicalExpr>>,
    input_schema: Arc<Schema>,
    /// Next offset to read per source partition.
    positions: Vec<u64>,
    source_key: Serde,
    source_value: Serde,
    sink_key: Serde,
    sink_value: Serde,
    /// Partitions of the sink topic (fixed once the topic exists).
    sink_partitions: u32,
}

pub struct Engine {
    log: Arc<dyn EventLog>,
    catalog: Catalog,
    queries: Vec<PersistentQuery>,
    properties: BTreeMap<String, String>,
    ctx: SessionContext,
    query_counter: usize,
}

/// Upper-cases unquoted identifiers (ksqlDB's rule) and marks them quoted so DataFusion keeps
/// them as they are.
struct NormalizeIdents;

impl VisitorMut for NormalizeIdents {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
        let fix = |i: &mut Ident| {
            if i.quote_style.is_none() {
                i.value = i.value.to_uppercase();
                i.quote_style = Some('"');
            }
        };
        match expr {
            sqlast::Expr::Identifier(i) => fix(i),
            sqlast::Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fix),
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn prop_string(props: &BTreeMap<String, Literal>, name: &str) -> Option<String> {
    props.get(name).map(|l| match l {
        Literal::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn contains_map(ty: &sluice_sql::SqlType) -> bool {
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

const PSEUDO: [(&str, DataType); 3] = [
    ("ROWTIME", DataType::Int64),
    ("ROWPARTITION", DataType::Int32),
    ("ROWOFFSET", DataType::Int64),
];

impl Engine {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        let ctx = SessionContext::new();
        if let Err(e) = crate::functions::register(&ctx) {
            tracing::error!(error = %e, "registering ksqlDB functions failed");
        }
        Engine {
            log,
            catalog: Catalog::default(),
            queries: Vec::new(),
            properties: BTreeMap::new(),
            ctx,
            query_counter: 0,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn set_property(&mut self, name: &str, value: &str) {
        self.properties.insert(name.to_string(), value.to_string());
    }

    /// Parses and executes a script; returns one message per statement.
    pub fn execute_sql(&mut self, sql: &str) -> Result<Vec<String>, EngineError> {
        let statements = sluice_sql::parse(sql).map_err(|e| EngineError(e.to_string()))?;
        statements.iter().map(|s| self.execute(s)).collect()
    }

    pub fn execute(&mut self, stmt: &Statement) -> Result<String, EngineError> {
        match stmt {
            Statement::CreateSource(c) => self.create_source(c),
            Statement::CreateAsSelect(c) => self.create_as_select(c),
            Statement::Set { name, value } => {
                self.set_property(name, value);
                Ok(format!(
                    "Successfully changed local property '{name}' to '{value}'."
                ))
            }
            other => err(format!("not supported yet: {}", statement_kind(other))),
        }
    }

    fn formats(
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

    fn create_source(&mut self, c: &CreateSource) -> Result<String, EngineError> {
        if c.kind != SourceKind::Stream {
            return err("CREATE TABLE is not supported yet");
        }
        if let Some(existing) = self.catalog.get(&c.name) {
            if c.if_not_exists {
                return Ok(format!("Stream {} already exists", existing.name));
            }
            return err(format!(
                "Cannot add stream '{}': A stream with the same name already exists",
                c.name
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
            .map(|d| Column {
                name: d.name.clone(),
                ty: d.ty.clone(),
                key: d.constraint == sluice_sql::ast::ColumnConstraint::Key,
            })
            .collect();
        let source = self.new_source(
            &c.name,
            c.kind,
            &topic,
            columns,
            (key_format, value_format),
            &c.properties,
            (',', ','),
        )?;
        if self.log.describe_topic(&topic).is_err() {
            match prop_string(&c.properties, "PARTITIONS").and_then(|p| p.parse::<u32>().ok()) {
                Some(n) => {
                    self.log.create_topic(&topic, n, TopicConfig::default())?;
                }
                None => return err(format!("Kafka topic does not exist: {topic}")),
            }
        }
        self.catalog.insert(source);
        Ok("Stream created".into())
    }

    /// Builds a source with the delimiters and wrapping its WITH clause asks for (the
    /// delimiters default to `default_delimiters`), and checks its formats can carry it.
    #[allow(clippy::too_many_arguments)]
    fn new_source(
        &self,
        name: &str,
        kind: SourceKind,
        topic: &str,
        columns: Vec<Column>,
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
        };
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
        Serde::key(s).check()?;
        Serde::value(s).check()?;
        Ok(())
    }

    fn input_schema(source: &Source) -> Result<Arc<Schema>, EngineError> {
        let mut fields: Vec<Field> = PSEUDO
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect();
        for c in source.key_columns().chain(source.value_columns()) {
            let t =
                arrow_type(&c.ty).ok_or_else(|| EngineError(format!("unknown type {}", c.ty)))?;
            fields.push(Field::new(&c.name, t, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn plan_expr(
        &self,
        expr: &sqlast::Expr,
        df_schema: &DFSchema,
    ) -> Result<datafusion::logical_expr::Expr, EngineError> {
        let mut e = expr.clone();
        let _ = e.visit(&mut NormalizeIdents);
        Ok(self.ctx.state().create_logical_expr_from_sql_expr(
            sqlast::ExprWithAlias {
                expr: e,
                alias: None,
            },
            df_schema,
        )?)
    }

    fn create_as_select(&mut self, c: &CreateAsSelect) -> Result<String, EngineError> {
        if c.kind != SourceKind::Stream {
            return err("CREATE TABLE AS SELECT is not supported yet");
        }
        if self.catalog.get(&c.name).is_some() {
            return err(format!(
                "Cannot add stream '{}': A stream with the same name already exists",
                c.name
            ));
        }
        let q: &Query = &c.query;
        if q.window.is_some()
            || !q.group_by.is_empty()
            || q.having.is_some()
            || !q.partition_by.is_empty()
        {
            return err("windows, GROUP BY, HAVING and PARTITION BY are not supported yet");
        }
        let Relation::Source { name, alias } = &q.from else {
            return err("joins are not supported yet");
        };
        let source = self
            .catalog
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError(format!("{name} does not exist.")))?;
        let schema = Self::input_schema(&source)?;
        let qualifier = alias.clone().unwrap_or_else(|| source.name.clone());
        let df_schema = DFSchema::try_from_qualified_schema(qualifier.as_str(), &schema)?;
        let filter = match &q.filter {
            Some(f) => {
                let e = self.plan_expr(f, &df_schema)?;
                Some(self.ctx.create_physical_expr(e, &df_schema)?)
            }
            None => None,
        };
        // Output columns: keys first (ksqlDB keeps the source key), then values.
        let mut items: Vec<(String, datafusion::logical_expr::Expr)> = Vec::new();
        let mut generated = 0;
        for item in &q.select {
            match item {
                SelectItem::Wildcard | SelectItem::QualifiedWildcard(_) => {
                    for col in source.key_columns().chain(source.value_columns()) {
                        items.push((
                            col.name.clone(),
                            datafusion::logical_expr::col(datafusion::common::Column::new(
                                Some(qualifier.clone()),
                                col.name.clone(),
                            )),
                        ));
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    let e = self.plan_expr(expr, &df_schema)?;
                    let name = match (alias, expr) {
                        (Some(a), _) => a.clone(),
                        (None, sqlast::Expr::Identifier(i)) => i.value.to_uppercase(),
                        (None, sqlast::Expr::CompoundIdentifier(parts)) => parts
                            .last()
                            .map(|p| p.value.to_uppercase())
                            .unwrap_or_default(),
                        _ => {
                            let n = format!("KSQL_COL_{generated}");
                            generated += 1;
                            n
                        }
                    };
                    items.push((name, e));
                }
                SelectItem::StructWildcard(_) => {
                    return err("struct wildcards are not supported yet");
                }
            }
        }
        // Each source key column must be projected (under any alias): that item is the key.
        let mut key_items: Vec<usize> = Vec::new();
        for k in source.key_columns() {
            let found = items.iter().enumerate().position(|(i, (_, e))| {
                !key_items.contains(&i)
                    && matches!(e, datafusion::logical_expr::Expr::Column(col) if col.name == k.name)
            });
            match found {
                Some(i) => key_items.push(i),
                None => {
                    return err(format!(
                        "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{}` must include the key column {} in its projection (eg, SELECT {}...).",
                        c.name, k.name, k.name
                    ));
                }
            }
        }
        let mut columns = Vec::new();
        let mut projection = Vec::new();
        let ordered = key_items.iter().map(|&i| (true, &items[i])).chain(
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| !key_items.contains(i))
                .map(|(_, it)| (false, it)),
        );
        for (key, (name, e)) in ordered {
            if columns.iter().any(|c: &Column| &c.name == name) {
                return err(format!("Duplicate value columns found in schema: `{name}`"));
            }
            let dt = e.to_field(&df_schema)?.1.data_type().clone();
            let ty = sql_type(&dt)
                .ok_or_else(|| EngineError(format!("unsupported result type {dt}")))?;
            columns.push(Column {
                name: name.clone(),
                ty,
                key,
            });
            projection.push(self.ctx.create_physical_expr(e.clone(), &df_schema)?);
        }
        let topic = prop_string(&c.properties, "KAFKA_TOPIC").unwrap_or_else(|| c.name.clone());
        let (key_format, value_format) = self.formats(&c.properties, false)?;
        let key_format =
            if c.properties.contains_key("KEY_FORMAT") || c.properties.contains_key("FORMAT") {
                key_format
            } else {
                source.key_format
            };
        let value_format = value_format.unwrap_or(source.value_format);
        let sink = self.new_source(
            &c.name,
            SourceKind::Stream,
            &topic,
            columns,
            (key_format, value_format),
            &c.properties,
            (source.key_delimiter, source.value_delimiter),
        )?;
        let partitions = self.log.describe_topic(&source.topic)?.partitions.len() as u32;
        let sink_partitions = match self.log.describe_topic(&topic) {
            Ok(info) => info.partitions.len() as u32,
            Err(_) => {
                let n = prop_string(&c.properties, "PARTITIONS")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(partitions);
                self.log.create_topic(&topic, n, TopicConfig::default())?;
                n
            }
        };
        let id = format!("CSAS_{}_{}", c.name, self.query_counter);
        self.query_counter += 1;
        let earliest = self
            .properties
            .get("auto.offset.reset")
            .is_some_and(|v| v == "earliest");
        let positions = (0..partitions)
            .map(|p| {
                let (start, end) = self.log.offsets(&source.topic, p)?;
                Ok(if earliest { start } else { end })
            })
            .collect::<Result<Vec<u64>, EngineError>>()?;
        self.catalog.insert(sink.clone());
        self.queries.push(PersistentQuery {
            id: id.clone(),
            source_key: Serde::key(&source),
            source_value: Serde::value(&source),
            sink_key: Serde::key(&sink),
            sink_value: Serde::value(&sink),
            sink_partitions,
            source,
            sink,
            filter,
            projection,
            input_schema: schema,
            positions,
        });
        Ok(format!("Created query with ID {id}"))
    }

    /// Runs every persistent query until none has anything left to read.
    pub fn run_until_idle(&mut self) -> Result<(), EngineError> {
        loop {
            let mut progressed = false;
            for i in 0..self.queries.len() {
                progressed |= self.step(i)?;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    /// One step of query `i`: everything readable now. Returns whether it read anything.
    fn step(&mut self, i: usize) -> Result<bool, EngineError> {
        let mut progressed = false;
        let partitions = self.queries[i].positions.len();
        for p in 0..partitions {
            let (topic, from) = (
                self.queries[i].source.topic.clone(),
                self.queries[i].positions[p],
            );
            let r = self.log.read(&topic, p as u32, from, 1 << 20)?;
            if r.data.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            let mut next = from;
            for b in Batches::new(&r.data) {
                let h = BatchHeader::parse(b)?;
                batch::for_each_record(b, |rec| {
                    if rec.offset as u64 >= from {
                        records.push(InputRecord {
                            timestamp: rec.timestamp,
                            offset: rec.offset,
                            key: rec.key.map(<[u8]>::to_vec),
                            value: rec.value.map(<[u8]>::to_vec),
                        });
                    }
                    Ok(())
                })?;
                next = h.next_offset();
            }
            self.process(i, p as u32, &records)?;
            let q = &mut self.queries[i];
            q.positions[p] = next;
            self.log.commit_offsets(
                &q.id,
                &[CommittedOffset {
                    topic,
                    partition: p as u32,
                    offset: next,
                    metadata: String::new(),
                    commit_timestamp: 0,
                }],
            )?;
            progressed = true;
        }
        Ok(progressed)
    }

    fn process(
        &mut self,
        i: usize,
        partition: u32,
        records: &[InputRecord],
    ) -> Result<(), EngineError> {
        if records.is_empty() {
            return Ok(());
        }
        let q = &self.queries[i];
        let keys: Vec<Option<&[u8]>> = records.iter().map(|r| r.key.as_deref()).collect();
        let values: Vec<Option<&[u8]>> = records.iter().map(|r| r.value.as_deref()).collect();
        let (key_arrays, key_errors) = q.source_key.decode(&keys)?;
        let (value_arrays, value_errors) = q.source_value.decode(&values)?;
        let bad: std::collections::HashSet<usize> = key_errors
            .iter()
            .chain(&value_errors)
            .map(|(i, _)| *i)
            .collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.timestamp),
            )),
            Arc::new(Int32Array::from_iter_values(
                records.iter().map(|_| partition as i32),
            )),
            Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.offset),
            )),
        ];
        columns.extend(key_arrays);
        columns.extend(value_arrays);
        let mut batch = RecordBatch::try_new(q.input_schema.clone(), columns)?;
        // Bad records are skipped (the processing log comes with the runtime).
        let keep: BooleanArray = (0..records.len())
            .map(|r| Some(!bad.contains(&r) && records[r].value.is_some()))
            .collect();
        let mut tombstones: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
        for (r, rec) in records.iter().enumerate() {
            if rec.value.is_none() && !bad.contains(&r) {
                tombstones.push((rec.timestamp, rec.key.clone()));
            }
        }
        batch = filter_record_batch(&batch, &keep)?;
        // A batch whose expressions fail is retried row by row, so only the rows that fail
        // are dropped (logged; the processing log comes with the runtime).
        let evaluated = match filter_and_project(q, &batch) {
            Ok(x) => vec![x],
            Err(e) => {
                let mut rows = Vec::new();
                for r in 0..batch.num_rows() {
                    match filter_and_project(q, &batch.slice(r, 1)) {
                        Ok(x) => rows.push(x),
                        Err(e) => {
                            tracing::warn!(query = %q.id, error = %e, "skipping a record whose expressions fail")
                        }
                    }
                }
                tracing::debug!(query = %q.id, error = %e, "batch evaluation failed; evaluated row by row");
                rows
            }
        };
        let nkeys = q.sink_key.columns.len();
        let partitions = q.sink_partitions;
        let mut builders: BTreeMap<u32, BatchBuilder> = BTreeMap::new();
        // Keyed output goes where Kafka's partitioner puts the key; unkeyed stays in step
        // with the input partition.
        let mut emit = |ts: i64, key: Option<&[u8]>, value: Option<&[u8]>| {
            let p = key.map_or(partition % partitions, |k| partition_for_key(k, partitions));
            builders
                .entry(p)
                .or_insert_with(|| BatchBuilder::new(Compression::None))
                .push(ts, key, value, &[]);
        };
        for (batch, outputs) in &evaluated {
            let rowtime = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| EngineError("ROWTIME is not a BIGINT column".into()))?;
            for row in 0..batch.num_rows() {
                // A key whose columns are all null is a null key.
                let key = if outputs[..nkeys].iter().all(|a| a.is_null(row)) {
                    None
                } else {
                    q.sink_key.encode(&outputs[..nkeys], row)?
                };
                let value = q.sink_value.encode(&outputs[nkeys..], row)?;
                emit(rowtime.value(row), key.as_deref(), value.as_deref());
            }
        }
        // A null value passes through as a null value.
        for (ts, key) in tombstones {
            emit(ts, key.as_deref(), None);
        }
        let topic = q.sink.topic.clone();
        for (p, b) in builders {
            let mut bytes = b.finish()?;
            self.log.append(&topic, p, &mut bytes)?;
        }
        Ok(())
    }
}

/// Applies a query's WHERE and projection to a batch: the rows kept, and one output column
/// per sink column.
fn filter_and_project(
    q: &PersistentQuery,
    batch: &RecordBatch,
) -> Result<(RecordBatch, Vec<ArrayRef>), EngineError> {
    let mut batch = batch.clone();
    if let Some(f) = &q.filter {
        let mask = evaluate(f.as_ref(), &batch)?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| EngineError("WHERE must be a boolean expression".into()))?;
        // NULL counts as false, as in SQL.
        let mask: BooleanArray = mask.iter().map(|v| Some(v == Some(true))).collect();
        batch = filter_record_batch(&batch, &mask)?;
    }
    let outputs = q
        .projection
        .iter()
        .map(|e| evaluate(e.as_ref(), &batch))
        .collect::<Result<_, _>>()?;
    Ok((batch, outputs))
}

/// Evaluates an expression over a batch. A function that panics on some input (a library
/// bug) fails this batch with an error instead of taking the process down.
fn evaluate(e: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<ArrayRef, EngineError> {
    let run = || {
        e.evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => Ok(r?),
        Err(_) => err(format!("evaluating {e} failed")),
    }
}

fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::CreateSource(_) => "CREATE",
        Statement::CreateAsSelect(_) => "CREATE AS SELECT",
        Statement::InsertInto { .. } => "INSERT INTO",
        Statement::InsertValues { .. } => "INSERT VALUES",
        Statement::Select(_) => "SELECT",
        Statement::Drop { .. } => "DROP",
        _ => "this statement",
    }
}
