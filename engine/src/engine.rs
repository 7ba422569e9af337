//! The engine: executes ksqlDB statements against the catalog and the log, and owns the
//! persistent queries. Statement kinds live in their own modules (`ddl`, `planner`,
//! `show`, `insert_values`); this one dispatches, keeps the catalog durable through the
//! command topic (`commands`), and starts and stops queries (`runtime`).
//!
//! A persistent query is a step function over the log, so the same query runs on its own
//! thread under a host (REPL, `sluice sql`, server) and is driven to idle, deterministically,
//! by tests and the conformance runner (`run_until_idle`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::execution::context::SessionContext;
use sluice_sql::ast::{SourceKind, Statement};
use sluice_storage::EventLog;

use crate::catalog::Catalog;
use crate::commands::{self, Command};
use crate::processing_log::{self, ProcessingLog};
use crate::query::{PersistentQuery, PushQuery};
use crate::runtime::{Progress, QueryHandle};

/// An error of a statement or a query, with ksqlDB's words where ksqlDB has words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, EngineError> {
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

/// How an engine keeps its catalog and reports skipped records.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Record accepted statements in `_sluice_commands` and replay them at open.
    pub durable: bool,
    /// Write skipped records to `KSQL_PROCESSING_LOG` (created at open).
    pub processing_log: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            durable: true,
            processing_log: true,
        }
    }
}

/// What a statement answers.
pub enum StatementResult {
    /// A one-line acknowledgement ("Stream created", "Created query with ID …").
    Message(String),
    /// Rows of text, as `SHOW` and `DESCRIBE` print them.
    Table {
        title: Option<String>,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A push query (or a query over a stream's current contents): rows to stream.
    Query(Box<PushQuery>),
    /// `PRINT topic`: records to stream.
    Print(Box<crate::print::Printer>),
}

impl StatementResult {
    /// The result as one text (for messages and tables; queries say what they are).
    pub fn message(&self) -> String {
        match self {
            StatementResult::Message(m) => m.clone(),
            StatementResult::Table { header, rows, .. } => {
                format!("{} row(s): {}", rows.len(), header.join(", "))
            }
            StatementResult::Query(_) => "push query".into(),
            StatementResult::Print(_) => "print".into(),
        }
    }
}

impl std::fmt::Debug for StatementResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

pub struct Engine {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) catalog: Catalog,
    pub(crate) queries: Vec<Arc<QueryHandle>>,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) ctx: SessionContext,
    pub(crate) query_counter: usize,
    pub(crate) options: EngineOptions,
    pub(crate) processing_log: ProcessingLog,
    pub(crate) progress: Arc<Progress>,
    /// Whether queries run on their own threads (a host called `start`).
    pub(crate) threaded: bool,
    /// While replaying the command topic: the start offsets the command recorded.
    pub(crate) replay_offsets: Option<Option<Vec<u64>>>,
    /// Start offsets fixed by the statement being executed, to record with it.
    pub(crate) started_offsets: Option<Vec<u64>>,
    /// The text of the statement being executed (what `SHOW QUERIES` shows for a query).
    pub(crate) current_text: String,
}

