//! Planning `SELECT … [WINDOW …] GROUP BY … [HAVING …]`: the pipeline before the state
//! (WHERE, then the group-by expressions and each aggregate's arguments over the input), the
//! aggregates resolved against their argument types, and the projection and HAVING planned
//! over the aggregated row (`ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND`,
//! group columns, aggregate results). Aggregate calls in the projection and HAVING become
//! references to their result column, and expressions equal to a group-by expression
//! references to its group column, before DataFusion plans them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{self as sqlast, Ident, VisitMut, VisitorMut};
use sluice_sql::ast::{Emit, Query, SelectItem, Window};

use super::functions::{self, Aggregate};
use crate::catalog::{Column, Source};
use crate::engine::{Engine, EngineError, err};
use crate::planner::{AliasGenerator, QueryUse, column_name};
use crate::schema::sql_type;

/// One aggregate call: the function and where its arguments are in the pipeline's output.
pub(crate) struct AggregateCall {
    pub function: Aggregate,
    pub args: Vec<usize>,
}

/// The planned stateful part of a GROUP BY query.
pub(crate) struct AggregatePlan {
    /// How many leading pipeline outputs are the group-by expressions.
    pub groups: usize,
    pub calls: Vec<AggregateCall>,
    pub window: Option<Window>,
    pub emit_final: bool,
    /// Schema of the aggregated row the projection and HAVING read.
    pub aggregated_schema: Arc<Schema>,
    /// One expression per output column over the aggregated row.
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    pub having: Option<Arc<dyn PhysicalExpr>>,
    /// The output columns, key (the group-by columns) first.
    pub output: Vec<Column>,
}

impl AggregatePlan {
    /// Whether an aggregate keeps more than one primitive as its running state.
    pub fn has_structured_state(&self) -> bool {
        self.calls.iter().any(|c| {
            let state = &c.function.state_types;
            state.len() > 1
                || state.iter().any(|t| {
                    matches!(
                        t,
                        DataType::List(_) | DataType::Map(..) | DataType::Struct(_)
                    )
                })
        })
    }
}

/// What planning the aggregation hands back to the query planner: the pipeline's own
/// projection (group-by expressions then aggregate arguments) and the stateful part.
pub(crate) struct PlannedAggregation {
    pub pre_projection: Vec<(Column, Arc<dyn PhysicalExpr>)>,
    pub plan: AggregatePlan,
}

/// Upper-cases unquoted identifiers and drops the source qualifier, so two spellings of an
/// expression compare equal as text.
struct Canonical<'a> {
    qualifier: &'a str,
}

