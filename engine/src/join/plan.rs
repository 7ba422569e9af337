//! Planning `… FROM a JOIN b [WITHIN …] ON a.x = b.y`: each side becomes a pipeline over
//! its source (every column, plus the join expression), and the query itself is planned
//! over the joined row as ksqlDB names it: every column of each side as `<ALIAS>_<COLUMN>`,
//! an unqualified column resolved to the one side that has it, and a synthetic `ROWKEY`
//! where the key is not one side's column (a FULL OUTER join, or a join on an expression).
//! WHERE, the projection, GROUP BY and the rest then run over joined rows like over any
//! source's.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self as sqlast, Ident, VisitMut, VisitorMut};
use sluice_sql::ast::{JoinKind, Query, Relation, SelectItem, SourceKind};

use crate::catalog::{Column, Source};
use crate::engine::{Engine, EngineError, err};
use crate::planner::{Planned, QueryUse};

/// One side of a join, planned.
pub(crate) struct JoinSide {
    pub planned: Planned,
    pub alias: String,
    pub kind: SourceKind,
    /// The side's columns (key then value), as they come out of its pipeline; the join
    /// expression follows them.
    pub columns: Vec<Column>,
}

/// A planned join: its two sides and how they meet.
pub(crate) struct JoinPlan {
    pub left: JoinSide,
    pub right: JoinSide,
    pub kind: JoinKind,
    /// `WITHIN (before, after)` of a stream-stream join, in milliseconds.
    pub within: Option<(i64, i64)>,
    pub grace: i64,
    /// Whether the join names a GRACE PERIOD (then unmatched outer records wait for their
    /// window to close, as Kafka Streams does since KIP-633).
    pub grace_given: bool,
    /// Whether the joined row starts with a synthetic `ROWKEY` (the join key).
    pub synthetic_key: bool,
    /// Otherwise the joined column (side, column) that carries the join key, whichever
    /// side a row has.
    pub key_column: Option<(usize, usize)>,
}

/// Replaces column references by their joined-row names.
struct Resolve<'a> {
    left: (&'a str, &'a [Column]),
    right: (&'a str, &'a [Column]),
    error: Option<String>,
}

impl Resolve<'_> {
    fn joined(&mut self, qualifier: Option<&str>, column: &str) -> Option<String> {
        let has = |cols: &[Column]| cols.iter().any(|c| c.name == column);
        match qualifier {
            Some(q) if q == self.left.0 => Some(format!("{}_{column}", self.left.0)),
            Some(q) if q == self.right.0 => Some(format!("{}_{column}", self.right.0)),
            Some(q) => {
                self.error = Some(format!("'{q}' is not a valid stream/table name or alias."));
                None
            }
            None => match (has(self.left.1), has(self.right.1)) {
                (true, true) => {
                    self.error = Some(format!(
                        "Column '{column}' is ambiguous. Could be {}.{column} or {}.{column}.",
                        self.left.0, self.right.0
                    ));
                    None
                }
                (true, false) => Some(format!("{}_{column}", self.left.0)),
                (false, true) => Some(format!("{}_{column}", self.right.0)),
                (false, false) => None,
            },
        }
    }
}

fn normal(i: &Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_uppercase(),
    }
}

impl VisitorMut for Resolve<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> ControlFlow<()> {
        let renamed = match expr {
            sqlast::Expr::Identifier(i) => self.joined(None, &normal(i)),
            sqlast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                self.joined(Some(&normal(&parts[0])), &normal(&parts[1]))
            }
            _ => None,
        };
        if let Some(name) = renamed {
            *expr = sqlast::Expr::Identifier(Ident::with_quote('"', name));
        }
        ControlFlow::Continue(())
    }
}

