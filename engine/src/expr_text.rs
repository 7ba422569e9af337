//! Expressions written as ksqlDB writes them in its messages (its `ExpressionFormatter`):
//! unquoted names upper-cased, every binary operation in parentheses (`(F1 + F2)`),
//! function calls as `NAME(A, B)`. Used where an error quotes a user's expression.

use datafusion::sql::sqlparser::ast as sqlast;

/// `e` in ksqlDB's words.
pub(crate) fn ksql_text(e: &sqlast::Expr) -> String {
    use sqlast::Expr;
    match e {
        Expr::Identifier(i) => name(i),
        Expr::CompoundIdentifier(parts) => parts.iter().map(name).collect::<Vec<_>>().join("."),
        Expr::Nested(inner) => ksql_text(inner),
        Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", ksql_text(left), ksql_text(right))
        }
        Expr::UnaryOp {
            op: sqlast::UnaryOperator::Minus,
            expr,
        } => format!("-{}", ksql_text(expr)),
        Expr::UnaryOp {
            op: sqlast::UnaryOperator::Not,
            expr,
        } => format!("(NOT {})", ksql_text(expr)),
        Expr::Cast {
            expr, data_type, ..
        } => format!(
            "CAST({} AS {})",
            ksql_text(expr),
            data_type.to_string().to_uppercase()
        ),
        Expr::Function(f) => function(f),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let args: Vec<String> = std::iter::once(expr)
                .chain(substring_from)
                .chain(substring_for)
                .map(|a| ksql_text(a))
                .collect();
            format!("SUBSTRING({})", args.join(", "))
        }
        Expr::Value(v) => match &v.value {
            sqlast::Value::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
            sqlast::Value::Null => "null".into(),
            other => other.to_string(),
        },
        // Anything else as sqlparser writes it, names upper-cased.
        other => {
            let mut e = other.clone();
            let _ = sqlast::visit_expressions_mut(&mut e, |x| {
                if let Expr::Identifier(i) = x
                    && i.quote_style.is_none()
                {
                    i.value = i.value.to_uppercase();
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            e.to_string()
        }
    }
}

/// Where an identifier is in the statement's text, as ksqlDB prefixes some messages
/// (`Line: 3, Col: 70: `); empty when the parser recorded no position.
pub(crate) fn position(i: &sqlast::Ident) -> String {
    position_at(i.span.start.line, i.span.start.column)
}

/// `position` of a (line, column) pair, 1-based (0: unknown).
pub(crate) fn position_at(line: u64, column: u64) -> String {
    if line > 0 {
        format!("Line: {line}, Col: {column}: ")
    } else {
        String::new()
    }
}

/// `position` of the first name in a column reference (`a` or `t.a`).
pub(crate) fn position_of(e: &sqlast::Expr) -> String {
    match e {
        sqlast::Expr::Identifier(i) => position(i),
        sqlast::Expr::CompoundIdentifier(parts) => parts.first().map(position).unwrap_or_default(),
        _ => String::new(),
    }
}

fn name(i: &sqlast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_uppercase()
    }
}

fn function(f: &sqlast::Function) -> String {
    let called = f.name.to_string().to_uppercase();
    let args = match &f.args {
        sqlast::FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                // MAP(k := v): ksqlDB writes an entry as `k:=v`.
                sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(
                    sqlast::Expr::BinaryOp {
                        left,
                        op: sqlast::BinaryOperator::Assignment,
                        right,
                    },
                )) => format!("{}:={}", ksql_text(left), ksql_text(right)),
                sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(e)) => ksql_text(e),
                sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Wildcard) => "*".into(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        sqlast::FunctionArguments::None | sqlast::FunctionArguments::Subquery(_) => String::new(),
    };
    format!("{called}({args})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str) -> String {
        let dialect = sluice_sql::dialect::KsqlDialect;
        let e = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        ksql_text(&e)
    }

    #[test]
    fn writes_expressions_as_ksqldb_does() {
        assert_eq!(text("f1 * sum(f2)"), "(F1 * SUM(F2))");
        assert_eq!(text("substring(source, 0, 3)"), "SUBSTRING(SOURCE, 0, 3)");
        assert_eq!(text("(a + b) - c"), "((A + B) - C)");
        assert_eq!(text("t.x = 'it''s'"), "(T.X = 'it''s')");
        assert_eq!(text("count(*)"), "COUNT(*)");
        assert_eq!(text("substring(s, 1)"), "SUBSTRING(S, 1)");
        assert_eq!(text("`Quoted` + 1"), "(Quoted + 1)");
    }
}
