//! Planning a SELECT over one source into a `Pipeline`: the input batch schema
//! (`ROWTIME, ROWPARTITION, ROWOFFSET`, key columns, value columns), ksqlDB's expressions
//! planned by DataFusion, the output columns with their key flags (the source key, or the
//! `PARTITION BY` expressions), and ksqlDB's rules about what a projection must contain.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};
use datafusion::sql::sqlparser::ast::{self as sqlast, Ident, VisitMut, VisitorMut};
use sluice_sql::ast::{Query, Relation, SelectItem};

use crate::catalog::{Column, Source};
use crate::codec::Serde;
use crate::engine::{Engine, EngineError, err};
use crate::query::Pipeline;
use crate::schema::{arrow_type, sql_type};

const PSEUDO: [(&str, DataType); 3] = [
    ("ROWTIME", DataType::Int64),
    ("ROWPARTITION", DataType::Int32),
    ("ROWOFFSET", DataType::Int64),
];

/// Upper-cases unquoted identifiers (ksqlDB's rule) and marks them quoted so DataFusion keeps
/// them as they are.
struct NormalizeIdents;

impl VisitorMut for NormalizeIdents {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
        let fix = |i: &mut Ident| {
            if i.quote_style.is_none() {
                i.value = i.value.to_uppercase();
                i.quote_style = Some('"');
            }
        };
        match expr {
            sqlast::Expr::Identifier(i) => fix(i),
            sqlast::Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fix),
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }

    /// ksqlDB's constructors `STRUCT(name := value, …)` and `MAP(key := value, …)` become
    /// DataFusion's `named_struct('NAME', value, …)` and `make_map(key, value, …)`.
    /// `s->f` is always a struct field, never a qualified column: each `->f` becomes a
    /// by-name field access, which DataFusion also allows after a subscript (`a[1]->f`).
    fn post_visit_expr(&mut self, expr: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
        if let sqlast::Expr::CompoundFieldAccess { access_chain, .. } = expr {
            for access in access_chain.iter_mut() {
                if let sqlast::AccessExpr::Dot(sqlast::Expr::Identifier(field)) = access {
                    *access = sqlast::AccessExpr::Dot(sqlast::Expr::value(
                        sqlast::Value::SingleQuotedString(field.value.clone()),
                    ));
                }
            }
        }
        unit_argument(expr);
        if let Some(rewritten) = constructor(expr)
            .or_else(|| ksql_cast(expr))
            .or_else(|| false_on_null(expr))
        {
            *expr = rewritten;
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// `DATEADD(DAYS, …)` and its kin name their unit with a bare word: it becomes the string
/// the function reads (only where the word is a unit, so a column there still fails).
fn unit_argument(expr: &mut sqlast::Expr) {
    let sqlast::Expr::Function(f) = expr else {
        return;
    };
    let name = f.name.to_string().to_uppercase();
    if !crate::functions::dates::UNIT_FIRST.contains(&name.as_str()) {
        return;
    }
    let sqlast::FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    if let Some(sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(first))) =
        list.args.first_mut()
        && let sqlast::Expr::Identifier(unit) = first
        && crate::functions::dates::unit_millis(&unit.value).is_some()
    {
        *first = sqlast::Expr::value(sqlast::Value::SingleQuotedString(unit.value.to_uppercase()));
    }
}

/// A call of the function `name` with `args`.
fn call(name: &str, args: Vec<sqlast::Expr>) -> sqlast::Expr {
    sqlast::Expr::Function(sqlast::Function {
        name: sqlast::ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: sqlast::FunctionArguments::None,
        args: sqlast::FunctionArguments::List(sqlast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// In ksqlDB a comparison with a null operand is false, not null (so `NOT (a = b)` is true
/// when `a` is null): `a op b` becomes `coalesce(a op b, false)`.
fn false_on_null(expr: &sqlast::Expr) -> Option<sqlast::Expr> {
    use sqlast::BinaryOperator as Op;
    let sqlast::Expr::BinaryOp { op, .. } = expr else {
        return None;
    };
    if !matches!(
        op,
        Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq
    ) {
        return None;
    }
    Some(call(
        "coalesce",
        vec![
            sqlast::Expr::Nested(Box::new(expr.clone())),
            sqlast::Expr::value(sqlast::Value::Boolean(false)),
        ],
    ))
}

/// `CAST(x AS <ksqlDB type>)` (the dialect carries the type as its text) as DataFusion's
/// `arrow_cast(x, '<Arrow type>')`, with the Arrow type each ksqlDB type maps to.
fn ksql_cast(expr: &sqlast::Expr) -> Option<sqlast::Expr> {
    let sqlast::Expr::Cast {
        expr: inner,
        data_type: sqlast::DataType::Custom(name, _),
        ..
    } = expr
    else {
        return None;
    };
    let text = name.0.first()?.as_ident()?.value.clone();
    let ty = sluice_sql::types::parse_type_text(&text).ok()?;
    let arrow = arrow_type(&ty)?;
    Some(sqlast::Expr::Function(sqlast::Function {
        name: sqlast::ObjectName::from(vec![Ident::new("arrow_cast")]),
        uses_odbc_syntax: false,
        parameters: sqlast::FunctionArguments::None,
        args: sqlast::FunctionArguments::List(sqlast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![
                sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(inner.as_ref().clone())),
                sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(sqlast::Expr::value(
                    sqlast::Value::SingleQuotedString(arrow.to_string()),
                ))),
            ],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }))
}

/// The DataFusion call for a ksqlDB `STRUCT(…)` or `MAP(…)` constructor, if `expr` is one.
fn constructor(expr: &sqlast::Expr) -> Option<sqlast::Expr> {
    let sqlast::Expr::Function(f) = expr else {
        return None;
    };
    let name = f.name.to_string().to_uppercase();
    if name != "STRUCT" && name != "MAP" {
        return None;
    }
    let sqlast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let mut pairs = Vec::new();
    for a in &list.args {
        let sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(sqlast::Expr::BinaryOp {
            left,
            op: sqlast::BinaryOperator::Assignment,
            right,
        })) = a
        else {
            return None;
        };
        pairs.push((left.as_ref().clone(), right.as_ref().clone()));
    }
    let mut args = Vec::new();
    for (k, v) in pairs {
        let key = if name == "STRUCT" {
            let field = match k {
                sqlast::Expr::Identifier(i) => i.value,
                other => other.to_string(),
            };
            sqlast::Expr::value(sqlast::Value::SingleQuotedString(field))
        } else {
            k
        };
        args.push(sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(
            key,
        )));
        args.push(sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(
            v,
        )));
    }
    let target = if name == "STRUCT" {
        "named_struct"
    } else {
        "make_map"
    };
    let mut call = f.clone();
    call.name = sqlast::ObjectName::from(vec![Ident::new(target)]);
    call.args = sqlast::FunctionArguments::List(sqlast::FunctionArgumentList {
        duplicate_treatment: None,
        args,
        clauses: Vec::new(),
    });
    Some(sqlast::Expr::Function(call))
}

/// The projection as (name, expression) items, and per item whether it is a table function.
type SelectItems = (Vec<(String, DfExpr)>, Vec<bool>);

/// What kind of query is planned: persistent ones must project the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryUse {
    Persistent,
    Push,
}

