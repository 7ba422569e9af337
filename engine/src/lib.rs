//! sluice-engine: where ksqlDB's SQL meets the log. It owns the mapping of ksqlDB's types
//! onto Arrow, the serialization formats (bytes <-> Arrow columns), the catalog made durable
//! by the command topic, statement execution, persistent and push queries and the threads
//! that run them, the processing log, and the conformance runner (see docs/engine.md).

mod aggregate;
pub mod catalog;
pub mod codec;
pub mod commands;
mod comparisons;
pub mod conformance;
mod ddl;
pub mod engine;
mod explain;
mod explode;
mod expr_text;
pub mod format;
pub mod functions;
mod headers;
mod in_list;
mod insert_values;
mod join;
mod lambda;
mod planner;
pub mod print;
pub mod processing_log;
mod pull;
pub mod query;
mod row_filter;
pub mod runtime;
pub mod schema;
mod show;
mod sink;
mod timestamps;

pub use engine::{Engine, EngineError, EngineOptions, StatementResult};
pub use format::FormatError;
pub use print::Printer;
pub use query::PushQuery;

/// The Arrow crate the engine's results are made of (DataFusion's, so versions never skew).
pub use datafusion::arrow;
