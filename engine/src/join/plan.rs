//! Planning `… FROM a JOIN b [WITHIN …] ON a.x = b.y [JOIN c ON …]…`: each side becomes a
//! pipeline over its source (every column, plus the join expression), and the query itself
//! is planned over the joined row as ksqlDB names it: every column of each source as
//! `<ALIAS>_<COLUMN>`, an unqualified column resolved to the one source that has it, and a
//! synthetic `ROWKEY` where the key is not one source's column (a FULL OUTER join, or a join
//! on expressions). WHERE, the projection, GROUP BY and the rest then run over joined rows
//! like over any source's.
//!
//! A join of more than two sources is planned left-deep, as ksqlDB does: `(a ⋈ b) ⋈ c`,
//! where the left side of the outer join reads the rows of the inner one (already named
//! `<ALIAS>_<COLUMN>`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self as sqlast, Ident, VisitMut, VisitorMut};
use sluice_sql::ast::{Duration, JoinKind, JoinWithin, Query, Relation, SelectItem, SourceKind};

use crate::catalog::{Column, Source};
use crate::engine::{Engine, EngineError, err};
use crate::planner::{Planned, QueryUse};

/// One side of a join, planned.
pub(crate) struct JoinSide {
    pub planned: Planned,
    /// The alias its columns are named after (`<ALIAS>_<COLUMN>`); empty for the rows of
    /// an inner join, whose columns already carry their joined names.
    pub alias: String,
    pub kind: SourceKind,
    /// The side's columns (key then value), as they come out of its pipeline; the join
    /// expression follows them.
    pub columns: Vec<Column>,
}

impl JoinSide {
    /// Column `c`'s name in the joined row.
    pub fn joined_name(&self, c: usize) -> String {
        let name = &self.columns[c].name;
        if self.alias.is_empty() {
            name.clone()
        } else {
            format!("{}_{name}", self.alias)
        }
    }
}

/// A planned join: its two sides and how they meet.
pub(crate) struct JoinPlan {
    pub left: JoinSide,
    pub right: JoinSide,
    /// The join whose rows the left side reads, in a join of more than two sources.
    pub nested: Option<Box<JoinPlan>>,
    pub kind: JoinKind,
    /// `WITHIN (before, after)` of a stream-stream join, in milliseconds.
    pub within: Option<(i64, i64)>,
    pub grace: i64,
    /// Whether the join names a GRACE PERIOD (then unmatched outer records wait for their
    /// window to close, as Kafka Streams does since KIP-633).
    pub grace_given: bool,
    /// Whether the joined row starts with a synthetic key column (the join key).
    pub synthetic_key: bool,
    /// The synthetic key column's name (`ROWKEY`, or `ROWKEY_<n>` where a source has one).
    pub synthetic_name: String,
    /// Otherwise the joined column (side, column) that carries the join key, whichever
    /// side a row has.
    pub key_column: Option<(usize, usize)>,
    /// A foreign-key table-table join: the left's join expression names the right's key;
    /// the result is keyed by the left's key.
    pub foreign_key: bool,
}

impl JoinPlan {
    /// The sides that read a source's topic: this join's and its nested joins'.
    pub fn source_sides_mut(&mut self) -> Vec<&mut JoinSide> {
        let mut sides = match &mut self.nested {
            Some(nested) => nested.source_sides_mut(),
            None => vec![&mut self.left],
        };
        sides.push(&mut self.right);
        sides
    }

    /// The first source of the join (its partitions are the sink's).
    pub fn leftmost(&self) -> &JoinSide {
        match &self.nested {
            Some(nested) => nested.leftmost(),
            None => &self.left,
        }
    }
}

/// A source of the join with the alias its columns are named after.
struct Member {
    source: Source,
    alias: String,
    /// Key then value columns.
    own: Vec<Column>,
    /// `own`, then the system columns (`<ALIAS>_ROWTIME` and so on: never in `*`).
    full: Vec<Column>,
}

/// One `JOIN <source> [WITHIN …] [GRACE PERIOD …] ON …` of the chain.
struct Step<'a> {
    kind: JoinKind,
    within: &'a Option<JoinWithin>,
    grace: &'a Option<Duration>,
    on: &'a sqlast::Expr,
}