impl Engine {
    /// An engine with no durable catalog and no processing log (tests, the conformance
    /// runner: every case starts from nothing).
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        // With neither durability nor a processing log there is nothing to initialize.
        Self::build(
            log,
            EngineOptions {
                durable: false,
                processing_log: false,
            },
        )
    }

    /// Opens an engine over a log: creates the processing-log stream, and when durable
    /// replays the command topic so the catalog and queries come back. Queries do not run
    /// until `start` (or `run_until_idle`).
    pub fn open(log: Arc<dyn EventLog>, options: EngineOptions) -> Result<Self, EngineError> {
        let mut engine = Self::build(log, options);
        engine.initialize()?;
        Ok(engine)
    }

    fn build(log: Arc<dyn EventLog>, options: EngineOptions) -> Self {
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
            options,
            processing_log: ProcessingLog {
                enabled: options.processing_log,
            },
            progress: Arc::new(Progress::default()),
            threaded: false,
            replay_offsets: None,
            started_offsets: None,
            current_text: String::new(),
        }
    }

    fn initialize(&mut self) -> Result<(), EngineError> {
        if self.options.processing_log {
            self.processing_log.ensure_topic(self.log.as_ref())?;
            let stmt = sluice_sql::parse_statement(processing_log::CREATE_STREAM)
                .map_err(|e| EngineError(e.to_string()))?;
            self.execute_unrecorded(&stmt)?;
        }
        if self.options.durable {
            commands::ensure_topic(self.log.as_ref())?;
            for command in commands::read_all(self.log.as_ref())? {
                self.replay(command);
            }
        }
        Ok(())
    }

    /// Re-executes one recorded command. A command that no longer applies (its topic was
    /// deleted behind the engine's back) is skipped with a warning, as ksqlDB does.
    fn replay(&mut self, command: Command) {
        let saved = std::mem::replace(&mut self.properties, command.properties);
        self.replay_offsets = Some(command.start_offsets);
        self.current_text = command.statement.clone();
        let result = sluice_sql::parse_statement(&command.statement)
            .map_err(|e| EngineError(e.to_string()))
            .and_then(|s| self.execute_unrecorded(&s));
        if let Err(e) = result {
            tracing::warn!(statement = %command.statement, error = %e, "a recorded statement no longer applies");
        }
        self.replay_offsets = None;
        self.properties = saved;
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Ids of the persistent queries, in creation order.
    pub fn query_ids(&self) -> Vec<String> {
        self.queries.iter().map(|q| q.id.clone()).collect()
    }

    pub fn set_property(&mut self, name: &str, value: &str) {
        self.properties.insert(name.to_string(), value.to_string());
    }

    pub fn unset_property(&mut self, name: &str) {
        self.properties.remove(name);
    }

    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Parses and executes a script; returns one result per statement, stopping at the
    /// first statement that fails.
    pub fn execute_sql(&mut self, sql: &str) -> Result<Vec<StatementResult>, EngineError> {
        let statements =
            sluice_sql::parse_with_text(sql).map_err(|e| EngineError(e.to_string()))?;
        statements
            .iter()
            .map(|(s, text)| self.execute(s, text))
            .collect()
    }

    /// Executes one statement; `text` is its source, recorded in the command topic when the
    /// statement changes the catalog.
    pub fn execute(
        &mut self,
        stmt: &Statement,
        text: &str,
    ) -> Result<StatementResult, EngineError> {
        self.started_offsets = None;
        self.current_text = text.to_string();
        let result = self.execute_unrecorded(stmt)?;
        if self.options.durable && is_recorded(stmt) {
            let command = Command {
                statement: text.to_string(),
                properties: self.properties.clone(),
                start_offsets: self.started_offsets.take(),
            };
            commands::append(self.log.as_ref(), &command)?;
        }
        Ok(result)
    }

    fn execute_unrecorded(&mut self, stmt: &Statement) -> Result<StatementResult, EngineError> {
        use StatementResult::Message;
        match stmt {
            Statement::CreateSource(c) => self.create_source(c).map(Message),
            Statement::CreateAsSelect(c) => self.create_as_select(c).map(Message),
            // WITH properties of INSERT INTO (QUERY_ID) are not used yet.
            Statement::InsertInto {
                target,
                target_at,
                query,
                ..
            } => self.insert_into(target, *target_at, query).map(Message),
            Statement::InsertValues {
                target,
                columns,
                values,
            } => self.insert_values(target, columns, values).map(Message),
            Statement::Select(q) => self.select(q),
            Statement::Drop {
                kind,
                name,
                if_exists,
                delete_topic,
            } => self
                .drop_source(*kind, name, *if_exists, *delete_topic)
                .map(Message),
            Statement::Terminate(id) => self.terminate(id.as_deref()).map(Message),
            Statement::AlterSource {
                kind,
                name,
                add_columns,
            } => self.alter_source(*kind, name, add_columns).map(Message),
            Statement::CreateType {
                name,
                if_not_exists,
                ty,
            } => self.create_type(name, *if_not_exists, ty).map(Message),
            Statement::DropType { name, if_exists } => {
                self.drop_type(name, *if_exists).map(Message)
            }
            Statement::Show { what, extended } => self.show(what, *extended),
            Statement::Describe { name, extended } => self.describe(name, *extended),
            Statement::DescribeStreams { extended } => {
                self.show(&sluice_sql::ast::ShowWhat::Streams, *extended)
            }
            Statement::DescribeFunction(name) => self.describe_function(name),
            Statement::Explain(target) => self.explain(target),
            Statement::Print {
                topic,
                from_beginning,
                interval,
                limit,
            } => self
                .print(topic, *from_beginning, *interval, *limit)
                .map(|p| StatementResult::Print(Box::new(p))),
            Statement::Set { name, value } => {
                self.set_property(name, value);
                Ok(Message(format!(
                    "Successfully changed local property '{name}' to '{value}'."
                )))
            }
            Statement::Unset(name) => {
                self.properties.remove(name);
                Ok(Message(format!(
                    "Successfully unset local property '{name}'."
                )))
            }
            other => err(format!("not supported yet: {}", statement_kind(other))),
        }
    }

    /// Registers a new persistent query and, when queries run on threads, starts it.
    pub(crate) fn add_query(&mut self, query: PersistentQuery, statement: String) {
        let handle = Arc::new(QueryHandle::new(query, statement));
        if self.threaded {
            handle.spawn(self.log.clone(), self.processing_log, self.progress.clone());
        }
        self.queries.push(handle);
    }

    /// The next query id for a sink: `CSAS_<SINK>_<n>` as ksqlDB names them.
    pub(crate) fn next_query_id(&mut self, prefix: &str, sink: &str) -> String {
        let id = format!("{prefix}_{sink}_{}", self.query_counter);
        self.query_counter += 1;
        id
    }

    /// Where a new query starts reading each source partition: the offsets recorded for it
    /// when replaying, its committed offsets if it ran before, else `auto.offset.reset` now.
    pub(crate) fn start_positions(
        &mut self,
        query_id: &str,
        topic: &str,
    ) -> Result<Vec<u64>, EngineError> {
        let partitions = self.log.describe_topic(topic)?.partitions.len() as u32;
        let recorded = self.replay_offsets.clone().flatten();
        let earliest = self
            .properties
            .get("auto.offset.reset")
            .is_some_and(|v| v.eq_ignore_ascii_case("earliest"));
        let mut start = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let (first, end) = self.log.offsets(topic, p)?;
            let fixed = recorded.as_ref().and_then(|r| r.get(p as usize).copied());
            start.push(fixed.unwrap_or(if earliest { first } else { end }));
        }
        self.started_offsets = Some(start.clone());
        // A query that ran before goes on from what it committed.
        let mut positions = start;
        if self.replay_offsets.is_some() {
            for c in self.log.committed_offsets(query_id)? {
                if c.topic == topic
                    && let Some(slot) = positions.get_mut(c.partition as usize)
                {
                    *slot = c.offset;
                }
            }
        }
        Ok(positions)
    }

    /// Runs every persistent query until none has anything left to read — including what
    /// queries on threads are in the middle of writing. This is how `sluice sql` waits for
    /// lag 0 and how tests wait for a condition instead of sleeping.
    pub fn run_until_idle(&mut self) -> Result<(), EngineError> {
        loop {
            let before = self.progress.completed.load(Ordering::SeqCst);
            let mut progressed = false;
            for q in &self.queries {
                progressed |= q.step(self.log.as_ref(), &self.processing_log, &self.progress)?;
            }
            if !progressed && self.progress.completed.load(Ordering::SeqCst) == before {
                return Ok(());
            }
        }
    }

    /// Starts every persistent query on its own thread (a host: REPL, `sluice sql`, server).
    pub fn start(&mut self) {
        self.threaded = true;
        for q in &self.queries {
            q.spawn(self.log.clone(), self.processing_log, self.progress.clone());
        }
    }

    /// Stops every query thread cleanly (each finishes the step it is in); the queries stay in
    /// the catalog and resume at the next start.
    pub fn stop(&mut self) {
        for q in &self.queries {
            q.signal_stop();
        }
        for q in &self.queries {
            q.join();
        }
        // Queries stepped without threads (`run_until_idle`) leave their state too; threads
        // checkpoint as they stop.
        if !self.threaded && self.options.durable {
            for q in &self.queries {
                if let Err(e) = q.checkpoint(self.log.as_ref()) {
                    tracing::error!(query = %q.id, error = %e, "checkpoint at stop failed");
                }
            }
        }
        self.threaded = false;
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Statements that change the catalog, recorded in the command topic.
fn is_recorded(s: &Statement) -> bool {
    matches!(
        s,
        Statement::CreateSource(_)
            | Statement::CreateAsSelect(_)
            | Statement::InsertInto { .. }
            | Statement::Drop { .. }
            | Statement::AlterSource { .. }
            | Statement::Terminate(_)
            | Statement::CreateType { .. }
            | Statement::DropType { .. }
    )
}

pub(crate) fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
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
        Statement::CreateType { .. } => "CREATE TYPE",
        Statement::DropType { .. } => "DROP TYPE",
        Statement::AlterSource { .. } => "ALTER",
        Statement::Pause(_) => "PAUSE",
        Statement::Resume(_) => "RESUME",
        Statement::Explain(_) => "EXPLAIN",
        Statement::RunScript(_) => "RUN SCRIPT",
        Statement::Define { .. } | Statement::Undefine(_) => "DEFINE",
        _ => "this statement",
    }
}
