//! ksqlDB's SQL types, parsed from their written form (`ARRAY<STRUCT<A INT>>`, `DECIMAL(4, 2)`,
//! a custom type name from `CREATE TYPE`) and printed back the way ksqlDB prints them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    Array(Box<SqlType>),
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
    /// A name registered with `CREATE TYPE`, resolved by the catalog.
    Custom(String),
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Array(t) => write!(f, "ARRAY<{t}>"),
            SqlType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{n}` {t}")?;
                }
                f.write_str(">")
            }
            SqlType::Custom(n) => f.write_str(n),
        }
    }
}

use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

fn type_error(p: &Parser, msg: &str) -> ParserError {
    let t = p.peek_token_ref();
    ParserError::ParserError(format!(
        "{msg}, found '{}' at Line: {}, Column: {}",
        t.token, t.span.start.line, t.span.start.column
    ))
}

/// Parses a type at the parser's position. `pending_gt` carries a `>` owed from a `>>`
/// token while nested brackets close (`ARRAY<ARRAY<INT>>`); start it at 0.
pub fn parse_type(p: &mut Parser, pending_gt: &mut usize) -> Result<SqlType, ParserError> {
    let (name, quoted) = match &p.peek_token_ref().token {
        Token::Word(w) => (w.value.clone(), w.quote_style.is_some()),
        _ => return Err(type_error(p, "expected a type")),
    };
    p.advance_token();
    if quoted {
        return Ok(SqlType::Custom(name));
    }
    let upper = name.to_uppercase();
    Ok(match upper.as_str() {
        // A keyword, not a type: ksqlDB's grammar rejects it as syntax.
        "NULL" => return Err(type_error(p, "NULL is not a type")),
        "BOOLEAN" => SqlType::Boolean,
        "INT" | "INTEGER" => SqlType::Int,
        "BIGINT" => SqlType::Bigint,
        "DOUBLE" => SqlType::Double,
        "STRING" | "VARCHAR" => {
            // ksqlDB accepts and ignores a parameter: VARCHAR(10), VARCHAR(STRING).
            if p.consume_token(&Token::LParen) {
                p.advance_token();
                expect(p, &Token::RParen)?;
            }
            SqlType::String
        }
        "BYTES" => SqlType::Bytes,
        "DATE" => SqlType::Date,
        "TIME" => SqlType::Time,
        "TIMESTAMP" => SqlType::Timestamp,
        "DECIMAL" => {
            expect(p, &Token::LParen)?;
            let precision = number(p)?;
            expect(p, &Token::Comma)?;
            let scale = number(p)?;
            expect(p, &Token::RParen)?;
            if precision == 0 || precision > 255 || scale > precision {
                return Err(type_error(
                    p,
                    &format!("invalid DECIMAL({precision}, {scale})"),
                ));
            }
            SqlType::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            }
        }
        "ARRAY" => {
            expect(p, &Token::Lt)?;
            let t = parse_type(p, pending_gt)?;
            close_angle(p, pending_gt)?;
            SqlType::Array(Box::new(t))
        }
        "MAP" => {
            expect(p, &Token::Lt)?;
            let k = parse_type(p, pending_gt)?;
            expect(p, &Token::Comma)?;
            let v = parse_type(p, pending_gt)?;
            close_angle(p, pending_gt)?;
            SqlType::Map(Box::new(k), Box::new(v))
        }
        "STRUCT" => {
            if p.consume_token(&Token::Neq) {
                return Ok(SqlType::Struct(Vec::new()));
            }
            expect(p, &Token::Lt)?;
            let mut fields = Vec::new();
            if *pending_gt == 0 && p.consume_token(&Token::Gt) {
                return Ok(SqlType::Struct(fields));
            }
            loop {
                let field = match &p.peek_token_ref().token {
                    Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
                    Token::Word(w) => w.value.to_uppercase(),
                    _ => return Err(type_error(p, "expected a field name")),
                };
                p.advance_token();
                let t = parse_type(p, pending_gt)?;
                fields.push((field, t));
                if *pending_gt == 0 && p.consume_token(&Token::Comma) {
                    continue;
                }
                close_angle(p, pending_gt)?;
                break;
            }
            SqlType::Struct(fields)
        }
        _ => SqlType::Custom(upper),
    })
}

fn expect(p: &mut Parser, t: &Token) -> Result<(), ParserError> {
    if p.consume_token(t) {
        Ok(())
    } else {
        Err(type_error(p, &format!("expected '{t}'")))
    }
}

fn number(p: &mut Parser) -> Result<u64, ParserError> {
    if let Token::Number(n, _) = &p.peek_token_ref().token
        && let Ok(v) = n.parse()
    {
        p.advance_token();
        return Ok(v);
    }
    Err(type_error(p, "expected a number"))
}

fn close_angle(p: &mut Parser, pending_gt: &mut usize) -> Result<(), ParserError> {
    if *pending_gt > 0 {
        *pending_gt -= 1;
        return Ok(());
    }
    if p.consume_token(&Token::Gt) {
        return Ok(());
    }
    if p.consume_token(&Token::ShiftRight) {
        *pending_gt += 1;
        return Ok(());
    }
    Err(type_error(p, "expected '>'"))
}

/// Parses a type from its text (`INT`, `ARRAY<STRUCT<\`A\` STRING>>`), as `SqlType`'s
/// `Display` writes it inside a `CAST`.
pub fn parse_type_text(text: &str) -> Result<SqlType, crate::ParseError> {
    let dialect = crate::dialect::KsqlDialect;
    let mut p = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| crate::ParseError::from_sqlparser(&e, None))?;
    let mut pending = 0;
    let ty = parse_type(&mut p, &mut pending)
        .map_err(|e| crate::ParseError::from_sqlparser(&e, None))?;
    Ok(ty)
}
