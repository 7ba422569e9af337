//! Sluice's network front ends. Today: the Kafka wire protocol (`kafka`), so Kafka clients
//! produce to and fetch from Sluice's log unchanged. The ksqlDB REST API comes next.

pub mod kafka;
