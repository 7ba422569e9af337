//! Transient reads for a caller: `SELECT … [EMIT CHANGES]` over a stream becomes a
//! `PushQuery`, `PRINT topic` a `Printer` that formats raw records as ksqlDB's PRINT does.

use std::sync::Arc;

use sluice_sql::ast::{Emit, Query, SourceKind};
use sluice_storage::EventLog;
use sluice_storage::batch::{self, BatchHeader, Batches};

use crate::engine::{Engine, EngineError, StatementResult, err};
use crate::planner::QueryUse;
use crate::query::{PushQuery, Waiter};

impl Engine {
    /// `SELECT … EMIT CHANGES` streams rows as they arrive, from the end of the source or,
    /// with `auto.offset.reset=earliest`, its start. Without `EMIT CHANGES` a query over a
    /// stream reads what the stream holds now and ends (ksqlDB's pull query on a stream).
    pub(crate) fn select(&mut self, q: &Query) -> Result<StatementResult, EngineError> {
        // A pull query (no EMIT) refuses the clauses only a push query has, in ksqlDB's order
        // and words.
        if q.emit.is_none() {
            let clause = if matches!(q.from, sluice_sql::ast::Relation::Join { .. }) {
                Some("JOIN")
            } else if q.window.is_some() {
                Some("WINDOW")
            } else if !q.group_by.is_empty() {
                Some("GROUP BY")
            } else if !q.partition_by.is_empty() {
                Some("PARTITION BY")
            } else if q.having.is_some() {
                Some("HAVING")
            } else {
                None
            };
            if let Some(clause) = clause {
                return err(format!(
                    "Pull queries don't support {clause} clauses. See https://cnfl.io/queries for more info. Add EMIT CHANGES if you intended to issue a push query."
                ));
            }
        }
        // A table without EMIT CHANGES: a pull query over its current rows.
        if let sluice_sql::ast::Relation::Source { name, .. } = &q.from
            && let Some(table) = self.catalog.get(name).cloned()
            && table.kind == SourceKind::Table
            && q.emit.is_none()
        {
            return self.pull(q, &table);
        }
        let mut planned = self.plan_query(q, "", QueryUse::Push)?;
        let earliest = self
            .properties
            .get("auto.offset.reset")
            .is_some_and(|v| v.eq_ignore_ascii_case("earliest"));
        if let Some(mut plan) = planned.join.take() {
            if q.emit != Some(Emit::Changes) {
                return err("A query over a join is a push query: add EMIT CHANGES.");
            }
            // Stream sides from their end (or start, with auto.offset.reset=earliest),
            // tables from their start.
            for side in plan.source_sides_mut() {
                let topic = side.planned.source.topic.clone();
                let from_start = earliest || side.kind == SourceKind::Table;
                let n = self.log.describe_topic(&topic)?.partitions.len() as u32;
                side.planned.pipeline.positions = (0..n)
                    .map(|p| {
                        self.log
                            .offsets(&topic, p)
                            .map(|(start, end)| if from_start { start } else { end })
                    })
                    .collect::<Result<_, _>>()?;
            }
            let join = crate::join::Join::new(*plan, &planned.pipeline)?;
            let schema = planned.pipeline.output_schema()?;
            return Ok(StatementResult::Query(Box::new(PushQuery {
                pipeline: planned.pipeline,
                log: self.log.clone(),
                processing_log: self.processing_log,
                id: format!("transient_join_{}", self.query_counter),
                remaining: q.limit,
                limit: q.limit,
                until: None,
                schema,
                waiter: Waiter::new(),
                pending: Vec::new(),
                join: Some(Box::new(join)),
            })));
        }
        let topic = planned.source.topic.clone();
        let partitions = self.log.describe_topic(&topic)?.partitions.len() as u32;
        let push = q.emit == Some(Emit::Changes);
        let mut positions = Vec::new();
        let mut ends = Vec::new();
        for p in 0..partitions {
            let (start, end) = self.log.offsets(&topic, p)?;
            positions.push(if earliest || !push { start } else { end });
            ends.push(end);
        }
        let mut pipeline = planned.pipeline;
        pipeline.positions = positions;
        let schema = pipeline.output_schema()?;
        let id = format!("transient_{}_{}", planned.source.name, self.query_counter);
        Ok(StatementResult::Query(Box::new(PushQuery {
            pipeline,
            log: self.log.clone(),
            processing_log: self.processing_log,
            id,
            remaining: q.limit,
            limit: q.limit,
            until: if push { None } else { Some(ends) },
            schema,
            waiter: Waiter::new(),
            pending: Vec::new(),
            join: None,
        })))
    }

