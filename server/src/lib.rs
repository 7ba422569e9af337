//! Sluice's network front ends. Today: the Kafka wire protocol (`kafka`), so Kafka clients
//! produce to, fetch from and join consumer groups on Sluice's log unchanged, configured
//! from a broker's `server.properties` (`properties`). The ksqlDB REST API comes next.

pub mod kafka;
pub mod properties;
