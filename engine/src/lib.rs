//! sluice-engine: where ksqlDB's SQL meets the log. So far it owns the mapping of ksqlDB's
//! types onto Arrow and the serialization formats (bytes <-> Arrow columns); the catalog,
//! operators and query runtime grow here next (see docs/engine.md).

pub mod format;
pub mod schema;

pub use format::FormatError;