/// The sources of a left-deep join, left to right, and the joins between them.
fn flatten<'a>(
    rel: &'a Relation,
    sources: &mut Vec<(&'a str, &'a Option<String>)>,
    steps: &mut Vec<Step<'a>>,
) -> Result<(), EngineError> {
    match rel {
        Relation::Source { name, alias } => sources.push((name, alias)),
        Relation::Join {
            left,
            right,
            kind,
            within,
            grace,
            on,
        } => {
            flatten(left, sources, steps)?;
            let Relation::Source { name, alias } = right.as_ref() else {
                return err("The right side of a join must be a stream or a table.");
            };
            sources.push((name, alias));
            steps.push(Step {
                kind: *kind,
                within,
                grace,
                on,
            });
        }
    }
    Ok(())
}

/// A column's reference split into (qualifier, name), upper-cased unless quoted.
fn column_ref(e: &sqlast::Expr) -> Option<(Option<String>, String)> {
    match e {
        sqlast::Expr::Identifier(i) => Some((None, normal(i))),
        sqlast::Expr::CompoundIdentifier(p) if p.len() == 2 => {
            Some((Some(normal(&p[0])), normal(&p[1])))
        }
        _ => None,
    }
}

/// The member (alias, column) a bare column expression names, if it is one.
fn column_of(e: &sqlast::Expr, members: &[Member]) -> Option<(String, String)> {
    let (qualifier, name) = column_ref(e)?;
    members
        .iter()
        .find(|m| {
            qualifier.as_ref().is_none_or(|q| *q == m.alias) && m.own.iter().any(|c| c.name == name)
        })
        .map(|m| (m.alias.clone(), name))
}

/// Replaces column references by their joined-row names.
struct Resolve<'a> {
    members: &'a [Member],
    error: Option<String>,
    /// Where the column being resolved is in the statement (`Line: L, Col: C: `).
    at: String,
}

impl Resolve<'_> {
    fn joined(&mut self, qualifier: Option<&str>, column: &str) -> Option<String> {
        match qualifier {
            Some(q) => match self.members.iter().find(|m| m.alias == q) {
                Some(m) => Some(format!("{}_{column}", m.alias)),
                None => {
                    self.error = Some(format!("'{q}' is not a valid stream/table name or alias."));
                    None
                }
            },
            None => {
                let having: Vec<&Member> = self
                    .members
                    .iter()
                    .filter(|m| m.own.iter().any(|c| c.name == column))
                    .collect();
                match having.as_slice() {
                    [] => None,
                    [m] => Some(format!("{}_{column}", m.alias)),
                    many => {
                        let could: Vec<String> = many
                            .iter()
                            .map(|m| format!("{}.{column}", m.alias))
                            .collect();
                        self.error = Some(format!(
                            "{}Column '{column}' is ambiguous. Could be {}.",
                            self.at,
                            could.join(" or ")
                        ));
                        None
                    }
                }
            }
        }
    }
}

fn normal(i: &Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_uppercase(),
    }
}

/// `alias.column[…]…` (a qualified column with a subscript or field access after it) as
/// (alias, column, the accesses after the column).
fn qualified_access(e: &sqlast::Expr) -> Option<(String, String, &[sqlast::AccessExpr])> {
    let sqlast::Expr::CompoundFieldAccess { root, access_chain } = e else {
        return None;
    };
    let (sqlast::Expr::Identifier(q), [sqlast::AccessExpr::Dot(sqlast::Expr::Identifier(c)), ..]) =
        (root.as_ref(), access_chain.as_slice())
    else {
        return None;
    };
    Some((normal(q), normal(c), &access_chain[1..]))
}

