//! Running persistent queries: each query lives behind a `QueryHandle` (its state under a
//! mutex, a stop flag, counters) and, while a host runs the engine, on its own thread that
//! steps it and otherwise waits on the log's tail (no polling). The same handle can be
//! stepped from another thread (`run_until_idle`); the mutex keeps steps one at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_storage::EventLog;

use crate::engine::EngineError;
use crate::processing_log::ProcessingLog;
use crate::query::{PersistentQuery, QueryStats, Waiter};

/// How long a query thread waits for data before it looks at its stop flag again.
const WAIT_SLICE: Duration = Duration::from_millis(200);
/// How long a failing query waits before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts query steps that moved data, across threads, so `run_until_idle` can tell that
/// nothing happened behind its back while it looked.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub completed: AtomicU64,
}

/// A query's status, as `SHOW QUERIES` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    Running,
    /// Defined but not running in this process (no host started the engine).
    Idle,
    Error(String),
}

impl QueryStatus {
    /// As SHOW QUERIES and EXPLAIN print it.
    pub fn label(&self) -> String {
        match self {
            QueryStatus::Running => "RUNNING".into(),
            QueryStatus::Idle => "NOT RUNNING".into(),
            QueryStatus::Error(e) => format!("ERROR: {e}"),
        }
    }
}

/// A materialized table as it stands: its result columns, the aggregated rows and their
/// output columns.
pub(crate) type Materialized = (
    Vec<crate::catalog::Column>,
    datafusion::arrow::array::RecordBatch,
    Vec<datafusion::arrow::array::ArrayRef>,
);

pub(crate) struct QueryHandle {
    pub id: String,
    pub statement: String,
    pub sink_name: String,
    pub sink_topic: String,
    pub source_name: String,
    pub kind: &'static str,
    pub stats: Arc<QueryStats>,
    pub started: Instant,
    query: Mutex<PersistentQuery>,
    stop: Arc<AtomicBool>,
    error: Mutex<Option<String>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueryHandle {
    pub fn new(query: PersistentQuery, statement: String) -> Self {
        QueryHandle {
            id: query.id.clone(),
            statement,
            sink_name: query.sink.name.clone(),
            sink_topic: query.sink.topic.clone(),
            source_name: match &query.join {
                Some(j) => j.source_names().join(", "),
                None => query.pipeline.source.name.clone(),
            },
            kind: "PERSISTENT",
            stats: query.stats.clone(),
            started: Instant::now(),
            query: Mutex::new(query),
            stop: Arc::new(AtomicBool::new(false)),
            error: Mutex::new(None),
            thread: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PersistentQuery> {
        // A panic inside a step poisons nothing we cannot go on with: the state is positions
        // that only move after a successful write.
        self.query.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One step; counts it in `progress` when it moved data.
    pub fn step(
        &self,
        log: &dyn EventLog,
        processing_log: &ProcessingLog,
        progress: &Progress,
    ) -> Result<bool, EngineError> {
        let mut q = self.lock();
        let moved = q.step(log, processing_log)?;
        if moved {
            progress.completed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(moved)
    }

    pub fn status(&self) -> QueryStatus {
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return QueryStatus::Error(e);
        }
        let running = self
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        if running {
            QueryStatus::Running
        } else {
            QueryStatus::Idle
        }
    }

    /// Records not yet read from the source.
    pub fn lag(&self, log: &dyn EventLog) -> u64 {
        self.lock().pipeline.lag(log).unwrap_or(0)
    }

    /// Starts the query's thread (if not running).
    pub fn spawn(
        self: &Arc<Self>,
        log: Arc<dyn EventLog>,
        processing_log: ProcessingLog,
        progress: Arc<Progress>,
    ) {
        let mut slot = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        self.stop.store(false, Ordering::SeqCst);
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("query-{}", self.id))
            .spawn(move || me.run(log.as_ref(), &processing_log, &progress));
        match spawned {
            Ok(t) => *slot = Some(t),
            Err(e) => *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string()),
        }
    }

    fn run(&self, log: &dyn EventLog, processing_log: &ProcessingLog, progress: &Progress) {
        let waiter = Waiter::new();
        while !self.stop.load(Ordering::SeqCst) {
            match self.step(log, processing_log, progress) {
                Ok(true) => {
                    *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Ok(false) => {
                    let targets = self.lock().wait_targets();
                    waiter.wait_many(log, &targets, Instant::now() + WAIT_SLICE);
                }
                Err(e) => {
                    tracing::error!(query = %self.id, error = %e, "query step failed; retrying");
                    *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    let until = Instant::now() + RETRY_AFTER;
                    while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
                        std::thread::park_timeout(WAIT_SLICE);
                    }
                }
            }
        }
        // A clean stop leaves the newest state behind, so the next start replays nothing.
        if let Err(e) = self.lock().checkpoint(log) {
            tracing::error!(query = %self.id, error = %e, "checkpoint at stop failed");
        }
    }

    /// An aggregating query's windows (or groups) in memory and late records dropped.
    pub fn state_summary(&self) -> Option<(usize, u64)> {
        self.lock()
            .pipeline
            .aggregation
            .as_ref()
            .map(|a| (a.aggregation.state_size(), a.aggregation.late_records))
    }

    /// The table an aggregating query materializes, as it stands: (its result columns, the
    /// aggregated rows, their output columns). `None` for other queries.
    pub(crate) fn materialized(&self) -> Option<Result<Materialized, EngineError>> {
        let q = self.lock();
        let agg = q.pipeline.aggregation.as_ref()?;
        Some(
            agg.aggregation
                .current_rows()
                .map(|(b, o)| (agg.aggregation.plan.output.clone(), b, o)),
        )
    }

    /// Checkpoints an aggregating query's state now (a host stopping without threads).
    pub fn checkpoint(&self, log: &dyn EventLog) -> Result<(), EngineError> {
        self.lock().checkpoint(log)
    }

    /// Stops the thread after its current step and waits for it.
    pub fn stop(&self) {
        self.signal_stop();
        self.join();
    }

    /// Asks the thread to stop after its current step (several queries stop together).
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            t.thread().unpark();
        }
    }

    /// Waits for a stopping thread to end.
    pub fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