/// An expression as ksqlDB prints it in join errors: names upper-cased, a bare column
/// qualified with `alias` (when one is given).
fn qualified(e: &sqlast::Expr, alias: &str) -> String {
    let mut e = e.clone();
    let _ = sqlast::visit_expressions_mut(&mut e, |x| {
        match x {
            sqlast::Expr::Identifier(i) if !alias.is_empty() => {
                *x = sqlast::Expr::CompoundIdentifier(vec![
                    Ident::new(alias.to_string()),
                    Ident::new(normal(i)),
                ]);
            }
            sqlast::Expr::Identifier(i) => *i = Ident::new(normal(i)),
            sqlast::Expr::CompoundIdentifier(parts) => {
                for p in parts.iter_mut() {
                    *p = Ident::new(normal(p));
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

/// Which side's columns an expression reads: (left, right).
fn sides(e: &sqlast::Expr, left: &str, right: &str, l: &[Column], r: &[Column]) -> (bool, bool) {
    let mut found = (false, false);
    let _ = sqlast::visit_expressions(e, |x| {
        match x {
            sqlast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let q = normal(&parts[0]);
                if q == left {
                    found.0 = true;
                } else if q == right {
                    found.1 = true;
                }
            }
            sqlast::Expr::Identifier(i) => {
                let c = normal(i);
                found.0 |= l.iter().any(|x| x.name == c);
                found.1 |= r.iter().any(|x| x.name == c);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `ON a = b`'s sides, the left source's first.
fn join_condition<'a>(
    on: &'a sqlast::Expr,
    names: (&str, &str),
    cols: (&[Column], &[Column]),
) -> Result<(&'a sqlast::Expr, &'a sqlast::Expr), EngineError> {
    let sqlast::Expr::BinaryOp {
        left: a,
        op: sqlast::BinaryOperator::Eq,
        right: b,
    } = on
    else {
        if let sqlast::Expr::BinaryOp {
            op: sqlast::BinaryOperator::And,
            left,
            right,
        } = on
        {
            return err(format!(
                "Invalid join condition: joins on multiple conditions are not yet supported. Got (({}) AND ({})).",
                qualified(left, ""),
                qualified(right, "")
            ));
        }
        return err(format!(
            "Unsupported join expression: {on}. Only equality joins between one column or expression of each source are supported."
        ));
    };
    // A qualifier must name one of the sources, and the column be one of its.
    let mut unknown = None;
    let mut unresolved = None;
    let _ = sqlast::visit_expressions(on, |x| {
        if let sqlast::Expr::CompoundIdentifier(parts) = x
            && parts.len() == 2
        {
            let (q, c) = (normal(&parts[0]), normal(&parts[1]));
            let has = |cols: &[Column]| cols.iter().any(|col| col.name == c);
            if q != names.0 && q != names.1 {
                unknown = Some(q);
            } else if (q == names.0 && !has(cols.0)) || (q == names.1 && !has(cols.1)) {
                unresolved = Some(format!("{q}.{c}"));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(q) = unknown {
        return err(format!(
            "Failed to prepare statement: '{q}' is not a valid stream/table name or alias."
        ));
    }
    if let Some(c) = unresolved {
        return err(format!("JOIN ON column '{c}' cannot be resolved."));
    }
    let (al, ar) = sides(a, names.0, names.1, cols.0, cols.1);
    let (bl, br) = sides(b, names.0, names.1, cols.0, cols.1);
    if al && !ar && br && !bl {
        Ok((a, b))
    } else if ar && !al && bl && !br {
        Ok((b, a))
    } else {
        // The side that reads no source (or a column neither has).
        let (bad, unresolved) = if !al && !ar {
            (a, true)
        } else {
            (b, !bl && !br)
        };
        if unresolved
            && let sqlast::Expr::CompoundIdentifier(_) | sqlast::Expr::Identifier(_) = bad.as_ref()
        {
            return err(format!(
                "JOIN ON column '{}' cannot be resolved.",
                qualified(bad, "")
            ));
        }
        err(format!(
            "Invalid comparison expression '{}' in join '({} = {})'. Each side of the join comparision must contain references from exactly one source.",
            qualified(bad, ""),
            qualified(a, ""),
            qualified(b, "")
        ))
    }
}

impl Engine {
    /// Plans a two-source join query. `sink` names the result in ksqlDB's errors.
    pub(crate) fn plan_join(
        &self,
        q: &Query,
        sink: &str,
        usage: QueryUse,
    ) -> Result<(Planned, JoinPlan), EngineError> {
        let Relation::Join {
            left,
            right,
            kind,
            within,
            grace,
            on,
        } = &q.from
        else {
            return err("not a join");
        };
        let (
            Relation::Source {
                name: ln,
                alias: la,
            },
            Relation::Source {
                name: rn,
                alias: ra,
            },
        ) = (left.as_ref(), right.as_ref())
        else {
            return err("joins of more than two sources are not supported yet");
        };
        let get = |n: &str| {
            self.catalog
                .get(n)
                .cloned()
                .ok_or_else(|| EngineError(format!("{n} does not exist.")))
        };
        let (ls, rs) = (get(ln)?, get(rn)?);
        if ls.name == rs.name {
            return err(format!(
                "Can not join '{}' to '{}': self joins are not yet supported.",
                ls.name, rs.name
            ));
        }
        let kafka: Vec<&str> = [&ls, &rs]
            .iter()
            .filter(|s| s.value_format == crate::catalog::Format::Kafka)
            .map(|s| s.name.as_str())
            .collect();
        if !kafka.is_empty() {
            return err(format!(
                "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
                kafka.join(", ")
            ));
        }
        let la = la.clone().unwrap_or_else(|| ls.name.clone());
        let ra = ra.clone().unwrap_or_else(|| rs.name.clone());
        let kinds = (ls.kind, rs.kind);
        let describe = format!(
            "{} {} JOIN {}",
            ls.name,
            match kind {
                JoinKind::Inner => "[INNER]",
                JoinKind::Left => "[LEFT] OUTER",
                JoinKind::Right => "[RIGHT] OUTER",
                JoinKind::Full => "[FULL] OUTER",
            },
            rs.name
        );
        match kinds {
            (SourceKind::Table, SourceKind::Stream) => {
                return err(format!(
                    "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {describe}."
                ));
            }
            (SourceKind::Stream, SourceKind::Table)
                if matches!(kind, JoinKind::Full | JoinKind::Right) =>
            {
                let name = if *kind == JoinKind::Full {
                    "full-outer"
                } else {
                    "right-outer"
                };
                return err(format!(
                    "Invalid join type: {name} join not supported for stream-table join. Got {describe}."
                ));
            }
            (_, SourceKind::Table) if within.is_some() => {
                return err(
                    "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop the window definition (ie. the WITHIN clause) and try to execute your join again.",
                );
            }
            _ => {}
        }
        let all = |s: &Source| -> Vec<Column> {
            s.key_columns().chain(s.row_columns()).cloned().collect()
        };
        let (lc, rc) = (all(&ls), all(&rs));
        // Each side's system columns, in the joined row as `<ALIAS>_ROWTIME` and so on
        // (never in `*`).
        let system = |s: &Source| -> Vec<Column> {
            let mut cols = vec![
                ("ROWTIME", sluice_sql::SqlType::Bigint),
                ("ROWPARTITION", sluice_sql::SqlType::Int),
                ("ROWOFFSET", sluice_sql::SqlType::Bigint),
            ];
            if s.window.is_some() {
                cols.push(("WINDOWSTART", sluice_sql::SqlType::Bigint));
                cols.push(("WINDOWEND", sluice_sql::SqlType::Bigint));
            }
            cols.into_iter()
                .map(|(n, ty)| Column {
                    name: n.into(),
                    ty,
                    key: false,
                })
                .collect()
        };
        let lfull: Vec<Column> = lc.iter().cloned().chain(system(&ls)).collect();
        let rfull: Vec<Column> = rc.iter().cloned().chain(system(&rs)).collect();
        let (lexpr, rexpr) = join_condition(on, (&la, &ra), (&lc, &rc))?;
        if kinds == (SourceKind::Stream, SourceKind::Stream) && within.is_none() {
            return err(
                "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select",
            );
        }
        // A table joins on its primary key.
        let table_key = |e: &sqlast::Expr, s: &Source| {
            let name = match e {
                sqlast::Expr::Identifier(i) => normal(i),
                sqlast::Expr::CompoundIdentifier(p) if p.len() == 2 => normal(&p[1]),
                _ => return false,
            };
            s.key_columns().any(|k| k.name == name)
        };
        if rs.kind == SourceKind::Table && !table_key(rexpr, &rs) {
            let what = if ls.kind == SourceKind::Table {
                "table-table joins require to join on the primary key of the right input table"
            } else {
                "stream-table joins require to join on the table's primary key"
            };
            return err(format!(
                "Invalid join condition: {what}. Got {}.",
                qualified(on, "")
                    .replace(&qualified(lexpr, ""), &qualified(lexpr, &la))
                    .replace(&qualified(rexpr, ""), &qualified(rexpr, &ra))
            ));
        }
        if ls.kind == SourceKind::Table && !table_key(lexpr, &ls) {
            return err("foreign-key table-table joins are not supported yet");
        }
        // Each side: all its columns, then the join expression.
        let side = |s: &Source, alias: &str, e: &sqlast::Expr, cols: Vec<Column>| {
            let mut select = vec![SelectItem::Wildcard];
            for c in &system(s) {
                select.push(SelectItem::Expr {
                    expr: sqlast::Expr::Identifier(Ident::with_quote('"', c.name.clone())),
                    alias: Some(c.name.clone()),
                });
            }
            select.push(SelectItem::Expr {
                expr: e.clone(),
                alias: Some("__JOIN_KEY".into()),
            });
            let side_query = Query {
                select,
                from: Relation::Source {
                    name: s.name.clone(),
                    alias: Some(alias.to_string()),
                },
                window: None,
                filter: None,
                group_by: Vec::new(),
                partition_by: Vec::new(),
                having: None,
                emit: None,
                limit: None,
            };
            let planned = self.plan_over(&side_query, s.clone(), "", QueryUse::Push)?;
            Ok::<_, EngineError>(JoinSide {
                planned,
                alias: alias.to_string(),
                kind: s.kind,
                columns: cols,
            })
        };
        let lside = side(&ls, &la, lexpr, lfull.clone())?;
        let rside = side(&rs, &ra, rexpr, rfull.clone())?;
        let key_type = |s: &JoinSide| {
            s.planned
                .pipeline
                .output
                .last()
                .map(|c| c.ty.clone())
                .ok_or_else(|| EngineError("join side has no join key".into()))
        };
        let (lt, rt) = (key_type(&lside)?, key_type(&rside)?);
        if lt != rt {
            return err(format!(
                "Invalid join condition: types don't match. Got {lexpr}{{{lt}}} = {rexpr}{{{rt}}}."
            ));
        }
        // The key: the join column of the left (the right's for a RIGHT join, or when the
        // projection names only the right's), else a synthetic ROWKEY.
        let column_of = |e: &sqlast::Expr, alias: &str, cols: &[Column]| -> Option<String> {
            let name = match e {
                sqlast::Expr::Identifier(i) => normal(i),
                sqlast::Expr::CompoundIdentifier(p) if p.len() == 2 => normal(&p[1]),
                _ => return None,
            };
            cols.iter()
                .any(|c| c.name == name)
                .then(|| format!("{alias}_{name}"))
        };
        let mut resolve = Resolve {
            left: (&la, &lc),
            right: (&ra, &rc),
            error: None,
        };
        let mut rewritten = q.clone();
        let mut select = Vec::new();
        for item in &q.select {
            match item {
                SelectItem::Wildcard => select.push(SelectItem::Wildcard),
                SelectItem::QualifiedWildcard(w) => {
                    let (alias, cols) = if w.eq_ignore_ascii_case(&la) {
                        (&la, &lc)
                    } else if w.eq_ignore_ascii_case(&ra) {
                        (&ra, &rc)
                    } else {
                        return err(format!("'{w}' is not a valid stream/table name or alias."));
                    };
                    for c in cols {
                        select.push(SelectItem::Expr {
                            expr: sqlast::Expr::Identifier(Ident::with_quote(
                                '"',
                                format!("{alias}_{}", c.name),
                            )),
                            alias: None,
                        });
                    }
                }
                SelectItem::StructWildcard(e) => {
                    let mut e = e.clone();
                    let _ = e.visit(&mut resolve);
                    select.push(SelectItem::StructWildcard(e));
                }
                SelectItem::Expr { expr, alias } => {
                    // A column keeps its own name in the result, unless both sides have
                    // one of that name (then it is `<ALIAS>_<COLUMN>`).
                    let bare = match expr {
                        sqlast::Expr::Identifier(i) => Some(normal(i)),
                        sqlast::Expr::CompoundIdentifier(p) if p.len() == 2 => Some(normal(&p[1])),
                        _ => None,
                    };
                    let alias = alias.clone().or_else(|| {
                        bare.filter(|b| {
                            let both =
                                lc.iter().any(|c| &c.name == b) && rc.iter().any(|c| &c.name == b);
                            // A system column stays unaliased (and is refused as such).
                            let system = crate::planner::RESERVED_COLUMNS.contains(&b.as_str());
                            !both && !system
                        })
                    });
                    let mut e = expr.clone();
                    let _ = e.visit(&mut resolve);
                    select.push(SelectItem::Expr { expr: e, alias });
                }
            }
        }
        rewritten.select = select;
        for e in rewritten
            .filter
            .iter_mut()
            .chain(rewritten.having.iter_mut())
            .chain(rewritten.group_by.iter_mut())
            .chain(rewritten.partition_by.iter_mut())
        {
            let _ = e.visit(&mut resolve);
        }
        if let Some(e) = resolve.error {
            return err(e);
        }
        let projected = |name: &str| {
            rewritten.select.iter().any(|i| match i {
                SelectItem::Wildcard => true,
                SelectItem::Expr { expr, .. } => {
                    matches!(expr, sqlast::Expr::Identifier(x) if x.value == name)
                }
                _ => false,
            })
        };
        let lkey = column_of(lexpr, &la, &lc);
        let rkey = column_of(rexpr, &ra, &rc);
        // The key is the join key, named after a join column the projection names (the
        // left's first); a FULL OUTER join's, or one on expressions, is ROWKEY.
        let key = match kind {
            JoinKind::Full => None,
            _ => [&lkey, &rkey]
                .into_iter()
                .flatten()
                .find(|k| projected(k))
                .or(lkey.as_ref().or(rkey.as_ref()))
                .cloned(),
        };
        if usage == QueryUse::Persistent
            && q.group_by.is_empty()
            && let Some(k) = &key
            && !projected(k)
            && (lkey.as_ref().is_none_or(|l| !projected(l)))
            && (rkey.as_ref().is_none_or(|r| !projected(r)))
        {
            let _ = k;
            return err(format!(
                "The query used to build `{sink}` must include the join expressions {} or {} in its projection (eg, SELECT {}...).",
                qualified(lexpr, &la),
                qualified(rexpr, &ra),
                qualified(lexpr, &la)
            ));
        }
        let synthetic_key = key.is_none();
        if synthetic_key
            && usage == QueryUse::Persistent
            && q.group_by.is_empty()
            && !projected("ROWKEY")
        {
            return err(format!(
                "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the join expression ROWKEY in its projection (eg, SELECT ROWKEY...).\nROWKEY was added as a synthetic key column because the join criteria did not match any source column. This expression must be included in the projection and may be aliased."
            ));
        }
        let key_column = key.as_ref().and_then(|k| {
            [(0usize, &la, &lc), (1, &ra, &rc)]
                .into_iter()
                .find_map(|(side, alias, cols)| {
                    cols.iter()
                        .position(|c| &format!("{alias}_{}", c.name) == k)
                        .map(|i| (side, i))
                })
        });
        let mut columns = Vec::new();
        if synthetic_key {
            columns.push(Column {
                name: "ROWKEY".into(),
                ty: lt.clone(),
                key: true,
            });
        }
        for (alias, cols) in [(&la, &lfull), (&ra, &rfull)] {
            for c in cols {
                let name = format!("{alias}_{}", c.name);
                columns.push(Column {
                    key: key.as_deref() == Some(name.as_str()),
                    name,
                    ty: c.ty.clone(),
                });
            }
        }
        // `*`: the key, then each side's own columns (not their system columns).
        let visible: Vec<String> = columns
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name.clone())
            .chain(
                [(&la, &lc), (&ra, &rc)]
                    .into_iter()
                    .flat_map(|(alias, cols)| {
                        cols.iter().map(move |c| format!("{alias}_{}", c.name))
                    })
                    .filter(|n| key.as_deref() != Some(n.as_str())),
            )
            .collect();
        rewritten.select = rewritten
            .select
            .into_iter()
            .flat_map(|item| match item {
                SelectItem::Wildcard => visible
                    .iter()
                    .map(|n| SelectItem::Expr {
                        expr: sqlast::Expr::Identifier(Ident::with_quote('"', n.clone())),
                        alias: None,
                    })
                    .collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
        let joined_kind = if kinds == (SourceKind::Table, SourceKind::Table) {
            SourceKind::Table
        } else {
            SourceKind::Stream
        };
        let joined = Source {
            name: format!("{la}_{ra}_JOIN"),
            kind: joined_kind,
            topic: String::new(),
            columns,
            headers: Vec::new(),
            timestamp: None,
            read_only: true,
            window: None,
            ..ls.clone()
        };
        rewritten.from = Relation::Source {
            name: joined.name.clone(),
            alias: None,
        };
        let planned = self.plan_over(&rewritten, joined, sink, usage)?;
        let within = within
            .as_ref()
            .map(|w| (w.before.millis as i64, w.after.millis as i64));
        let grace_given = grace.is_some();
        let grace = grace.map_or(crate::aggregate::window::DEFAULT_GRACE_MS, |g| {
            g.millis as i64
        });
        Ok((
            planned,
            JoinPlan {
                left: lside,
                right: rside,
                kind: *kind,
                within,
                grace,
                grace_given,
                synthetic_key,
                key_column,
            },
        ))
    }
}
