//! The sqlparser dialect for ksqlDB's expression syntax: backquoted and double-quoted
//! identifiers, `->` as struct field access (not a lambda), lambdas written `x => e` and
//! `(x, y) => e`, and `:=` inside `MAP(…)`/`STRUCT(…)` constructors.

use datafusion::sql::sqlparser::ast::{
    AccessExpr, CastKind, DataType, Expr, Ident, LambdaFunction, LambdaFunctionParameter,
    LambdaSyntax, ObjectName, OneOrManyWithParens, Subscript,
};
use datafusion::sql::sqlparser::dialect::{Dialect, Precedence};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

#[derive(Debug, Default, Clone, Copy)]
pub struct KsqlDialect;

impl Dialect for KsqlDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_' || ch == '@' || ch == '$'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || ch == '_' || ch == '@' || ch == '$'
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        false
    }

    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        true
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        true
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        false
    }

    fn supports_boolean_literals(&self) -> bool {
        true
    }

    fn supports_numeric_prefix(&self) -> bool {
        // ksqlDB identifiers may start with a digit (`AS 1R`).
        true
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        if is_word(&parser.peek_token_ref().token, "CAST")
            && parser.peek_nth_token_ref(1).token == Token::LParen
        {
            parser.advance_token();
            parser.advance_token();
            return Some(parse_cast_rest(parser));
        }
        lambda_params(parser).map(|params| {
            let body = parser.parse_expr()?;
            Ok(Expr::Lambda(LambdaFunction {
                params,
                body: Box::new(body),
                syntax: LambdaSyntax::Arrow,
            }))
        })
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        if parser.peek_token_ref().token == Token::LBracket {
            return Some(Ok(self.prec_value(Precedence::Period)));
        }
        if parser.peek_token_ref().token == Token::Arrow {
            // `struct->*` ends the expression; `struct->field` binds like `.`.
            if parser.peek_nth_token_ref(1).token == Token::Mul {
                return Some(Ok(0));
            }
            return Some(Ok(self.prec_value(Precedence::Period)));
        }
        None
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let access = if parser.consume_token(&Token::Arrow) {
            match parser.parse_identifier() {
                Ok(field) => AccessExpr::Dot(Expr::Identifier(field)),
                Err(e) => return Some(Err(e)),
            }
        } else if parser.consume_token(&Token::LBracket) {
            let index = match parser.parse_expr() {
                Ok(i) => i,
                Err(e) => return Some(Err(e)),
            };
            if let Err(e) = parser.expect_token(&Token::RBracket) {
                return Some(Err(e));
            }
            AccessExpr::Subscript(Subscript::Index { index })
        } else {
            return None;
        };
        let (root, mut chain) = match expr.clone() {
            Expr::CompoundFieldAccess { root, access_chain } => (root, access_chain),
            other => (Box::new(other), Vec::new()),
        };
        chain.push(access);
        Some(Ok(Expr::CompoundFieldAccess {
            root,
            access_chain: chain,
        }))
    }
}

fn is_word(t: &Token, word: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// `CAST(` already consumed: `expr AS type)`, with ksqlDB's types (`MAP<…>`, `STRUCT<…>`)
/// carried as a custom data type whose name is the type's canonical text.
fn parse_cast_rest(parser: &mut Parser) -> Result<Expr, ParserError> {
    let expr = parser.parse_expr()?;
    if !is_word(&parser.peek_token_ref().token, "AS") {
        return parser.expected_ref("AS", parser.peek_token_ref());
    }
    parser.advance_token();
    let mut pending = 0;
    let ty = crate::types::parse_type(parser, &mut pending)?;
    parser.expect_token(&Token::RParen)?;
    Ok(Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type: DataType::Custom(
            ObjectName::from(vec![Ident::new(ty.to_string())]),
            Vec::new(),
        ),
        array: false,
        format: None,
    })
}

/// Recognizes and consumes lambda parameters (`x =>` or `(x, y) =>`); leaves the parser
/// untouched when the next tokens are not a lambda.
fn lambda_params(parser: &mut Parser) -> Option<OneOrManyWithParens<LambdaFunctionParameter>> {
    let param = |t: &Token| match t {
        Token::Word(w) => Some(Ident::new(w.value.clone())),
        _ => None,
    };
    let first = parser.peek_token_ref().token.clone();
    if let Some(name) = param(&first) {
        if parser.peek_nth_token_ref(1).token == Token::RArrow {
            parser.advance_token();
            parser.advance_token();
            return Some(OneOrManyWithParens::One(LambdaFunctionParameter {
                name,
                data_type: None,
            }));
        }
        return None;
    }
    if first != Token::LParen {
        return None;
    }
    let mut names = Vec::new();
    let mut n = 1;
    loop {
        let name = param(&parser.peek_nth_token_ref(n).token)?;
        names.push(name);
        match &parser.peek_nth_token_ref(n + 1).token {
            Token::Comma => n += 2,
            Token::RParen => break,
            _ => return None,
        }
    }
    if parser.peek_nth_token_ref(n + 2).token != Token::RArrow {
        return None;
    }
    for _ in 0..n + 3 {
        parser.advance_token();
    }
    Some(OneOrManyWithParens::Many(
        names
            .into_iter()
            .map(|name| LambdaFunctionParameter {
                name,
                data_type: None,
            })
            .collect(),
    ))
}
