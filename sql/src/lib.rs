//! sluice-sql: ksqlDB's SQL dialect, from text to statements. Built on the sqlparser that
//! DataFusion re-exports (no fork, no regular expressions): `KsqlDialect` adapts its
//! expression parser; `parser` reads ksqlDB's statements around those expressions. No I/O.

pub mod ast;
pub mod dialect;
pub mod error;
pub mod parser;
pub mod types;

pub use ast::Statement;
pub use error::ParseError;
pub use parser::{is_complete, parse, parse_statement, parse_with_text};
pub use types::SqlType;
