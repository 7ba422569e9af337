//! ksqlDB's typing of comparisons: numbers compare with numbers, strings with strings,
//! booleans with booleans, dates and times with each other and with strings, bytes with
//! bytes, and arrays, maps and structs only for (in)equality. Anything else is refused while
//! planning, in ksqlDB's words, where DataFusion would coerce.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::ExprSchemable;
use datafusion::sql::sqlparser::ast as sqlast;

use crate::engine::{Engine, EngineError};
use crate::schema::sql_type;

impl Engine {
    /// Checks every comparison in `expr` (before identifiers are normalised).
    pub(crate) fn check_comparisons(
        &self,
        expr: &sqlast::Expr,
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        struct Comparisons<'a> {
            engine: &'a Engine,
            schema: &'a DFSchema,
            clause: &'a str,
            failure: Option<EngineError>,
            in_lambda: usize,
        }
        impl sqlast::Visitor for Comparisons<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &sqlast::Expr) -> std::ops::ControlFlow<()> {
                // A lambda's body is typed where the lambda is planned, over its parameters.
                if matches!(e, sqlast::Expr::Lambda(_)) {
                    self.in_lambda += 1;
                }
                if self.in_lambda == 0
                    && let sqlast::Expr::BinaryOp { left, op, right } = e
                    && let Some(name) = operator_name(op)
                    && let Err(err) =
                        self.engine
                            .check_comparison(left, name, right, self.schema, self.clause)
                {
                    self.failure = Some(err);
                    return std::ops::ControlFlow::Break(());
                }
                std::ops::ControlFlow::Continue(())
            }
            fn post_visit_expr(&mut self, e: &sqlast::Expr) -> std::ops::ControlFlow<()> {
                if matches!(e, sqlast::Expr::Lambda(_)) {
                    self.in_lambda -= 1;
                }
                std::ops::ControlFlow::Continue(())
            }
        }
        let mut c = Comparisons {
            engine: self,
            schema,
            clause,
            failure: None,
            in_lambda: 0,
        };
        let _ = sqlast::Visit::visit(expr, &mut c);
        c.failure.map_or(Ok(()), Err)
    }

    fn check_comparison(
        &self,
        left: &sqlast::Expr,
        op: &str,
        right: &sqlast::Expr,
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        let lt = self.plan_expr(left, schema, clause)?.get_type(schema)?;
        let rt = self.plan_expr(right, schema, clause)?.get_type(schema)?;
        if comparable(&lt, &rt, op) {
            return Ok(());
        }
        let prefix = if clause == "WHERE" {
            "Error in WHERE expression: "
        } else {
            ""
        };
        Err(EngineError(format!(
            "{prefix}Cannot compare {left} ({}) to {right} ({}) with {op}.",
            type_name(&lt),
            type_name(&rt)
        )))
    }
}

fn operator_name(op: &sqlast::BinaryOperator) -> Option<&'static str> {
    use sqlast::BinaryOperator as Op;
    Some(match op {
        Op::Eq => "EQUAL",
        Op::NotEq => "NOT_EQUAL",
        Op::Lt => "LESS_THAN",
        Op::LtEq => "LESS_THAN_OR_EQUAL",
        Op::Gt => "GREATER_THAN",
        Op::GtEq => "GREATER_THAN_OR_EQUAL",
        _ => return None,
    })
}

pub(crate) fn type_name(t: &DataType) -> String {
    match sql_type(t) {
        Some(s) => s.to_string(),
        None if *t == DataType::Null => "null".into(),
        None => t.to_string(),
    }
}

fn comparable(a: &DataType, b: &DataType, op: &str) -> bool {
    use DataType::*;
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let temporal = |t: &DataType| matches!(t, Date32 | Time32(_) | Time64(_) | Timestamp(..));
    let binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    let nested = |t: &DataType| matches!(t, List(_) | Map(..) | Struct(_));
    match (a, b) {
        (Null, _) | (_, Null) => true,
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (x, y) if text(x) && text(y) => true,
        (Boolean, Boolean) => true,
        (x, y) if temporal(x) && (temporal(y) || text(y)) => true,
        (x, y) if text(x) && temporal(y) => true,
        (x, y) if binary(x) && binary(y) => true,
        (x, y) if nested(x) && nested(y) => op == "EQUAL" || op == "NOT_EQUAL",
        _ => false,
    }
}