impl VisitorMut for Resolve<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> ControlFlow<()> {
        if let Some((q, c, rest)) = qualified_access(expr)
            && self.members.iter().any(|m| m.alias == q)
            && let Some(name) = self.joined(Some(&q), &c)
        {
            let column = sqlast::Expr::Identifier(Ident::with_quote('"', name));
            *expr = if rest.is_empty() {
                column
            } else {
                sqlast::Expr::CompoundFieldAccess {
                    root: Box::new(column),
                    access_chain: rest.to_vec(),
                }
            };
            return ControlFlow::Continue(());
        }
        let renamed = match column_ref(expr) {
            Some((q, c)) => {
                self.at = crate::expr_text::position_of(expr);
                self.joined(q.as_deref(), &c)
            }
            None => None,
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

/// Which members an expression reads (their indices, in order).
fn sides(e: &sqlast::Expr, members: &[Member]) -> Vec<usize> {
    let mut found = vec![false; members.len()];
    // Field names and subscripts after a column are not columns: only the column is read.
    let mut e = e.clone();
    let _ = sqlast::visit_expressions_mut(&mut e, |x| {
        if let Some((q, c, _)) = qualified_access(x)
            && members.iter().any(|m| m.alias == q)
        {
            *x = sqlast::Expr::CompoundIdentifier(vec![Ident::new(q), Ident::new(c)]);
        } else if let sqlast::Expr::CompoundFieldAccess { root, .. } = x {
            *x = root.as_ref().clone();
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = sqlast::visit_expressions(&e, |x| {
        match x {
            sqlast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let q = normal(&parts[0]);
                if let Some(i) = members.iter().position(|m| m.alias == q) {
                    found[i] = true;
                }
            }
            sqlast::Expr::Identifier(i) => {
                let c = normal(i);
                for (m, f) in members.iter().zip(found.iter_mut()) {
                    *f |= m.own.iter().any(|x| x.name == c);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (0..members.len()).filter(|i| found[*i]).collect()
}

/// `ON a = b`'s sides, the one reading the joined-so-far sources (all members but the
/// last) first, the one reading the last member second.
fn join_condition<'a>(
    on: &'a sqlast::Expr,
    members: &[Member],
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
            match members.iter().find(|m| m.alias == q) {
                None => unknown = Some(q),
                Some(m) if !m.own.iter().any(|col| col.name == c) => {
                    // ksqlDB says where in the statement text the column is.
                    let place = crate::expr_text::position(&parts[0]);
                    unresolved = Some(format!(
                        "{place}JOIN ON column '{q}.{c}' cannot be resolved."
                    ))
                }
                Some(_) => {}
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(q) = unknown {
        return err(format!(
            "Failed to prepare statement: '{q}' is not a valid stream/table name or alias."
        ));
    }
    if let Some(message) = unresolved {
        return err(message);
    }
    let last = members.len() - 1;
    let (ra, rb) = (sides(a, members), sides(b, members));
    let joined_so_far = |r: &[usize]| !r.is_empty() && r.iter().all(|m| *m < last);
    let only_last = |r: &[usize]| r == [last];
    if joined_so_far(&ra) && only_last(&rb) {
        return Ok((a, b));
    }
    if joined_so_far(&rb) && only_last(&ra) {
        return Ok((b, a));
    }
    if members.len() > 2 && ra.len() == 1 && rb.len() == 1 {
        let (x, y) = (&members[ra[0]].alias, &members[rb[0]].alias);
        if x == y {
            return err(format!(
                "Each side of the join must reference exactly one source and not the same source. Left side references `{x}` and right references `{y}`"
            ));
        }
        return err(format!(
            "A join criteria is expected to reference the source (`{}`) in the FROM clause, instead the right source references `{y}` and the left source references `{x}`",
            members[last].alias
        ));
    }
    // The side that reads no source (or a column none has).
    let (bad, unresolved) = if ra.is_empty() {
        (a, true)
    } else {
        (b, rb.is_empty())
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

/// The system columns of a source, as each side's pipeline outputs them after its own.
fn system_columns(s: &Source) -> Vec<Column> {
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
}

fn describe_kind(kind: JoinKind) -> &'static str {
    match kind {
        JoinKind::Inner => "[INNER]",
        JoinKind::Left => "[LEFT] OUTER",
        JoinKind::Right => "[RIGHT] OUTER",
        JoinKind::Full => "[FULL] OUTER",
    }
}

/// ksqlDB's rules for windowed sources in a join: both windowed or neither, sessions
/// only with sessions, and joined on their (windowed) keys with windows of one size, as
/// a windowed source cannot be re-partitioned.
fn check_windows(left: &Member, right: &Member, on_keys: bool) -> Result<(), EngineError> {
    use sluice_sql::ast::WindowKind;
    let name = |w: &WindowKind| match w {
        WindowKind::Tumbling { .. } => "TUMBLING",
        WindowKind::Hopping { .. } => "HOPPING",
        WindowKind::Session { .. } => "SESSION",
    };
    let size = |w: &WindowKind| match w {
        WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } => Some(size.millis),
        WindowKind::Session { .. } => None,
    };
    match (&left.source.window, &right.source.window) {
        (None, None) => Ok(()),
        (Some(w), None) | (None, Some(w)) => {
            let (windowed, plain) = if left.source.window.is_some() {
                (left, right)
            } else {
                (right, left)
            };
            err(format!(
                "Can not join windowed source to non-windowed source.\n`{}` is {} windowed\n`{}` is not windowed",
                windowed.source.name,
                name(w),
                plain.source.name
            ))
        }
        (Some(a), Some(b)) => {
            if size(a).is_none() != size(b).is_none() {
                return err(format!(
                    "Incompatible windowed sources.\nLeft source: {}\nRight source: {}\nSession windowed sources can only be joined to other session windowed sources, and may still not result in expected behaviour as session bounds must be an exact match for the join to work\nHopping and tumbling windowed sources can only be joined to other hopping and tumbling windowed sources",
                    name(a),
                    name(b)
                ));
            }
            if !on_keys || size(a) != size(b) {
                return err(
                    "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.",
                );
            }
            Ok(())
        }
    }
}

/// "X", "X or Y", "X, Y or Z".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// `e` with every bare column qualified by the member that has it, as ksqlDB prints a
/// join condition in its errors.
fn qualify_all(e: &sqlast::Expr, members: &[Member]) -> String {
    let mut e = e.clone();
    let _ = sqlast::visit_expressions_mut(&mut e, |x| {
        if let sqlast::Expr::Identifier(i) = x {
            let c = normal(i);
            if let Some(m) = members
                .iter()
                .find(|m| m.own.iter().any(|col| col.name == c))
            {
                *x = sqlast::Expr::CompoundIdentifier(vec![
                    Ident::new(m.alias.clone()),
                    Ident::new(c),
                ]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    qualified(&e, "")
}

/// The rows joined so far: the join's plan, the source its rows form (the next join's
/// left side reads it) and the columns equal to its key.
struct Joined {
    plan: JoinPlan,
    source: Source,
    equivalents: Vec<(String, String)>,
}

impl Engine {
    /// Plans a join query. `sink` names the result in ksqlDB's errors.
    pub(crate) fn plan_join(
        &self,
        q: &Query,
        sink: &str,
        usage: QueryUse,
    ) -> Result<(Planned, JoinPlan), EngineError> {
        let mut names = Vec::new();
        let mut steps = Vec::new();
        flatten(&q.from, &mut names, &mut steps)?;
        let mut members: Vec<Member> = Vec::new();
        for (name, alias) in &names {
            let source = self
                .catalog
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError(format!("{name} does not exist.")))?;
            if let Some(first) = members.iter().find(|m| m.source.name == source.name) {
                return err(if names.len() == 2 {
                    format!(
                        "Can not join '{}' to '{}': self joins are not yet supported.",
                        first.source.name, source.name
                    )
                } else {
                    format!(
                        "N-way joins do not support multiple occurrences of the same source. Source: '{}'",
                        source.name
                    )
                });
            }
            let own: Vec<Column> = source
                .key_columns()
                .chain(source.row_columns())
                .cloned()
                .collect();
            let full = own.iter().cloned().chain(system_columns(&source)).collect();
            members.push(Member {
                alias: alias
                    .as_ref()
                    .cloned()
                    .unwrap_or_else(|| source.name.clone()),
                source,
                own,
                full,
            });
        }
        let kafka: Vec<&str> = members
            .iter()
            .filter(|m| m.source.value_format == crate::catalog::Format::Kafka)
            .map(|m| m.source.name.as_str())
            .collect();
        if !kafka.is_empty() {
            return err(format!(
                "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
                kafka.join(", ")
            ));
        }
        // Every condition names its sources rightly before any join is planned.
        let conditions = steps
            .iter()
            .enumerate()
            .map(|(i, s)| join_condition(s.on, &members[..i + 2]))
            .collect::<Result<Vec<_>, _>>()?;
        let mut joined: Option<Joined> = None;
        for (i, step) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            let (lexpr, rexpr) = conditions[i];
            let so_far = &members[..=i];
            let right = &members[i + 1];
            let left_kind = joined
                .as_ref()
                .map_or(members[0].source.kind, |j| j.source.kind);
            let kinds = (left_kind, right.source.kind);
            let describe = format!(
                "{} {} JOIN {}",
                members[0].source.name,
                describe_kind(step.kind),
                right.source.name
            );
            match kinds {
                (SourceKind::Table, SourceKind::Stream) => {
                    return err(format!(
                        "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {describe}."
                    ));
                }
                (SourceKind::Stream, SourceKind::Table)
                    if matches!(step.kind, JoinKind::Full | JoinKind::Right) =>
                {
                    let name = if step.kind == JoinKind::Full {
                        "full-outer"
                    } else {
                        "right-outer"
                    };
                    return err(format!(
                        "Invalid join type: {name} join not supported for stream-table join. Got {describe}."
                    ));
                }
                (_, SourceKind::Table) if step.within.is_some() => {
                    return err(
                        "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop the window definition (ie. the WITHIN clause) and try to execute your join again.",
                    );
                }
                _ => {}
            }
            if kinds == (SourceKind::Stream, SourceKind::Stream) && step.within.is_none() {
                return err(
                    "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select",
                );
            }
            let pair = &members[..i + 2];
            // A table joins on its primary key.
            // A table joins on its primary key (all of it: its one key column).
            let table_key = |e: &sqlast::Expr, m: &Member| {
                let keys: Vec<&Column> = m.source.key_columns().collect();
                column_of(e, std::slice::from_ref(m))
                    .is_some_and(|(_, c)| matches!(keys.as_slice(), [k] if k.name == c))
            };
            // A side joined on a MAP column would be re-keyed by it: ksqlDB refuses map keys
            // and names the column as its repartition step does (`L_L0`).
            for (e, side) in [(lexpr, so_far), (rexpr, std::slice::from_ref(right))] {
                if let Some((alias, c)) = column_of(e, side)
                    && let Some(col) = side
                        .iter()
                        .find(|m| m.alias == alias)
                        .and_then(|m| m.own.iter().find(|x| x.name == c))
                    && crate::ddl::contains_map(&col.ty)
                {
                    return err(format!(
                        "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent serialization. Key column name: `{alias}_{c}`. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                        col.ty
                    ));
                }
            }
            if joined.is_none() {
                check_windows(
                    &members[0],
                    right,
                    table_key(lexpr, &members[0]) && table_key(rexpr, right),
                )?;
            }
            if right.source.kind == SourceKind::Table && !table_key(rexpr, right) {
                let what = if left_kind == SourceKind::Table {
                    "table-table joins require to join on the primary key of the right input table"
                } else {
                    "stream-table joins require to join on the table's primary key"
                };
                return err(format!(
                    "Invalid join condition: {what}. Got {}.",
                    qualify_all(step.on, pair)
                ));
            }
            let lcol = column_of(lexpr, so_far);
            // A table-table join on something else than the left table's key joins on a
            // foreign key: each left row meets the right row its expression names.
            let foreign_key = kinds == (SourceKind::Table, SourceKind::Table)
                && joined.is_none()
                && !table_key(lexpr, &members[0]);
            if foreign_key && matches!(step.kind, JoinKind::Right | JoinKind::Full) {
                return err(format!(
                    "{} JOIN on a foreign key is not supported",
                    if step.kind == JoinKind::Right {
                        "RIGHT OUTER"
                    } else {
                        "FULL OUTER"
                    }
                ));
            }
            if left_kind == SourceKind::Table {
                match &joined {
                    Some(j) if lcol.as_ref().is_none_or(|l| !j.equivalents.contains(l)) => {
                        return err(format!(
                            "Invalid join condition: foreign-key table-table joins are not supported as part of n-way joins. Got {}.",
                            qualify_all(step.on, pair)
                        ));
                    }
                    _ => {}
                }
            }
            let left = match &joined {
                None => self.plan_side(
                    &members[0].source,
                    &members[0].alias,
                    lexpr,
                    members[0].full.clone(),
                )?,
                Some(j) => {
                    let mut resolve = Resolve {
                        members: so_far,
                        error: None,
                        at: String::new(),
                    };
                    let mut e = lexpr.clone();
                    let _ = e.visit(&mut resolve);
                    if let Some(e) = resolve.error {
                        return err(e);
                    }
                    let columns = j
                        .source
                        .key_columns()
                        .chain(j.source.row_columns())
                        .cloned()
                        .collect();
                    self.plan_side(&j.source, "", &e, columns)?
                }
            };
            let rside = self.plan_side(&right.source, &right.alias, rexpr, right.full.clone())?;
            let key_type = |s: &JoinSide| {
                s.planned
                    .pipeline
                    .output
                    .last()
                    .map(|c| c.ty.clone())
                    .ok_or_else(|| EngineError("join side has no join key".into()))
            };
            let (lt, rt) = (key_type(&left)?, key_type(&rside)?);
            if lt != rt && foreign_key {
                return err(format!(
                    "Invalid join condition: types don't match. Got {}{{{lt}}} = {}{{{rt}}}.",
                    qualify_all(lexpr, pair),
                    qualify_all(rexpr, pair)
                ));
            }
            if lt != rt {
                return err(format!(
                    "Invalid join condition: types don't match. Got {lexpr}{{{lt}}} = {rexpr}{{{rt}}}."
                ));
            }
            // Co-partitioning of a join with a stream (ksqlDB's table-table joins, and
            // foreign-key joins, accept tables of different partition counts).
            if kinds != (SourceKind::Table, SourceKind::Table) {
                let count = |s: &Source| {
                    self.log
                        .describe_topic(&s.topic)
                        .map(|t| t.partitions.len())
                        .unwrap_or(0)
                };
                let (first, n) = (&members[0].source, count(&members[0].source));
                let m = count(&right.source);
                if n != m && n > 0 && m > 0 {
                    return err(format!(
                        "Can't join `{}` with `{}` since the number of partitions don't match. `{}` partitions = {n}; `{}` partitions = {m}. Please repartition either one so that the number of partitions match.",
                        first.name, right.source.name, first.name, right.source.name
                    ));
                }
            }
            // The columns equal to the join key: the left's join column (with the columns
            // equal to the inner join's key, when it is one of them), the right's.
            let mut equivalents = Vec::new();
            if foreign_key {
                // The result is keyed by the left table's key.
                equivalents.extend(
                    members[0]
                        .source
                        .key_columns()
                        .map(|c| (members[0].alias.clone(), c.name.clone())),
                );
            } else if step.kind != JoinKind::Full {
                if let Some(l) = &lcol {
                    match &joined {
                        Some(j) if j.equivalents.contains(l) => {
                            equivalents.extend(j.equivalents.iter().cloned())
                        }
                        _ => equivalents.push(l.clone()),
                    }
                }
                if let Some(r) = column_of(rexpr, std::slice::from_ref(right)) {
                    equivalents.push(r);
                }
            }
            let joined_name = |(a, c): &(String, String)| format!("{a}_{c}");
            let synthetic_name = if last {
                (0..)
                    .map(|n| {
                        if n == 0 {
                            "ROWKEY".to_string()
                        } else {
                            format!("ROWKEY_{n}")
                        }
                    })
                    .find(|k| !members.iter().any(|m| m.own.iter().any(|c| &c.name == k)))
                    .unwrap_or_default()
            } else {
                format!("__ROWKEY_{i}")
            };
            // The final join: the query rewritten over the joined row, which names its key.
            let rewritten = if last {
                Some(rewrite_query(q, &members)?)
            } else {
                None
            };
            let projected = |name: &str| {
                rewritten.as_ref().is_some_and(|r: &Query| {
                    r.select.iter().any(|i| match i {
                        SelectItem::Wildcard => true,
                        SelectItem::Expr { expr, .. } => {
                            matches!(expr, sqlast::Expr::Identifier(x) if x.value == name)
                        }
                        _ => false,
                    })
                })
            };
            let key: Option<String> = if equivalents.is_empty() || foreign_key {
                None
            } else {
                equivalents
                    .iter()
                    .map(joined_name)
                    .find(|k| projected(k))
                    .or_else(|| equivalents.first().map(joined_name))
            };
            let persistent = last && usage == QueryUse::Persistent && q.group_by.is_empty();
            if persistent && foreign_key {
                let missing: Vec<String> = equivalents
                    .iter()
                    .filter(|e| !projected(&joined_name(e)))
                    .map(|(_, c)| format!("`{c}`"))
                    .collect();
                if !missing.is_empty() {
                    let plural = if missing.len() == 1 { "" } else { "s" };
                    return err(format!(
                        "Primary key column{plural} missing in projection. For foreign-key table-table joins, the projection must include all primary key columns from the left input table (`{}`). Missing column{plural}: {}.",
                        members[0].alias,
                        missing.join(", ")
                    ));
                }
            }
            if persistent
                && key.is_some()
                && !equivalents.iter().any(|e| projected(&joined_name(e)))
            {
                let names: Vec<String> = equivalents
                    .iter()
                    .map(|(a, c)| format!("{a}.{c}"))
                    .collect();
                return err(format!(
                    "The query used to build `{sink}` must include the join expression{} {} in its projection (eg, SELECT {}...).",
                    if names.len() > 1 { "s" } else { "" },
                    or_list(&names),
                    names[0]
                ));
            }
            let synthetic_key = key.is_none() && !foreign_key;
            if synthetic_key && persistent && !projected(&synthetic_name) {
                return err(format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the join expression {synthetic_name} in its projection (eg, SELECT {synthetic_name}...).\n{synthetic_name} was added as a synthetic key column because the join criteria did not match any source column. This expression must be included in the projection and may be aliased."
                ));
            }
            // The result's key columns, by their joined names.
            let key_names: Vec<String> = if foreign_key {
                equivalents.iter().map(joined_name).collect()
            } else {
                key.iter().cloned().collect()
            };
            if persistent && let Some(r) = &rewritten {
                for k in &key_names {
                    key_projected_once(r, k)?;
                }
            }
            let key_column = key.as_ref().and_then(|k| {
                [(0usize, &left), (1, &rside)]
                    .into_iter()
                    .find_map(|(side, s)| {
                        (0..s.columns.len())
                            .find(|c| &s.joined_name(*c) == k)
                            .map(|c| (side, c))
                    })
            });
            let mut columns = Vec::new();
            if synthetic_key {
                columns.push(Column {
                    name: synthetic_name.clone(),
                    ty: lt.clone(),
                    key: true,
                });
            }
            for s in [&left, &rside] {
                for c in 0..s.columns.len() {
                    let name = s.joined_name(c);
                    columns.push(Column {
                        key: key_names.contains(&name),
                        name,
                        ty: s.columns[c].ty.clone(),
                    });
                }
            }
            let joined_source = Source {
                name: format!("{}_JOIN_{i}", members[0].alias),
                kind: if kinds == (SourceKind::Table, SourceKind::Table) {
                    SourceKind::Table
                } else {
                    SourceKind::Stream
                },
                topic: String::new(),
                columns,
                headers: Vec::new(),
                timestamp: None,
                read_only: true,
                window: None,
                ..members[0].source.clone()
            };
            let plan = JoinPlan {
                left,
                right: rside,
                nested: joined.take().map(|j| Box::new(j.plan)),
                kind: step.kind,
                within: step
                    .within
                    .as_ref()
                    .map(|w| (w.before.millis as i64, w.after.millis as i64)),
                grace: step
                    .grace
                    .as_ref()
                    .map_or(crate::aggregate::window::DEFAULT_GRACE_MS, |g| {
                        g.millis as i64
                    }),
                grace_given: step.grace.is_some(),
                synthetic_key,
                synthetic_name,
                key_column,
                foreign_key,
            };
            if let Some(mut rewritten) = rewritten {
                // `*`: the key, then each source's own columns (not their system columns).
                let visible: Vec<String> = joined_source
                    .key_columns()
                    .map(|c| c.name.clone())
                    .chain(
                        members
                            .iter()
                            .flat_map(|m| m.own.iter().map(|c| format!("{}_{}", m.alias, c.name)))
                            .filter(|n| !key_names.contains(n)),
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
                rewritten.from = Relation::Source {
                    name: joined_source.name.clone(),
                    alias: None,
                };
                let planned = self.plan_over(&rewritten, joined_source, sink, usage)?;
                return Ok((planned, plan));
            }
            joined = Some(Joined {
                plan,
                source: joined_source,
                equivalents,
            });
        }
        err("a join needs two sources")
    }

    /// One side of a join: all of `source`'s columns (`columns`; a source's system columns
    /// among them when `alias` names one), then the join expression `e`.
    fn plan_side(
        &self,
        source: &Source,
        alias: &str,
        e: &sqlast::Expr,
        columns: Vec<Column>,
    ) -> Result<JoinSide, EngineError> {
        let mut select = vec![SelectItem::Wildcard];
        if !alias.is_empty() {
            for c in &system_columns(source) {
                select.push(SelectItem::Expr {
                    expr: sqlast::Expr::Identifier(Ident::with_quote('"', c.name.clone())),
                    alias: Some(c.name.clone()),
                });
            }
        }
        // `alias.column[…]` reads the side's own column.
        let mut e = e.clone();
        let _ = sqlast::visit_expressions_mut(&mut e, |x| {
            if let Some((q, c, rest)) = qualified_access(x)
                && q == alias
            {
                let rest = rest.to_vec();
                *x = sqlast::Expr::CompoundFieldAccess {
                    root: Box::new(sqlast::Expr::Identifier(Ident::with_quote('"', c))),
                    access_chain: rest,
                };
            }
            ControlFlow::<()>::Continue(())
        });
        select.push(SelectItem::Expr {
            expr: e,
            alias: Some("__JOIN_KEY".into()),
        });
        let side_query = Query::projection(
            select,
            &source.name,
            (!alias.is_empty()).then(|| alias.to_string()),
        );
        let planned = self.plan_over(&side_query, source.clone(), "", QueryUse::Push)?;
        Ok(JoinSide {
            planned,
            alias: alias.to_string(),
            kind: source.kind,
            columns,
        })
    }
}

/// The query's clauses over the joined row: columns by their joined names, qualified
/// wildcards expanded, a projected column named as ksqlDB names it (its own name unless
/// two sources have it).
fn rewrite_query(q: &Query, members: &[Member]) -> Result<Query, EngineError> {
    let mut resolve = Resolve {
        members,
        error: None,
        at: String::new(),
    };
    let mut rewritten = q.clone();
    let mut select = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard => select.push(SelectItem::Wildcard),
            SelectItem::QualifiedWildcard(w) => {
                let Some(m) = members.iter().find(|m| w.eq_ignore_ascii_case(&m.alias)) else {
                    return err(format!("'{w}' is not a valid stream/table name or alias."));
                };
                for c in &m.own {
                    select.push(SelectItem::Expr {
                        expr: sqlast::Expr::Identifier(Ident::with_quote(
                            '"',
                            format!("{}_{}", m.alias, c.name),
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
                // A column keeps its own name in the result, unless two sources have one
                // of that name (then it is `<ALIAS>_<COLUMN>`).
                let bare = column_ref(expr).map(|(_, c)| c);
                let alias = alias.clone().or_else(|| {
                    bare.filter(|b| {
                        let having = members
                            .iter()
                            .filter(|m| m.own.iter().any(|c| &c.name == b))
                            .count();
                        // A system column stays unaliased (and is refused as such).
                        let system = crate::planner::RESERVED_COLUMNS.contains(&b.as_str());
                        having < 2 && !system
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
    Ok(rewritten)
}

/// ksqlDB refuses a projection that names the key column more than once.
fn key_projected_once(q: &Query, key: &str) -> Result<(), EngineError> {
    let mut names: Vec<String> = q
        .select
        .iter()
        .filter_map(|i| match i {
            SelectItem::Expr {
                expr: sqlast::Expr::Identifier(x),
                alias,
            } if x.value == key => Some(alias.clone().unwrap_or_else(|| key.to_string())),
            _ => None,
        })
        .collect();
    if names.len() > 1 {
        names.sort();
        let last = names.pop().unwrap_or_default();
        return err(format!(
            "The projection contains a key column (`{key}`) more than once, aliased as: {} and {last}.",
            names.join(", ")
        ));
    }
    Ok(())
}
