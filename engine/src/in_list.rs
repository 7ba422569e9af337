//! `x [NOT] IN (a, b, …)` typed as ksqlDB types it: string literals in the list are read as
//! the type of `x` (`ID IN (true, 'TrUe', 'y')` for a BOOLEAN), and items of another kind
//! than `x` are refused while planning ("operator does not exist: INTEGER = BOOLEAN (true)")
//! instead of being coerced.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::ExprSchemable;
use datafusion::sql::sqlparser::ast as sqlast;

use crate::engine::{Engine, EngineError};
use crate::schema::type_name;

impl Engine {
    /// Checks and rewrites every IN list in `expr` (before identifiers are normalised).
    pub(crate) fn type_in_lists(
        &self,
        expr: &mut sqlast::Expr,
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        crate::lambda::for_each_outside_lambdas(expr, &mut |e| match e {
            sqlast::Expr::InList { expr, list, .. } => {
                self.type_in_list(expr, list, schema, clause)
            }
            _ => Ok(()),
        })
    }

    fn type_in_list(
        &self,
        probe: &sqlast::Expr,
        list: &mut [sqlast::Expr],
        schema: &DFSchema,
        clause: &str,
    ) -> Result<(), EngineError> {
        // A typing error in a WHERE clause is an invalid predicate, in ksqlDB's words.
        let prefix = if clause == "WHERE" {
            "Invalid Predicate: "
        } else {
            ""
        };
        let typing = |e: EngineError| EngineError(format!("{prefix}{}", e.0));
        let probe_type = self.plan_expr(probe, schema, clause)?.get_type(schema)?;
        for item in list.iter_mut() {
            if let sqlast::Expr::Value(v) = item
                && let sqlast::Value::SingleQuotedString(text) = &v.value
            {
                if let Some(read) = read_literal(text, &probe_type).map_err(typing)? {
                    *item = read;
                }
                continue;
            }
            let number_literal = matches!(item, sqlast::Expr::Value(v) if matches!(v.value, sqlast::Value::Number(..)));
            // A number literal reads as text where the probe is a STRING.
            if number_literal && is_text(&probe_type) {
                continue;
            }
            let item_type = match item {
                // ksqlDB types a whole-number literal that fits 32 bits as INTEGER.
                sqlast::Expr::Value(v) if matches!(&v.value, sqlast::Value::Number(n, _) if n.parse::<i32>().is_ok()) => {
                    DataType::Int32
                }
                _ => self.plan_expr(item, schema, clause)?.get_type(schema)?,
            };
            if !comparable(&probe_type, &item_type, false) {
                return Err(typing(EngineError(format!(
                    "operator does not exist: {} = {} ({item})\nHint: You might need to add explicit type casts.",
                    type_name(&probe_type),
                    type_name(&item_type)
                ))));
            }
        }
        Ok(())
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether ksqlDB compares values of these types with `=`. Inside a constructor
/// (`nested`), text may stand for any scalar: ksqlDB reads string literals there as the
/// element type.
fn comparable(a: &DataType, b: &DataType, nested: bool) -> bool {
    use DataType::*;
    let numeric = |t: &DataType| t.is_numeric();
    let scalar = |t: &DataType| numeric(t) || is_text(t) || *t == Boolean;
    match (a, b) {
        (Null, _) | (_, Null) => true,
        (x, y) if numeric(x) && numeric(y) => true,
        (x, y) if is_text(x) && is_text(y) => true,
        (x, y) if nested && is_text(y) && scalar(x) => true,
        (Boolean, Boolean) => true,
        (List(x), List(y)) => comparable(x.data_type(), y.data_type(), true),
        (Map(x, _), Map(y, _)) => match (x.data_type(), y.data_type()) {
            (Struct(xs), Struct(ys)) if xs.len() == 2 && ys.len() == 2 => {
                comparable(xs[0].data_type(), ys[0].data_type(), true)
                    && comparable(xs[1].data_type(), ys[1].data_type(), true)
            }
            _ => false,
        },
        (Struct(xs), Struct(ys)) => xs.iter().all(|f| {
            ys.iter()
                .find(|g| g.name() == f.name())
                .is_none_or(|g| comparable(f.data_type(), g.data_type(), true))
        }),
        (x, y) => x == y,
    }
}

/// A string literal read as `target`'s type, as ksqlDB reads it in an IN list; `None` when
/// the literal stays a string.
fn read_literal(text: &str, target: &DataType) -> Result<Option<sqlast::Expr>, EngineError> {
    let invalid =
        |ty: &str| EngineError(format!("invalid input syntax for type {ty}: \"{text}\"."));
    let number = |n: String| Some(sqlast::Expr::value(sqlast::Value::Number(n, false)));
    let trimmed = text.trim();
    Ok(match target {
        DataType::Boolean => {
            let lower = trimmed.to_lowercase();
            let is =
                |words: &[&str]| !lower.is_empty() && words.iter().any(|w| w.starts_with(&lower));
            let b = if is(&["true", "yes"]) {
                true
            } else if is(&["false", "no"]) {
                false
            } else {
                return Err(invalid("BOOLEAN"));
            };
            Some(sqlast::Expr::value(sqlast::Value::Boolean(b)))
        }
        // Any number will do: the comparison happens in the wider type.
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            trimmed.parse::<f64>().map_err(|_| invalid("INTEGER"))?;
            number(trimmed.to_string())
        }
        DataType::Int64 => {
            trimmed.parse::<f64>().map_err(|_| invalid("BIGINT"))?;
            number(trimmed.to_string())
        }
        DataType::Float32 | DataType::Float64 => {
            trimmed.parse::<f64>().map_err(|_| invalid("DOUBLE"))?;
            number(trimmed.to_string())
        }
        DataType::Decimal128(..) => {
            // Digits with at most one point, optionally signed: what BigDecimal reads.
            let unsigned = trimmed.trim_start_matches(['-', '+']);
            let ok = unsigned.bytes().any(|b| b.is_ascii_digit())
                && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && unsigned.bytes().filter(|&b| b == b'.').count() <= 1;
            if !ok {
                return Err(invalid("DECIMAL"));
            }
            number(trimmed.to_string())
        }
        _ => None,
    })
}