    /// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`.
    pub(crate) fn print(
        &self,
        topic: &str,
        from_beginning: bool,
        interval: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Printer, EngineError> {
        // ksqlDB matches the topic name case-insensitively when the exact name is absent.
        let info = self.log.describe_topic(topic).or_else(|e| {
            self.log
                .list_topics()
                .into_iter()
                .find(|t| t.name.eq_ignore_ascii_case(topic))
                .ok_or(e)
        });
        let Ok(info) = info else {
            return err(format!(
                "Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive."
            ));
        };
        let mut positions = Vec::new();
        for p in 0..info.partitions.len() as u32 {
            let (start, end) = self.log.offsets(&info.name, p)?;
            positions.push(if from_beginning { start } else { end });
        }
        Ok(Printer {
            log: self.log.clone(),
            topic: info.name,
            positions,
            interval: interval.unwrap_or(1).max(1),
            seen: 0,
            remaining: limit,
            waiter: Waiter::new(),
        })
    }
}

/// Streams a topic's records as text lines.
pub struct Printer {
    log: Arc<dyn EventLog>,
    topic: String,
    positions: Vec<u64>,
    interval: u64,
    seen: u64,
    remaining: Option<u64>,
    waiter: Waiter,
}

impl Printer {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn is_done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Lines for the records available now.
    pub fn poll(&mut self) -> Result<Vec<String>, EngineError> {
        let mut lines = Vec::new();
        for p in 0..self.positions.len() {
            let from = self.positions[p];
            let (start, end) = self.log.offsets(&self.topic, p as u32)?;
            if from >= end {
                continue;
            }
            let from = from.max(start);
            let r = self.log.read(&self.topic, p as u32, from, 1 << 20)?;
            let mut next = from;
            for b in Batches::new(&r.data) {
                let h = BatchHeader::parse(b)?;
                batch::for_each_record(b, |rec| {
                    if (rec.offset as u64) < from || self.remaining == Some(0) {
                        return Ok(());
                    }
                    self.seen += 1;
                    if (self.seen - 1).is_multiple_of(self.interval) {
                        lines.push(format!(
                            "rowtime: {}, key: {}, value: {}, partition: {p}",
                            format_rowtime(rec.timestamp),
                            show_bytes(rec.key),
                            show_bytes(rec.value)
                        ));
                        if let Some(r) = self.remaining.as_mut() {
                            *r -= 1;
                        }
                    }
                    Ok(())
                })?;
                next = h.next_offset();
            }
            self.positions[p] = next.max(from);
        }
        Ok(lines)
    }

    /// Waits until the topic has records past what was printed, or `deadline`.
    pub fn wait(&self, deadline: std::time::Instant) -> bool {
        self.waiter
            .wait_any(self.log.as_ref(), &self.topic, &self.positions, deadline)
    }
}

/// `2020/05/20 10:26:03.823 Z`, as ksqlDB's PRINT shows a record's time.
pub fn format_rowtime(ms: i64) -> String {
    match datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms) {
        Some(t) => format!("{} Z", t.format("%Y/%m/%d %H:%M:%S%.3f")),
        None => ms.to_string(),
    }
}

/// A key or value as text, guessing its format as ksqlDB's PRINT does: printable UTF-8 as
/// is, 4 and 8 bytes as Kafka's big-endian INT and BIGINT, other bytes escaped, a null as
/// `<null>`.
fn show_bytes(b: Option<&[u8]>) -> String {
    let Some(b) = b else {
        return "<null>".into();
    };
    if let Ok(s) = std::str::from_utf8(b)
        && s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t')
    {
        return s.to_string();
    }
    if let Ok(four) = <[u8; 4]>::try_from(b) {
        return i32::from_be_bytes(four).to_string();
    }
    if let Ok(eight) = <[u8; 8]>::try_from(b) {
        return i64::from_be_bytes(eight).to_string();
    }
    b.iter().map(|x| format!("\\x{x:02X}")).collect()
}
