//! ksqlDB's typing of comparisons: numbers compare with numbers, strings with strings,
//! booleans with booleans, dates and times with each other and with strings, bytes with
//! bytes, and arrays, maps and structs only for (in)equality. Anything else is refused while
//! planning, in ksqlDB's words, where DataFusion would coerce.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::ExprSchemable;
use datafusion::sql::sqlparser::ast as sqlast;

use crate::engine::{Engine, EngineError};
use crate::schema::type_name;

impl Engine {
    /// Checks every comparison in `expr` (before identifiers are normalised).
    pub(crate) fn check_comparisons(
        &self,
        expr: &mut sqlast::Expr,
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        window_bounds_as_millis(expr);
        crate::lambda::for_each_outside_lambdas(expr, &mut |e| match e {
            sqlast::Expr::BinaryOp { left, op, right } => match operator_name(op) {
                Some(name) => self.check_comparison(left, name, right, schema, clause),
                None if is_arithmetic(op) => self.check_null_arithmetic(e, schema, clause),
                None => Ok(()),
            },
            _ => Ok(()),
        })
    }

    /// ksqlDB refuses arithmetic with an untyped NULL literal (`1 + null`) when it plans
    /// the expression; DataFusion would answer null.
    fn check_null_arithmetic(
        &self,
        e: &sqlast::Expr,
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        let sqlast::Expr::BinaryOp { left, right, .. } = e else {
            return Ok(());
        };
        let is_null = |x: &sqlast::Expr| {
            matches!(
                x,
                sqlast::Expr::Value(v) if matches!(v.value, sqlast::Value::Null)
            )
        };
        if !is_null(left) && !is_null(right) {
            return Ok(());
        }
        let side_type = |x: &sqlast::Expr| -> Result<String, EngineError> {
            if is_null(x) {
                return Ok("null".into());
            }
            let t = self.plan_expr(x, schema, clause)?.get_type(schema)?;
            Ok(type_name(&t))
        };
        Err(EngineError(format!(
            "Error processing expression: {}. Arithmetic on types {} and {} are not supported.",
            crate::expr_text::ksql_text(e),
            side_type(left)?,
            side_type(right)?
        )))
    }

    /// ksqlDB's `+` on two strings concatenates them: rewritten as SQL's `||` (null if
    /// either side is null). Operands whose type cannot be planned here (inside lambdas) are
    /// left as they are.
    pub(crate) fn concatenate_strings(&self, expr: &mut sqlast::Expr, schema: &DFSchema) {
        struct StringPlus<'a> {
            engine: &'a Engine,
            schema: &'a DFSchema,
        }
        impl sqlast::VisitorMut for StringPlus<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, e: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
                if let sqlast::Expr::BinaryOp {
                    left,
                    op: op @ sqlast::BinaryOperator::Plus,
                    right,
                } = e
                {
                    let is_string = |x: &sqlast::Expr| {
                        self.engine
                            .plan_expr_with(x, self.schema, "SELECT", false)
                            .and_then(|p| Ok(p.get_type(self.schema)?))
                            .is_ok_and(|t| {
                                matches!(
                                    t,
                                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                                )
                            })
                    };
                    if is_string(left) && is_string(right) {
                        *op = sqlast::BinaryOperator::StringConcat;
                    }
                }
                std::ops::ControlFlow::Continue(())
            }
        }
        if !contains_plus(expr) {
            return;
        }
        let _ = sqlast::VisitMut::visit(
            expr,
            &mut StringPlus {
                engine: self,
                schema,
            },
        );
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

fn is_arithmetic(op: &sqlast::BinaryOperator) -> bool {
    use sqlast::BinaryOperator as Op;
    matches!(
        op,
        Op::Plus | Op::Minus | Op::Multiply | Op::Divide | Op::Modulo
    )
}

/// `WINDOWSTART >= '2020-02-23T23:45:12.000'`: ksqlDB reads a string compared with a window
/// bound as a UTC timestamp; rewritten here to its epoch milliseconds.
fn window_bounds_as_millis(expr: &mut sqlast::Expr) {
    struct Bounds;
    impl sqlast::VisitorMut for Bounds {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
            if let sqlast::Expr::BinaryOp { left, op, right } = e
                && operator_name(op).is_some()
            {
                let as_millis = |bound: &sqlast::Expr, literal: &mut sqlast::Expr| {
                    if is_window_bound(bound)
                        && let Some(millis) = string_literal(literal).and_then(timestamp_millis)
                    {
                        *literal =
                            sqlast::Expr::value(sqlast::Value::Number(millis.to_string(), false));
                    }
                };
                as_millis(left, right);
                as_millis(right, left);
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = sqlast::VisitMut::visit(expr, &mut Bounds);
}

fn is_window_bound(e: &sqlast::Expr) -> bool {
    let name = match e {
        sqlast::Expr::Identifier(i) => &i.value,
        sqlast::Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    name.eq_ignore_ascii_case("WINDOWSTART") || name.eq_ignore_ascii_case("WINDOWEND")
}

fn string_literal(e: &sqlast::Expr) -> Option<&str> {
    match e {
        sqlast::Expr::Value(v) => match &v.value {
            sqlast::Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// A timestamp string in ksqlDB's ISO forms (to milliseconds, minutes or the day), UTC.
fn timestamp_millis(text: &str) -> Option<i64> {
    use crate::functions::java_time::{Pattern, Zone};
    [
        "yyyy-MM-dd'T'HH:mm:ss.SSS",
        "yyyy-MM-dd'T'HH:mm:ss",
        "yyyy-MM-dd'T'HH:mm",
        "yyyy-MM-dd",
    ]
    .iter()
    .find_map(|p| Pattern::new(p).ok()?.parse_millis(text, &Zone::utc()).ok())
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

/// Whether an expression has a `+` anywhere (most have none: no planning needed).
fn contains_plus(e: &sqlast::Expr) -> bool {
    let mut found = false;
    let _ = sqlast::visit_expressions(e, |x| {
        if matches!(
            x,
            sqlast::Expr::BinaryOp {
                op: sqlast::BinaryOperator::Plus,
                ..
            }
        ) {
            found = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}
