//! Sluice's network front ends: the Kafka wire protocol (`kafka`), so Kafka clients
//! produce to, fetch from and join consumer groups on Sluice's log unchanged, configured
//! from a broker's `server.properties` (`properties`); and ksqlDB's REST API (`rest`) over
//! the engine, for ksqlDB's clients.

pub mod kafka;
pub mod kafka_client;
mod kafka_codes;
pub mod properties;
pub mod rest;
