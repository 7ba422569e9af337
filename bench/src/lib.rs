//! Sluice's benchmarks: the Nexmark workload (events generated into topics and exported as
//! JSON lines for peer engines) and the harness that runs the Nexmark queries as persistent
//! queries and measures them per CPU-second, with their outputs summarised so they can be
//! checked against a peer's.

pub mod events;
pub mod generate;
pub mod harness;
pub mod latency;
pub mod measure;
pub mod outputs;
pub mod queries;
pub mod report;