impl VisitorMut for Canonical<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
        // `(a + b)` is `a + b`.
        while let sqlast::Expr::Nested(inner) = expr {
            *expr = inner.as_ref().clone();
        }
        let fix = |i: &mut Ident| {
            if i.quote_style.is_none() {
                i.value = i.value.to_uppercase();
            }
            i.quote_style = None;
        };
        match expr {
            sqlast::Expr::Identifier(i) => fix(i),
            // Function names are case-insensitive: `initcap(x)` groups as `INITCAP(x)`.
            sqlast::Expr::Function(f) => {
                for part in &mut f.name.0 {
                    if let sqlast::ObjectNamePart::Identifier(i) = part {
                        fix(i);
                    }
                }
            }
            sqlast::Expr::CompoundIdentifier(parts) => {
                parts.iter_mut().for_each(fix);
                if parts.len() == 2 && parts[0].value == self.qualifier {
                    *expr = sqlast::Expr::Identifier(parts[1].clone());
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn canonical(e: &sqlast::Expr, qualifier: &str) -> String {
    let mut e = e.clone();
    let _ = e.visit(&mut Canonical { qualifier });
    e.to_string()
}

/// A source column by its name, as a bare (unquoted) reference when the name is upper case
/// (so it reads like the user's own `col`), quoted otherwise.
fn quoted_column(name: &str) -> sqlast::Expr {
    if name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        sqlast::Expr::Identifier(Ident::new(name))
    } else {
        quoted(name)
    }
}

fn quoted(name: &str) -> sqlast::Expr {
    sqlast::Expr::Identifier(Ident::with_quote('"', name))
}

/// Replaces aggregate calls with references to their result columns (collecting the calls)
/// and group-by expressions with references to their group columns.
struct Rewrite<'a> {
    qualifier: &'a str,
    /// Canonical text of each group-by expression with its group column's name.
    groups: &'a [(String, String)],
    /// Aggregate calls found so far: canonical text, the call.
    calls: Vec<(String, sqlast::Function)>,
    error: Option<String>,
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
        let text = canonical(expr, self.qualifier);
        if let Some((_, name)) = self.groups.iter().find(|(g, _)| *g == text) {
            *expr = quoted(name);
            return std::ops::ControlFlow::Continue(());
        }
        if let sqlast::Expr::Function(f) = expr
            && functions::is_aggregate(&f.name.to_string())
        {
            let index = match self.calls.iter().position(|(t, _)| *t == text) {
                Some(i) => i,
                None => {
                    let mut inner = Rewrite {
                        qualifier: self.qualifier,
                        groups: &[],
                        calls: Vec::new(),
                        error: None,
                    };
                    let mut args = f.args.clone();
                    let _ = args.visit(&mut inner);
                    if !inner.calls.is_empty() {
                        self.error = Some(format!(
                            "Aggregate functions can not be nested: {}({})",
                            f.name, inner.calls[0].1
                        ));
                    }
                    self.calls.push((text, f.clone()));
                    self.calls.len() - 1
                }
            };
            *expr = quoted(&format!("KSQL_AGG_VARIABLE_{index}"));
        }
        std::ops::ControlFlow::Continue(())
    }
}

