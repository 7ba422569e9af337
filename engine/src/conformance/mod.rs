//! The conformance runner behind `sluice test`: ksqlDB's query-validation test files (their
//! format is described in `../shared/conformance/ksql-qtt/FORMAT.md`) loaded with numbers
//! kept exact, expanded into their format/config variants, and outputs compared as ksqlDB's
//! own harness compares them. Running a case through the engine comes with the engine's
//! query runtime (docs/engine.md).

pub mod compare;
pub mod json;
pub mod model;
pub mod runner;