/// A planned query: the pipeline (positions still empty) and its source.
pub(crate) struct Planned {
    pub pipeline: Pipeline,
    pub source: Source,
    /// What the query produces: a table when it aggregates.
    pub kind: sluice_sql::ast::SourceKind,
    /// The windows of a windowed aggregation (its keys are windowed).
    pub window: Option<sluice_sql::ast::WindowKind>,
    /// A join's sides (the pipeline then runs over joined rows).
    pub join: Option<Box<crate::join::plan::JoinPlan>>,
}

impl Engine {
    pub(crate) fn input_schema(source: &Source) -> Result<Arc<Schema>, EngineError> {
        let mut fields: Vec<Field> = PSEUDO
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect();
        // A windowed source's rows carry their window's bounds.
        if source.window.is_some() {
            fields.push(Field::new("WINDOWSTART", DataType::Int64, true));
            fields.push(Field::new("WINDOWEND", DataType::Int64, true));
        }
        for c in source.key_columns().chain(source.row_columns()) {
            let t =
                arrow_type(&c.ty).ok_or_else(|| EngineError(format!("unknown type {}", c.ty)))?;
            fields.push(Field::new(&c.name, t, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Plans one expression of `clause` (`SELECT`, `WHERE`, …: named in ksqlDB's errors).
    pub(crate) fn plan_expr(
        &self,
        expr: &sqlast::Expr,
        df_schema: &DFSchema,
        clause: &str,
    ) -> Result<DfExpr, EngineError> {
        self.plan_expr_with(expr, df_schema, clause, true)
    }

    /// `plan_expr`; `concat`: whether to rewrite string `+` first (the rewrite plans the
    /// operands, already rewritten, without it).
    pub(crate) fn plan_expr_with(
        &self,
        expr: &sqlast::Expr,
        df_schema: &DFSchema,
        clause: &str,
        concat: bool,
    ) -> Result<DfExpr, EngineError> {
        let mut e = expr.clone();
        if concat {
            self.concatenate_strings(&mut e, df_schema);
        }
        self.type_in_lists(&mut e, df_schema, clause)?;
        self.check_comparisons(&mut e, df_schema, clause)?;
        let _ = e.visit(&mut NormalizeIdents);
        self.plan_lambdas(&mut e, df_schema)?;
        let logical = self
            .ctx
            .state()
            .create_logical_expr_from_sql_expr(
                sqlast::ExprWithAlias {
                    expr: e,
                    alias: None,
                },
                df_schema,
            )
            .map_err(|e| match unresolved_column(&e) {
                Some(column) => {
                    EngineError(format!("{clause} column '{column}' cannot be resolved."))
                }
                None => match unknown_function(&e) {
                    Some(name) => {
                        EngineError(format!("Can't find any functions with the name '{name}'"))
                    }
                    None => EngineError::from(e),
                },
            })?;
        // Arguments coerced to what each function and operator takes, so the type the plan
        // reports is the type evaluation produces.
        let logical = {
            use datafusion::common::tree_node::{Transformed, TreeNode};
            // An integer literal that fits is an INTEGER, as in ksqlDB (`ID + 1` stays INT).
            let logical = logical
                .transform(|e| match e {
                    DfExpr::Literal(datafusion::common::ScalarValue::Int64(Some(v)), meta)
                        if i32::try_from(v).is_ok() =>
                    {
                        Ok(Transformed::yes(DfExpr::Literal(
                            datafusion::common::ScalarValue::Int32(Some(v as i32)),
                            meta,
                        )))
                    }
                    other => Ok(Transformed::no(other)),
                })?
                .data;
            let mut coercion =
                datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter::new(
                    df_schema,
                );
            logical.rewrite(&mut coercion)?.data
        };
        // Some functions (arrow_cast, coalesce, …) only exist in simplified form at run
        // time; where the simplifier itself trips, the expression as planned still runs.
        let info = datafusion::logical_expr::simplify::SimplifyContext::builder()
            .with_schema(Arc::new(df_schema.clone()))
            .build();
        let simplifier = datafusion::optimizer::simplify_expressions::ExprSimplifier::new(info);
        Ok(simplifier.simplify(logical.clone()).unwrap_or(logical))
    }

    /// Plans `q` over its single source. `sink` names the result in ksqlDB's errors.
    pub(crate) fn plan_query(
        &self,
        q: &Query,
        sink: &str,
        usage: QueryUse,
    ) -> Result<Planned, EngineError> {
        let Relation::Source { name, .. } = &q.from else {
            let (mut planned, join) = self.plan_join(q, sink, usage)?;
            planned.join = Some(Box::new(join));
            return Ok(planned);
        };
        let source = self
            .catalog
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError(format!("{name} does not exist.")))?;
        self.plan_over(q, source, sink, usage)
    }

    /// Plans `q` over `source` (the catalog's, or a materialized table's rows).
    pub(crate) fn plan_over(
        &self,
        q: &Query,
        source: Source,
        sink: &str,
        usage: QueryUse,
    ) -> Result<Planned, EngineError> {
        let Relation::Source { alias, .. } = &q.from else {
            return err("joins are not supported yet");
        };
        if usage == QueryUse::Persistent {
            check_reserved_names(q)?;
        }
        let schema = Self::input_schema(&source)?;
        let qualifier = alias.clone().unwrap_or_else(|| source.name.clone());
        // A bare reference keeps the name's case (a parsed one would lower-case it).
        let df_schema = DFSchema::try_from_qualified_schema(
            datafusion::common::TableReference::bare(qualifier.as_str()),
            &schema,
        )?;
        let filter = match &q.filter {
            Some(f) => {
                // Window bounds exist only after the aggregation, never in its WHERE.
                if q.window.is_some() {
                    let mut bound = None;
                    let _ = sqlast::visit_expressions(f, |x| {
                        if let sqlast::Expr::Identifier(i) = x
                            && matches!(
                                i.value.to_uppercase().as_str(),
                                "WINDOWSTART" | "WINDOWEND"
                            )
                        {
                            bound = Some(i.value.to_uppercase());
                        }
                        std::ops::ControlFlow::<()>::Continue(())
                    });
                    if let Some(n) = bound {
                        return err(format!("Error in WHERE expression: Unknown column {n}."));
                    }
                }
                let e = without_null_guards(self.plan_expr(f, &df_schema, "WHERE")?);
                let dt = e.get_type(&df_schema)?;
                if !matches!(dt, DataType::Boolean | DataType::Null) {
                    // ksqlDB shows a binary expression in parentheses.
                    let text = match f {
                        sqlast::Expr::BinaryOp { .. } => format!("({f})"),
                        other => other.to_string(),
                    };
                    return err(format!(
                        "Type error in WHERE expression: Should evaluate to boolean but is {text} ({}) instead.",
                        crate::schema::type_name(&dt)
                    ));
                }
                Some(self.ctx.create_physical_expr(e, &df_schema)?)
            }
            None => None,
        };
        if source.window.is_some() && !q.partition_by.is_empty() {
            return err(
                "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.",
            );
        }
        if q.group_by.is_empty()
            && q.having.is_none()
            && q.window.is_none()
            && let Some(e) = crate::aggregate::plan::ungrouped_columns(&q.select)
        {
            return Err(e);
        }
        if !q.group_by.is_empty() || q.having.is_some() || q.window.is_some() {
            return self.plan_aggregated(
                q,
                source,
                schema,
                filter,
                (&qualifier, &df_schema),
                sink,
                usage,
            );
        }
        let (items, table_functions) =
            if !q.partition_by.is_empty() && q.select == [SelectItem::Wildcard] {
                self.repartitioned_wildcard(q, &source, &qualifier, &df_schema)?
            } else {
                self.select_items(q, &source, &qualifier, &df_schema, usage)?
            };
        let key_items = key_items(self, q, &source, sink, &items, &df_schema, usage)?;
        let mut output = Vec::new();
        let mut projection = Vec::new();
        let mut exploded = Vec::new();
        // A sink's rows are its key columns, then its values; a push query's rows keep
        // the projection's order (`SELECT ROWTIME, *` starts with ROWTIME), as ksqlDB's.
        let ordered: Vec<(bool, usize)> = match usage {
            QueryUse::Persistent => key_items
                .iter()
                .map(|&i| (true, i))
                .chain(
                    (0..items.len())
                        .filter(|i| !key_items.contains(i))
                        .map(|i| (false, i)),
                )
                .collect(),
            QueryUse::Push => (0..items.len())
                .map(|i| (key_items.contains(&i), i))
                .collect(),
        };
        for (key, i) in ordered {
            let (name, e) = &items[i];
            let duplicate = output.iter().any(|c: &Column| &c.name == name);
            let mut dt = e.to_field(&df_schema)?.1.data_type().clone();
            if table_functions[i] {
                dt = match dt {
                    DataType::List(f) => f.data_type().clone(),
                    other => {
                        return err(format!(
                            "Function 'EXPLODE' does not accept parameters ({other})."
                        ));
                    }
                };
            }
            exploded.push(table_functions[i]);
            let (ty, e) = if table_functions[i] {
                let ty = result_type(&dt)?.0;
                (ty, e.clone())
            } else {
                result_type_of(e, &dt)?
            };
            if duplicate {
                return err(format!(
                    "Duplicate value columns found in schema: `{name}` {ty}"
                ));
            }
            let e = &e;
            output.push(Column {
                name: name.clone(),
                ty,
                key,
            });
            projection.push(self.ctx.create_physical_expr(e.clone(), &df_schema)?);
        }
        // Columns the query reads: decoding may skip the others where that cannot change
        // which records decode.
        let source_value = value_serde(&source, &projection, filter.as_ref());
        Ok(Planned {
            pipeline: Pipeline {
                source_key: Serde::key(&source),
                source_value,
                source: source.clone(),
                filter,
                projection,
                input_schema: schema,
                output,
                rekeyed: !q.partition_by.is_empty(),
                exploded: if exploded.iter().any(|e| *e) {
                    exploded
                } else {
                    Vec::new()
                },
                positions: Vec::new(),
                aggregation: None,
            },
            kind: source.kind,
            // A query over a windowed source keeps its rows' windows in its keys.
            window: source.window,
            join: None,
            source,
        })
    }

    /// Plans a GROUP BY query: the pipeline computes the group-by values and aggregate
    /// arguments, the aggregation keeps the state and projects what it emits.
    #[allow(clippy::too_many_arguments)]
    fn plan_aggregated(
        &self,
        q: &Query,
        source: Source,
        schema: Arc<Schema>,
        filter: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
        (qualifier, df_schema): (&str, &DFSchema),
        sink: &str,
        usage: QueryUse,
    ) -> Result<Planned, EngineError> {
        if !q.partition_by.is_empty() {
            return err("PARTITION BY and GROUP BY cannot be used together in one query.");
        }
        let planned = self.plan_aggregation(q, &source, qualifier, df_schema, sink, usage)?;
        let (output, projection): (Vec<Column>, Vec<_>) =
            planned.pre_projection.into_iter().unzip();
        let group_types = output[..planned.plan.groups]
            .iter()
            .map(|c| {
                arrow_type(&c.ty).ok_or_else(|| EngineError(format!("unsupported type {}", c.ty)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let table = source.kind == sluice_sql::ast::SourceKind::Table;
        let source_keys = if table {
            let key_types = source
                .key_columns()
                .map(|c| {
                    arrow_type(&c.ty)
                        .ok_or_else(|| EngineError(format!("unsupported type {}", c.ty)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let n = key_types.len();
            let first = if source.window.is_some() { 5 } else { 3 };
            Some(crate::aggregate::SourceKeys::new(
                key_types,
                first..first + n,
            )?)
        } else {
            None
        };
        let window = planned.plan.window.as_ref().map(|w| w.kind);
        let aggregation = crate::aggregate::Aggregation::new(planned.plan, group_types, table)?;
        let source_value = value_serde(&source, &projection, filter.as_ref());
        Ok(Planned {
            pipeline: Pipeline {
                source_key: Serde::key(&source),
                source_value,
                source: source.clone(),
                filter,
                projection,
                input_schema: schema,
                output,
                rekeyed: false,
                exploded: Vec::new(),
                positions: Vec::new(),
                aggregation: Some(Box::new(crate::query::Aggregated {
                    aggregation,
                    source_keys,
                })),
            },
            kind: sluice_sql::ast::SourceKind::Table,
            window,
            join: None,
            source,
        })
    }

    /// The `PARTITION BY` expressions with their plans; `PARTITION BY NULL` means no key.
    fn partition_keys<'q>(
        &self,
        q: &'q Query,
        df_schema: &DFSchema,
    ) -> Result<Vec<(&'q sqlast::Expr, DfExpr)>, EngineError> {
        q.partition_by
            .iter()
            .filter(
                |e| !matches!(e, sqlast::Expr::Value(v) if matches!(v.value, sqlast::Value::Null)),
            )
            .map(|e| match self.plan_expr(e, df_schema, "PARTITION BY") {
                Ok(planned) => Ok((e, planned)),
                Err(error) => Err(explain_partition_by_alias(error, e, q)),
            })
            .collect()
    }

    /// `SELECT * … PARTITION BY e, …`: the new key columns first (a column keeps its name,
    /// other expressions are `KSQL_COL_n`), then the source's value columns and its old key
    /// columns, less those that became the key.
    fn repartitioned_wildcard(
        &self,
        q: &Query,
        source: &Source,
        qualifier: &str,
        df_schema: &DFSchema,
    ) -> Result<SelectItems, EngineError> {
        let mut items: Vec<(String, DfExpr)> = Vec::new();
        let mut used: Vec<String> = Vec::new();
        let mut names = AliasGenerator::new(source);
        for (e, planned) in self.partition_keys(q, df_schema)? {
            let name = match column_name(e) {
                Some(n) => {
                    used.push(n.clone());
                    n
                }
                None => names.ksql_col(),
            };
            items.push((name, planned));
        }
        for col in source.row_columns().chain(source.key_columns()) {
            if used.contains(&col.name) {
                continue;
            }
            items.push((col.name.clone(), source_column(qualifier, &col.name)));
        }
        let n = items.len();
        Ok((items, vec![false; n]))
    }

    /// The projection as (name, expression), wildcards expanded to key then value columns
    /// (and, in a push query over a windowed source, the window bounds after the keys, as
    /// ksqlDB's transient queries show them).
    fn select_items(
        &self,
        q: &Query,
        source: &Source,
        qualifier: &str,
        df_schema: &DFSchema,
        usage: QueryUse,
    ) -> Result<SelectItems, EngineError> {
        let mut items: Vec<(String, DfExpr)> = Vec::new();
        let mut table_functions = Vec::new();
        let mut names = AliasGenerator::new(source);
        for item in &q.select {
            match item {
                SelectItem::Wildcard | SelectItem::QualifiedWildcard(_) => {
                    for col in source.key_columns() {
                        items.push((col.name.clone(), source_column(qualifier, &col.name)));
                        table_functions.push(false);
                    }
                    if usage == QueryUse::Push && source.window.is_some() {
                        for bound in ["WINDOWSTART", "WINDOWEND"] {
                            items.push((bound.to_string(), source_column(qualifier, bound)));
                            table_functions.push(false);
                        }
                    }
                    for col in source.row_columns() {
                        items.push((col.name.clone(), source_column(qualifier, &col.name)));
                        table_functions.push(false);
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    let exploded = explode_argument(expr);
                    if exploded.is_some() && !q.group_by.is_empty() {
                        return err("Table functions cannot be used with aggregations.");
                    }
                    let e = self.plan_expr(exploded.unwrap_or(expr), df_schema, "SELECT")?;
                    table_functions.push(exploded.is_some());
                    let name = match alias {
                        Some(a) => a.clone(),
                        None => match column_name(expr) {
                            Some(n) => n,
                            None => names.unique_for(expr),
                        },
                    };
                    items.push((name, e));
                }
                SelectItem::StructWildcard(expr) => {
                    // `s->*`: one column per field of the struct, named after the field.
                    let e = self.plan_expr(expr, df_schema, "SELECT")?;
                    let dt = e.to_field(df_schema)?.1.data_type().clone();
                    let DataType::Struct(fields) = dt else {
                        return err(format!(
                            "{expr} is not a STRUCT: it has no fields to select"
                        ));
                    };
                    for f in fields.iter() {
                        items.push((
                            f.name().clone(),
                            datafusion::functions::core::expr_fn::get_field(
                                e.clone(),
                                f.name().as_str(),
                            ),
                        ));
                        table_functions.push(false);
                    }
                }
            }
        }
        Ok((items, table_functions))
    }
}

/// The ksqlDB type of a result of Arrow type `dt` (an untyped null refused as ksqlDB does),
/// with its Arrow type.
pub(crate) fn result_type(
    dt: &DataType,
) -> Result<(sluice_sql::SqlType, Option<DataType>), EngineError> {
    if *dt == DataType::Null {
        return err(
            "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR).",
        );
    }
    let ty = sql_type(dt).ok_or_else(|| EngineError(format!("unsupported result type {dt}")))?;
    let arrow = arrow_type(&ty);
    Ok((ty, arrow))
}

/// A result column's ksqlDB type and its expression, cast so evaluation yields exactly the
/// Arrow type of that ksqlDB type (a function may answer in a wider or differently laid out
/// type).
pub(crate) fn result_type_of(
    e: &DfExpr,
    dt: &DataType,
) -> Result<(sluice_sql::SqlType, DfExpr), EngineError> {
    let (ty, wanted) = result_type(dt)?;
    let e = match wanted {
        Some(wanted) if wanted != *dt => DfExpr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(e.clone()),
            wanted,
        )),
        _ => e.clone(),
    };
    Ok((ty, e))
}

/// The source's value serde, told which columns the query reads (its TIMESTAMP column, and
/// those its projection and filter use) so decoding may skip the others.
fn value_serde(
    source: &Source,
    projection: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
    filter: Option<&Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
) -> Serde {
    let mut read: std::collections::HashSet<String> = std::collections::HashSet::new();
    if let Some(spec) = &source.timestamp {
        read.insert(spec.column.clone());
    }
    for e in projection.iter().chain(filter) {
        for c in datafusion::physical_expr::utils::collect_columns(e) {
            read.insert(c.name().to_string());
        }
    }
    let mut serde = Serde::value(source);
    serde.skip_unread(&read);
    serde
}

/// The argument of a top-level `EXPLODE(x)`, the table function.
fn explode_argument(expr: &sqlast::Expr) -> Option<&sqlast::Expr> {
    let sqlast::Expr::Function(f) = expr else {
        return None;
    };
    if !f.name.to_string().eq_ignore_ascii_case("EXPLODE") {
        return None;
    }
    let sqlast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.as_slice() {
        [sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(e))] => Some(e),
        _ => None,
    }
}

/// A reference to a source column.
fn source_column(qualifier: &str, name: &str) -> DfExpr {
    datafusion::logical_expr::col(datafusion::common::Column::new(
        Some(datafusion::common::TableReference::bare(qualifier)),
        name.to_string(),
    ))
}

/// The name ksqlDB gives an unaliased column reference.
/// A WHERE clause drops rows whose condition is null, so a top-level condition needs no
/// guard making a null comparison false: `c IS NOT NULL AND c` (what `coalesce(c, false)`
/// simplifies to) is just `c` there, evaluated once.
fn without_null_guards(e: DfExpr) -> DfExpr {
    use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
    let conjuncts = split_conjunction_owned(e.clone());
    let kept: Vec<DfExpr> = conjuncts
        .iter()
        .filter(|c| !matches!(c, DfExpr::IsNotNull(inner) if conjuncts.contains(inner)))
        .cloned()
        .collect();
    conjunction(kept).unwrap_or(e)
}

/// Names ksqlDB keeps for its system columns: a persistent query's result may not use them.
pub(crate) const RESERVED_COLUMNS: &[&str] = &[
    "ROWTIME",
    "ROWPARTITION",
    "ROWOFFSET",
    "WINDOWSTART",
    "WINDOWEND",
];

/// A persistent query neither aliases a column to a system column's name nor selects a system
/// column under its own name (a sink cannot hold a column the engine sets itself).
fn check_reserved_names(q: &Query) -> Result<(), EngineError> {
    for item in &q.select {
        let SelectItem::Expr { expr, alias } = item else {
            continue;
        };
        match alias {
            Some(a) if RESERVED_COLUMNS.contains(&a.as_str()) => {
                return err(format!(
                    "`{a}` is a reserved column name. You cannot use it as an alias for a column."
                ));
            }
            Some(_) => {}
            None => {
                if let Some(n) =
                    column_name(expr).filter(|n| RESERVED_COLUMNS.contains(&n.as_str()))
                {
                    return err(format!(
                        "Reserved column name in select: `{n}`. Please remove or alias the column."
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The column a planning error could not find, as the user wrote it (`BOB`, `I.BOB`).
fn unresolved_column(e: &datafusion::error::DataFusionError) -> Option<String> {
    use datafusion::common::SchemaError;
    use datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            SchemaError::FieldNotFound { field, .. } => Some(match &field.relation {
                Some(r) => format!("{r}.{}", field.name),
                None => field.name.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// `PARTITION BY` runs on the input, so a name the projection defines is not in scope there.
fn explain_partition_by_alias(error: EngineError, expr: &sqlast::Expr, q: &Query) -> EngineError {
    let Some(name) = column_name(expr) else {
        return error;
    };
    let is_alias = q
        .select
        .iter()
        .any(|i| matches!(i, SelectItem::Expr { alias: Some(a), .. } if *a == name));
    if is_alias && error.0.starts_with("PARTITION BY column") {
        return EngineError(format!(
            "{} '{name}' must be a column in the source schema since PARTITION BY is applied on the input.",
            error.0
        ));
    }
    error
}

/// ksqlDB's names for unaliased projections that are not plain columns: `s->f` is `F`
/// (`F_1`, `F_2`, … where that name is taken), anything else `KSQL_COL_n` with the
/// lowest n no source column already uses.
pub(crate) struct AliasGenerator {
    used: std::collections::HashSet<String>,
    next_generated: usize,
}

impl AliasGenerator {
    pub(crate) fn new(source: &Source) -> Self {
        AliasGenerator {
            used: source.columns.iter().map(|c| c.name.clone()).collect(),
            next_generated: 0,
        }
    }

    pub(crate) fn unique_for(&mut self, expr: &sqlast::Expr) -> String {
        if let Some(field) = dereferenced_field(expr) {
            let mut name = field.clone();
            let mut n = 1;
            while self.used.contains(&name) {
                name = format!("{field}_{n}");
                n += 1;
            }
            self.used.insert(name.clone());
            return name;
        }
        self.ksql_col()
    }

    /// The next `KSQL_COL_n` no source column uses.
    fn ksql_col(&mut self) -> String {
        loop {
            let name = format!("KSQL_COL_{}", self.next_generated);
            self.next_generated += 1;
            if !self.used.contains(&name) {
                return name;
            }
        }
    }
}

/// The field an expression ending in `->field` reads.
fn dereferenced_field(expr: &sqlast::Expr) -> Option<String> {
    let sqlast::Expr::CompoundFieldAccess { access_chain, .. } = expr else {
        return None;
    };
    match access_chain.last()? {
        sqlast::AccessExpr::Dot(sqlast::Expr::Identifier(i)) => Some(match i.quote_style {
            Some(_) => i.value.clone(),
            None => i.value.to_uppercase(),
        }),
        _ => None,
    }
}

pub(crate) fn column_name(expr: &sqlast::Expr) -> Option<String> {
    // Quoted identifiers keep their case; unquoted ones are upper-cased.
    let name = |i: &Ident| match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_uppercase(),
    };
    match expr {
        sqlast::Expr::Identifier(i) => Some(name(i)),
        sqlast::Expr::CompoundIdentifier(parts) => parts.last().map(name),
        _ => None,
    }
}

/// Which projection items are the output key: those matching the source's key columns, or
/// the `PARTITION BY` expressions. A persistent query must project every one of them.
fn key_items(
    engine: &Engine,
    q: &Query,
    source: &Source,
    sink: &str,
    items: &[(String, DfExpr)],
    df_schema: &DFSchema,
    usage: QueryUse,
) -> Result<Vec<usize>, EngineError> {
    let mut wanted: Vec<(String, DfExpr)> = Vec::new();
    if q.partition_by.is_empty() {
        for k in source.key_columns() {
            wanted.push((
                k.name.clone(),
                datafusion::logical_expr::col(datafusion::common::Column::new_unqualified(
                    k.name.clone(),
                )),
            ));
        }
    } else {
        for (e, planned) in engine.partition_keys(q, df_schema)? {
            let name = column_name(e).unwrap_or_else(|| e.to_string());
            wanted.push((name, planned));
        }
    }
    let mut chosen: Vec<usize> = Vec::new();
    for (name, want) in &wanted {
        let found = items
            .iter()
            .enumerate()
            .position(|(i, (_, e))| !chosen.contains(&i) && same_expr(e, want));
        match found {
            Some(i) => chosen.push(i),
            None if usage == QueryUse::Push => {}
            None => {
                // ksqlDB names every key column when one is missing.
                let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
                let listed = match names.as_slice() {
                    [one] => format!("key column {one}"),
                    [init @ .., last] => format!("key columns {} and {last}", init.join(", ")),
                    [] => format!("key column {name}"),
                };
                return err(format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the {listed} in its projection (eg, SELECT {}...).",
                    names.join(", ")
                ));
            }
        }
    }
    Ok(chosen)
}

/// Whether two planned expressions are the same, ignoring column qualifiers.
fn same_expr(a: &DfExpr, b: &DfExpr) -> bool {
    match (a, b) {
        (DfExpr::Column(x), DfExpr::Column(y)) => x.name == y.name,
        _ => strip_qualifiers(a) == strip_qualifiers(b),
    }
}

fn strip_qualifiers(e: &DfExpr) -> DfExpr {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    e.clone()
        .transform(|e| {
            Ok(match e {
                DfExpr::Column(c) => Transformed::yes(DfExpr::Column(
                    datafusion::common::Column::new_unqualified(c.name),
                )),
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

/// The function a planning error says does not exist, upper-cased as ksqlDB names it.
fn unknown_function(e: &datafusion::error::DataFusionError) -> Option<String> {
    let text = e.to_string();
    let rest = text.split("Invalid function '").nth(1)?;
    Some(rest.split('\'').next()?.to_uppercase())
}