impl Engine {
    /// Plans the aggregation of `q` over `source` (input schema `df_schema`).
    pub(crate) fn plan_aggregation(
        &self,
        q: &Query,
        source: &Source,
        qualifier: &str,
        df_schema: &DFSchema,
        sink: &str,
        usage: QueryUse,
    ) -> Result<PlannedAggregation, EngineError> {
        if q.group_by.is_empty() {
            return err("Aggregate functions need a GROUP BY clause.");
        }
        if q.emit == Some(Emit::Final) && q.window.is_none() {
            return err("EMIT FINAL is only supported for windowed aggregations.");
        }
        // The group columns: a column keeps its name, other expressions get internal names
        // (the projection names them).
        let mut groups: Vec<(String, String)> = Vec::new();
        let mut pre: Vec<(Column, Arc<dyn PhysicalExpr>)> = Vec::new();
        let mut group_fields: Vec<Field> = Vec::new();
        // `GROUP BY (a, b)` is `GROUP BY a, b`.
        let group_by: Vec<sqlast::Expr> = match q.group_by.as_slice() {
            [sqlast::Expr::Tuple(items)] => items.clone(),
            other => other.to_vec(),
        };
        // Window bounds exist only in the aggregation's result.
        let bounds = |e: &sqlast::Expr| -> Option<String> {
            let mut found = None;
            let _ = sqlast::visit_expressions(e, |x| {
                if let sqlast::Expr::Identifier(i) = x {
                    let n = i.value.to_uppercase();
                    if n == "WINDOWSTART" || n == "WINDOWEND" {
                        found = Some(n);
                    }
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            found
        };
        if group_by
            .iter()
            .chain(q.having.iter())
            .any(|e| bounds(e).is_some())
        {
            return err(
                "Window bounds column WINDOWSTART can only be used in the SELECT clause of windowed aggregations",
            );
        }
        for g in &group_by {
            let mut aggregate = None;
            let _ = sqlast::visit_expressions(g, |x| {
                if let sqlast::Expr::Function(f) = x
                    && super::functions::is_aggregate(&f.name.to_string())
                {
                    aggregate = Some(f.name.to_string().to_uppercase());
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            if let Some(name) = aggregate {
                return err(format!(
                    "GROUP BY does not support aggregate functions: {name} is an aggregate function."
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for g in &group_by {
            if !seen.insert(canonical(g, qualifier)) {
                return err(format!(
                    "Duplicate GROUP BY expression: {qualifier}.{}",
                    canonical(g, qualifier)
                ));
            }
        }
        for (i, g) in group_by.iter().enumerate() {
            let planned = self.plan_expr(g, df_schema, "GROUP BY")?;
            let dt = planned.get_type(df_schema)?;
            // A pseudo column grouped on (`GROUP BY ROWTIME`) gets a name of its own: the
            // aggregated rows have their own ROWTIME.
            let pseudo = [
                "ROWTIME",
                "ROWPARTITION",
                "ROWOFFSET",
                "WINDOWSTART",
                "WINDOWEND",
            ];
            let name = column_name(g)
                .filter(|n| !pseudo.contains(&n.as_str()))
                .unwrap_or_else(|| format!("KSQL_GROUP_{i}"));
            let ty = sql_type(&dt)
                .ok_or_else(|| EngineError(format!("unsupported GROUP BY type {dt}")))?;
            groups.push((canonical(g, qualifier), name.clone()));
            group_fields.push(Field::new(&name, dt, true));
            pre.push((
                Column {
                    name,
                    ty,
                    key: true,
                },
                self.ctx.create_physical_expr(planned, df_schema)?,
            ));
        }
        // The projection and HAVING with aggregate calls and group expressions replaced.
        let mut rewrite = Rewrite {
            qualifier,
            groups: &groups,
            calls: Vec::new(),
            error: None,
        };
        let mut items: Vec<(Option<String>, sqlast::Expr, sqlast::Expr)> = Vec::new();
        // `*` is the source's columns (key, then value), each then grouped or refused.
        let select: Vec<SelectItem> = q
            .select
            .iter()
            .flat_map(|item| match item {
                SelectItem::Wildcard => source
                    .key_columns()
                    .chain(source.row_columns())
                    .map(|c| SelectItem::Expr {
                        expr: quoted_column(&c.name),
                        alias: None,
                    })
                    .collect(),
                other => vec![other.clone()],
            })
            .collect();
        for item in &select {
            match item {
                SelectItem::Expr { expr, alias } => {
                    let mut e = expr.clone();
                    let _ = e.visit(&mut rewrite);
                    items.push((alias.clone(), expr.clone(), e));
                }
                _ => {
                    return err(
                        "Non-aggregate SELECT expression(s) not part of GROUP BY: SELECT * in an aggregation",
                    );
                }
            }
        }
        let having = q.having.clone().map(|mut h| {
            let _ = h.visit(&mut rewrite);
            h
        });
        if let Some(e) = rewrite.error.take() {
            return err(e);
        }
        if rewrite.calls.is_empty() && q.having.is_none() && items.is_empty() {
            return err("GROUP BY requires an aggregate or a projection");
        }
        // Each aggregate's column arguments join the pipeline's projection.
        let mut calls = Vec::new();
        let mut agg_fields = Vec::new();
        // Aggregates that cannot take a row back, refused over a table.
        let mut stream_only: Vec<String> = Vec::new();
        for (i, (_, f)) in rewrite.calls.iter().enumerate() {
            let name = f.name.to_string().to_uppercase();
            let mut arg_exprs: Vec<&sqlast::Expr> = Vec::new();
            if let sqlast::FunctionArguments::List(list) = &f.args {
                for a in &list.args {
                    match a {
                        sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(e)) => {
                            arg_exprs.push(e)
                        }
                        sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Wildcard)
                            if name == "COUNT" => {}
                        other => return err(format!("unsupported aggregate argument {other}")),
                    }
                }
            }
            // `COUNT(1)` counts rows like `COUNT(*)`.
            if name == "COUNT"
                && matches!(arg_exprs.as_slice(), [sqlast::Expr::Value(v)] if !matches!(v.value, sqlast::Value::Null))
            {
                arg_exprs.clear();
            }
            // Literal parameters after the columns: TOPK's k is its last argument (its
            // columns come before), EARLIEST/LATEST_BY_OFFSET take one column.
            let column_count = match name.as_str() {
                "TOPK" | "TOPKDISTINCT" => arg_exprs.len().saturating_sub(1).max(1),
                "EARLIEST_BY_OFFSET" | "LATEST_BY_OFFSET" => 1,
                _ => arg_exprs.len(),
            };
            let mut columns = Vec::new();
            let mut params = Vec::new();
            for (n, a) in arg_exprs.iter().enumerate() {
                if n < column_count {
                    columns.push(*a);
                } else if matches!(a, sqlast::Expr::Value(_)) {
                    params.push(literal(a)?);
                } else {
                    return err(format!(
                        "Parameter {} passed to function {name} must be a literal constant, but was expression: '{}'",
                        n + 1,
                        crate::expr_text::ksql_text(a)
                    ));
                }
            }
            let mut arg_types = Vec::new();
            let mut positions = Vec::new();
            for (n, a) in columns.iter().enumerate() {
                let planned = self.plan_expr(a, df_schema, "SELECT")?;
                let dt = planned.get_type(df_schema)?;
                // An untyped literal (`SUM(2)`) is an INTEGER in ksqlDB.
                let (planned, dt) = match &planned {
                    DfExpr::Literal(ScalarValue::Int64(_), _) => (
                        DfExpr::Cast(datafusion::logical_expr::Cast::new(
                            Box::new(planned.clone()),
                            DataType::Int32,
                        )),
                        DataType::Int32,
                    ),
                    _ => (planned, dt),
                };
                let ty = sql_type(&dt).ok_or_else(|| {
                    EngineError(format!("unsupported aggregate argument type {dt}"))
                })?;
                positions.push(pre.len());
                arg_types.push(dt);
                pre.push((
                    Column {
                        name: format!("KSQL_AGG_{i}_ARG_{n}"),
                        ty,
                        key: false,
                    },
                    self.ctx.create_physical_expr(planned, df_schema)?,
                ));
            }
            let limit = |p: &str| self.properties.get(p).and_then(|v| v.parse::<usize>().ok());
            let defaults = functions::Limits::default();
            let limits = functions::Limits {
                collect_list: limit("ksql.functions.collect_list.limit")
                    .unwrap_or(defaults.collect_list),
                collect_set: limit("ksql.functions.collect_set.limit")
                    .unwrap_or(defaults.collect_set),
            };
            let function =
                functions::resolve(&name, &arg_types, &params, limits).map_err(EngineError)?;
            if source.kind == sluice_sql::ast::SourceKind::Table
                && !function.undoable
                && !stream_only.contains(&name)
            {
                stream_only.push(name.clone());
            }
            agg_fields.push(Field::new(
                format!("KSQL_AGG_VARIABLE_{i}"),
                function.return_type.clone(),
                true,
            ));
            calls.push(AggregateCall {
                function,
                args: positions,
            });
        }
        if let [init @ .., last] = stream_only.as_slice() {
            let names = if init.is_empty() {
                last.clone()
            } else {
                format!("{} and {last}", init.join(", "))
            };
            return err(format!(
                "The aggregation functions {names} cannot be applied to a table source, only to a stream source."
            ));
        }
        let mut fields: Vec<Field> = vec![
            Field::new("ROWTIME", DataType::Int64, true),
            Field::new("ROWPARTITION", DataType::Int32, true),
            Field::new("ROWOFFSET", DataType::Int64, true),
            Field::new("WINDOWSTART", DataType::Int64, true),
            Field::new("WINDOWEND", DataType::Int64, true),
        ];
        fields.extend(group_fields);
        fields.extend(agg_fields);
        let aggregated_schema = Arc::new(Schema::new(fields));
        let agg_df = DFSchema::try_from_qualified_schema(
            datafusion::common::TableReference::bare(qualifier),
            &aggregated_schema,
        )?;
        // The output: group columns named by the projection are the key.
        let mut names = AliasGenerator::new(source);
        let mut planned_items: Vec<(String, DfExpr, Option<usize>)> = Vec::new();
        for (alias, original, rewritten) in &items {
            let e = self
                .plan_expr(rewritten, &agg_df, "SELECT")
                .map_err(|e| not_grouped_selects(e, &items))?;
            if q.window.is_none()
                && let Some(n) = column_name(rewritten)
                && (n == "WINDOWSTART" || n == "WINDOWEND")
            {
                return err(format!(
                    "SELECT column '{n}' cannot be resolved: {n} exists only in windowed aggregations."
                ));
            }
            let group = match rewritten {
                sqlast::Expr::Identifier(i) => groups.iter().position(|(_, g)| *g == i.value),
                _ => None,
            };
            let name = match alias {
                Some(a) => a.clone(),
                None => match column_name(original) {
                    Some(n) => n,
                    None => names.unique_for(original),
                },
            };
            planned_items.push((name, e, group));
        }
        let mut order: Vec<(usize, bool)> = Vec::new();
        if usage == QueryUse::Persistent {
            for g in 0..groups.len() {
                let names: Vec<String> = planned_items
                    .iter()
                    .filter(|(_, _, group)| *group == Some(g))
                    .map(|(name, ..)| format!("`{name}`"))
                    .collect();
                if names.len() > 1 {
                    return err(format!(
                        "The projection contains a key column more than once: {}.",
                        names.join(" and ")
                    ));
                }
            }
        }
        for (g, (_, gname)) in groups.iter().enumerate() {
            match planned_items
                .iter()
                .position(|(_, _, group)| *group == Some(g))
            {
                Some(i) => order.push((i, true)),
                None if usage == QueryUse::Push => {}
                None => {
                    return err(format!(
                        "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the grouping expression {} in its projection (eg, SELECT {gname}...).",
                        canonical(&group_by[g], qualifier)
                    ));
                }
            }
        }
        for i in 0..planned_items.len() {
            if !order.iter().any(|(j, _)| *j == i) {
                order.push((i, false));
            }
        }
        let mut output = Vec::new();
        let mut projection = Vec::new();
        for (i, key) in order {
            let (name, e, _) = &planned_items[i];
            let dt = e.get_type(&agg_df)?;
            let (ty, e) = crate::planner::result_type_of(e, &dt)?;
            if output.iter().any(|c: &Column| &c.name == name) {
                return err(format!(
                    "Duplicate value columns found in schema: `{name}` {ty}"
                ));
            }
            output.push(Column {
                name: name.clone(),
                ty,
                key,
            });
            projection.push(self.ctx.create_physical_expr(e, &agg_df)?);
        }
        if usage == QueryUse::Persistent && output.iter().all(|c| c.key) {
            return err("The projection contains no value columns.");
        }
        let having = match having {
            Some(h) => {
                let e = self
                    .plan_expr(&h, &agg_df, "HAVING")
                    .map_err(|e| not_grouped(e, &h, "HAVING expression"))?;
                Some(self.ctx.create_physical_expr(e, &agg_df)?)
            }
            None => None,
        };
        Ok(PlannedAggregation {
            pre_projection: pre,
            plan: AggregatePlan {
                groups: groups.len(),
                calls,
                // EMIT FINAL windows close at their end unless they name a grace period.
                window: q.window.clone().map(|mut w| {
                    if q.emit == Some(Emit::Final) && w.grace.is_none() {
                        w.grace = Some(sluice_sql::ast::Duration { millis: 0 });
                    }
                    w
                }),
                emit_final: q.emit == Some(Emit::Final),
                aggregated_schema,
                projection,
                having,
                output,
            },
        })
    }
}

/// A literal parameter of an aggregate (TOPK's k, …).
fn literal(e: &sqlast::Expr) -> Result<ScalarValue, EngineError> {
    let sqlast::Expr::Value(v) = e else {
        return err(format!("{e} must be a literal"));
    };
    Ok(match &v.value {
        sqlast::Value::Number(n, _) => ScalarValue::Int64(Some(
            n.parse()
                .map_err(|_| EngineError(format!("{n} is not an integer")))?,
        )),
        sqlast::Value::Boolean(b) => ScalarValue::Boolean(Some(*b)),
        other => return err(format!("{other} is not a valid aggregate parameter")),
    })
}

/// A projection (or HAVING) that reads a column neither grouped nor aggregated, in
/// ksqlDB's words: the columns it reads that are not group columns.
fn not_grouped(e: EngineError, rewritten: &sqlast::Expr, what: &str) -> EngineError {
    if !e.0.contains("cannot be resolved") {
        return e;
    }
    let mut columns: Vec<String> = Vec::new();
    // Group columns and aggregate results were quoted by the rewrite.
    unquoted_columns(rewritten, &mut columns);
    EngineError(format!(
        "Non-aggregate {what} not part of GROUP BY: {}",
        columns.join(", ")
    ))
}

/// A projection that reads a column neither grouped nor aggregated, in ksqlDB's words: every
/// select expression (as written) that still reads such a column once its group expressions
/// and aggregate calls are taken out, in select order.
fn not_grouped_selects(
    e: EngineError,
    items: &[(Option<String>, sqlast::Expr, sqlast::Expr)],
) -> EngineError {
    if !e.0.contains("cannot be resolved") {
        return e;
    }
    let mut expressions: Vec<String> = Vec::new();
    for (_, original, rewritten) in items {
        let mut columns = Vec::new();
        unquoted_columns(rewritten, &mut columns);
        columns.retain(|c| c != "WINDOWSTART" && c != "WINDOWEND");
        let text = crate::expr_text::ksql_text(original);
        if !columns.is_empty() && !expressions.contains(&text) {
            expressions.push(text);
        }
    }
    if expressions.is_empty() {
        return e;
    }
    EngineError(format!(
        "Non-aggregate SELECT expression(s) not part of GROUP BY: {}\nEither add the column(s) to the GROUP BY or remove them from the SELECT.",
        expressions.join(", ")
    ))
}

/// A query with aggregate calls but no GROUP BY that also selects columns outside them:
/// ksqlDB's "not part of GROUP BY" error naming those columns.
pub(crate) fn ungrouped_columns(select: &[SelectItem]) -> Option<EngineError> {
    let mut aggregates = false;
    let mut columns: Vec<String> = Vec::new();
    for item in select {
        let SelectItem::Expr { expr, .. } = item else {
            continue;
        };
        let mut e = expr.clone();
        let _ = sqlast::visit_expressions_mut(&mut e, |x| {
            if let sqlast::Expr::Function(f) = x
                && super::functions::is_aggregate(&f.name.to_string())
            {
                aggregates = true;
                *x = sqlast::Expr::Value(sqlast::Value::Null.into());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        unquoted_columns(&e, &mut columns);
    }
    (aggregates && !columns.is_empty()).then(|| {
        EngineError(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {}",
            columns.join(", ")
        ))
    })
}

/// The aggregate calls of a projection, as ksqlDB writes them in messages (`COUNT(*)` is
/// its `COUNT(ROWTIME)`).
pub(crate) fn aggregate_calls(select: &[SelectItem]) -> Vec<String> {
    let mut calls = Vec::new();
    for item in select {
        let SelectItem::Expr { expr, .. } = item else {
            continue;
        };
        let _ = sqlast::visit_expressions(expr, |x| {
            if let sqlast::Expr::Function(f) = x
                && super::functions::is_aggregate(&f.name.to_string())
            {
                let text = crate::expr_text::ksql_text(x);
                let text = match text.strip_suffix("(*)").or(text.strip_suffix("()")) {
                    Some(name) => format!("{name}(ROWTIME)"),
                    None => text,
                };
                calls.push(text);
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    calls
}

/// Appends the columns `e` names (bare, upper-cased; quoted names are left out), each once.
fn unquoted_columns(e: &sqlast::Expr, columns: &mut Vec<String>) {
    let _ = sqlast::visit_expressions(e, |x| {
        let name = match x {
            sqlast::Expr::Identifier(i) if i.quote_style.is_none() => Some(i.value.to_uppercase()),
            sqlast::Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_uppercase()),
            _ => None,
        };
        if let Some(n) = name
            && !columns.contains(&n)
        {
            columns.push(n);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}
