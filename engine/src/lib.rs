//! sluice-engine: where ksqlDB's SQL meets the log. So far it owns the mapping of ksqlDB's
//! types onto Arrow, the serialization formats (bytes <-> Arrow columns) and the conformance
//! runner's test model and output matching; the catalog, operators and query runtime grow
//! here next (see docs/engine.md).

pub mod catalog;
pub mod codec;
pub mod conformance;
pub mod engine;
pub mod format;
pub mod functions;
pub mod schema;

pub use format::FormatError;
