//! `EXPLAIN <statement>` and `EXPLAIN <query id>`: how Sluice runs a query — its source,
//! the filter, each output column with its type and the expression computing it, whether it
//! re-keys — and, for a running query, its statement and status.

use sluice_sql::ast::{ExplainTarget, Query, Statement};

use crate::engine::{Engine, EngineError, StatementResult, err};
use crate::planner::QueryUse;

impl Engine {
    pub(crate) fn explain(&self, target: &ExplainTarget) -> Result<StatementResult, EngineError> {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let owned;
        let (query, sink, usage): (&Query, String, QueryUse) = match target {
            ExplainTarget::QueryId(id) => {
                let Some(q) = self.queries.iter().find(|q| q.id.eq_ignore_ascii_case(id)) else {
                    return err(format!(
                        "Query with id:{id} does not exist, use SHOW QUERIES to view the full set of queries."
                    ));
                };
                rows.push(vec!["Query ID".into(), q.id.clone()]);
                rows.push(vec!["Status".into(), q.status().label()]);
                if let Some((windows, late)) = q.state_summary() {
                    rows.push(vec![
                        "State".into(),
                        format!("{windows} window(s) or group(s) held"),
                    ]);
                    rows.push(vec![
                        "Late records".into(),
                        format!("{late} dropped (their window had closed)"),
                    ]);
                }
                rows.push(vec![
                    "Statement".into(),
                    q.statement.split_whitespace().collect::<Vec<_>>().join(" "),
                ]);
                owned = sluice_sql::parser::parse_statement(&q.statement)
                    .map_err(|e| EngineError(e.to_string()))?;
                match &owned {
                    Statement::CreateAsSelect(c) => {
                        (&c.query, c.name.clone(), QueryUse::Persistent)
                    }
                    Statement::InsertInto { target, query, .. } => {
                        (query, target.clone(), QueryUse::Persistent)
                    }
                    _ => return err(format!("Query {id} has no plan to show")),
                }
            }
            ExplainTarget::Statement(s) => match s.as_ref() {
                Statement::CreateAsSelect(c) => (&c.query, c.name.clone(), QueryUse::Persistent),
                Statement::InsertInto { target, query, .. } => {
                    (query, target.clone(), QueryUse::Persistent)
                }
                Statement::Select(q) => (q, "QUERY".into(), QueryUse::Push),
                _ => {
                    return err(
                        "EXPLAIN shows queries: SELECT, CREATE … AS SELECT or INSERT INTO … SELECT",
                    );
                }
            },
        };
        let planned = self.plan_query(query, &sink, usage)?;
        let p = &planned.pipeline;
        rows.push(vec![
            "Source".into(),
            format!(
                "{} {} (topic {}, key {}, value {})",
                p.source.kind,
                p.source.name,
                p.source.topic,
                p.source.key_format.name(),
                p.source.value_format.name()
            ),
        ]);
        if usage == QueryUse::Persistent {
            rows.push(vec!["Sink".into(), sink]);
        }
        rows.push(vec![
            "Filter".into(),
            p.filter
                .as_ref()
                .map_or_else(|| "none".into(), |f| f.to_string()),
        ]);
        for (column, expr) in p.output.iter().zip(&p.projection) {
            let role = if column.key { "Key" } else { "Column" };
            rows.push(vec![
                role.into(),
                format!("{} {} := {expr}", column.name, column.ty),
            ]);
        }
        if p.rekeyed {
            rows.push(vec!["Re-keyed".into(), "yes (PARTITION BY)".into()]);
        }
        Ok(StatementResult::Table {
            title: None,
            header: vec!["Step".into(), "Detail".into()],
            rows,
        })
    }
}
