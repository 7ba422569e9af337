//! Text -> `Statement`s. A recursive-descent parser for ksqlDB's statements, driving
//! sqlparser's `Parser` (tokens, expressions) through its public API with `KsqlDialect`.
//! Errors carry the line and column of the token where parsing stopped.

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

use crate::ast::*;
use crate::dialect::KsqlDialect;
use crate::error::ParseError;
use crate::types::SqlType;

/// Parses a script of `;`-separated statements (comments allowed).
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    Ok(parse_with_text(sql)?.into_iter().map(|(s, _)| s).collect())
}

/// Parses a script and keeps each statement's own text (without its `;`), which is what the
/// engine records in its command topic.
pub fn parse_with_text(sql: &str) -> Result<Vec<(Statement, String)>, ParseError> {
    let dialect = KsqlDialect;
    let parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| ParseError::from_sqlparser(&e, None))?;
    let mut p = P {
        p: parser,
        pending_gt: 0,
    };
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    loop {
        while p.p.consume_token(&Token::SemiColon) {}
        if p.p.peek_token_ref().token == Token::EOF {
            return Ok(out);
        }
        let start = p.p.peek_token_ref().span.start;
        let statement = p.statement()?;
        let end = p.p.get_current_token().span.end;
        let text = sql
            .get(lines.offset(start)..lines.offset(end))
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push((statement, text));
        if !p.p.consume_token(&Token::SemiColon) && p.p.peek_token_ref().token != Token::EOF {
            return Err(p.error("expected ';' or the end of the statement"));
        }
    }
}

/// Whether `text` holds at least one whole statement ended by `;` and nothing but
/// whitespace and comments after it: how the REPL decides that a multi-line entry is done.
/// An unterminated string or comment is never complete.
pub fn is_complete(text: &str) -> bool {
    use datafusion::sql::sqlparser::tokenizer::{Tokenizer, Whitespace};
    let dialect = KsqlDialect;
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize() else {
        return false;
    };
    tokens
        .iter()
        .rev()
        .find(|t| {
            !matches!(
                t,
                Token::Whitespace(
                    Whitespace::Space
                        | Whitespace::Newline
                        | Whitespace::Tab
                        | Whitespace::SingleLineComment { .. }
                        | Whitespace::MultiLineComment(_)
                )
            )
        })
        .is_some_and(|t| *t == Token::SemiColon)
}

/// Byte offsets of line starts, to turn sqlparser's (line, column) locations into slices.
struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    /// The byte offset of a 1-based (line, column-in-characters) location.
    fn offset(&self, loc: datafusion::sql::sqlparser::tokenizer::Location) -> usize {
        let Some(&start) = self.starts.get((loc.line as usize).saturating_sub(1)) else {
            return self.text.len();
        };
        let column = (loc.column as usize).saturating_sub(1);
        self.text[start..]
            .char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

/// Parses exactly one statement.
pub fn parse_statement(sql: &str) -> Result<Statement, ParseError> {
    let mut all = parse(sql)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(ParseError::new(1, 1, "no statement found")),
        n => Err(ParseError::new(
            1,
            1,
            format!("expected one statement, found {n}"),
        )),
    }
}

/// Words that end an expression or alias position in a query.
const CLAUSE_WORDS: &[&str] = &[
    "FROM",
    "WINDOW",
    "WHERE",
    "GROUP",
    "PARTITION",
    "HAVING",
    "EMIT",
    "LIMIT",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "ON",
    "WITHIN",
    "GRACE",
];

struct P<'a> {
    p: Parser<'a>,
    /// `>` characters still owed from a `>>` token while closing nested type brackets.
    pending_gt: usize,
}

type R<T> = Result<T, ParseError>;

/// Whether `e` is a boolean condition rather than a value expression in ksqlDB's grammar.
fn is_condition(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::BinaryOperator as B;
    match e {
        Expr::BinaryOp { op, .. } => matches!(
            op,
            B::And | B::Or | B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq
        ),
        Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
            ..
        } => true,
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::Like { .. }
        | Expr::Between { .. }
        | Expr::InList { .. } => true,
        _ => false,
    }
}

fn unquoted_word(t: &TokenWithSpan) -> Option<&Word> {
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w),
        _ => None,
    }
}

impl P<'_> {
    fn error(&self, msg: impl Into<String>) -> ParseError {
        let t = self.p.peek_token_ref();
        let found = match &t.token {
            Token::EOF => "end of input".to_string(),
            other => format!("'{other}'"),
        };
        ParseError::new(
            t.span.start.line,
            t.span.start.column,
            format!("{}, found {found}", msg.into()),
        )
    }

    fn sqlparser(&self, e: ParserError) -> ParseError {
        ParseError::from_sqlparser(&e, Some(self.p.get_current_token().span.start))
    }

    fn peek_is(&self, n: usize, word: &str) -> bool {
        unquoted_word(self.p.peek_nth_token_ref(n))
            .is_some_and(|w| w.value.eq_ignore_ascii_case(word))
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek_is(0, word) {
            self.p.advance_token();
            true
        } else {
            false
        }
    }

    fn eat_all(&mut self, words: &[&str]) -> bool {
        if words.iter().enumerate().all(|(i, w)| self.peek_is(i, w)) {
            for _ in words {
                self.p.advance_token();
            }
            true
        } else {
            false
        }
    }

    fn expect(&mut self, word: &str) -> R<()> {
        if self.eat(word) {
            Ok(())
        } else {
            Err(self.error(format!("expected {word}")))
        }
    }

    fn expect_token(&mut self, t: Token) -> R<()> {
        if self.p.consume_token(&t) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{t}'")))
        }
    }

    /// An identifier: unquoted ones are upper-cased as ksqlDB does.
    fn ident(&mut self) -> R<String> {
        match &self.p.peek_token_ref().token {
            Token::Word(w) => {
                let name = match w.quote_style {
                    Some(_) => w.value.clone(),
                    None => w.value.to_uppercase(),
                };
                self.p.advance_token();
                Ok(name)
            }
            _ => Err(self.error("expected an identifier")),
        }
    }

    fn string(&mut self) -> R<String> {
        match &self.p.peek_token_ref().token {
            Token::SingleQuotedString(s) => {
                let s = s.clone();
                self.p.advance_token();
                Ok(s)
            }
            _ => Err(self.error("expected a quoted string")),
        }
    }

    fn number(&mut self) -> R<u64> {
        match &self.p.peek_token_ref().token {
            Token::Number(n, _) => {
                let v = n
                    .parse()
                    .map_err(|_| self.error("expected a whole number"))?;
                self.p.advance_token();
                Ok(v)
            }
            _ => Err(self.error("expected a number")),
        }
    }

    fn expr(&mut self) -> R<Expr> {
        self.p.parse_expr().map_err(|e| self.sqlparser(e))
    }

    fn exprs(&mut self) -> R<Vec<Expr>> {
        let mut v = vec![self.expr()?];
        while self.p.consume_token(&Token::Comma) {
            v.push(self.expr()?);
        }
        Ok(v)
    }

    fn statement(&mut self) -> R<Statement> {
        let Some(first) = unquoted_word(self.p.peek_token_ref()).map(|w| w.value.to_uppercase())
        else {
            return Err(self.error("expected a statement"));
        };
        match first.as_str() {
            "CREATE" => self.create(),
            "INSERT" => self.insert(),
            "SELECT" => Ok(Statement::Select(self.query()?)),
            "DROP" => self.drop_statement(),
            "ALTER" => self.alter(),
            "TERMINATE" | "PAUSE" | "RESUME" => {
                self.p.advance_token();
                let target = if self.eat("ALL") {
                    None
                } else {
                    Some(self.ident()?)
                };
                Ok(match first.as_str() {
                    "TERMINATE" => Statement::Terminate(target),
                    "PAUSE" => Statement::Pause(target),
                    _ => Statement::Resume(target),
                })
            }
            "SHOW" | "LIST" => self.show(),
            "DESCRIBE" => self.describe(),
            "EXPLAIN" => {
                self.p.advance_token();
                let starts_statement = ["SELECT", "CREATE", "INSERT"]
                    .iter()
                    .any(|w| self.peek_is(0, w));
                let target = if starts_statement {
                    ExplainTarget::Statement(Box::new(self.statement()?))
                } else {
                    ExplainTarget::QueryId(self.ident()?)
                };
                Ok(Statement::Explain(Box::new(target)))
            }
            "PRINT" => self.print(),
            "SET" => {
                self.p.advance_token();
                let name = self.string()?;
                self.expect_token(Token::Eq)?;
                let value = self.string()?;
                Ok(Statement::Set { name, value })
            }
            "UNSET" => {
                self.p.advance_token();
                Ok(Statement::Unset(self.string()?))
            }
            "DEFINE" => {
                self.p.advance_token();
                let name = self.ident()?;
                self.expect_token(Token::Eq)?;
                let value = self.string()?;
                Ok(Statement::Define { name, value })
            }
            "UNDEFINE" => {
                self.p.advance_token();
                Ok(Statement::Undefine(self.ident()?))
            }
            "RUN" => {
                self.p.advance_token();
                self.expect("SCRIPT")?;
                Ok(Statement::RunScript(self.string()?))
            }
            _ => Err(self.error("expected a statement")),
        }
    }

    fn source_kind(&mut self) -> R<SourceKind> {
        if self.eat("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.error("expected STREAM or TABLE"))
        }
    }

    fn create(&mut self) -> R<Statement> {
        self.expect("CREATE")?;
        let or_replace = self.eat_all(&["OR", "REPLACE"]);
        if self.eat("TYPE") {
            let if_not_exists = self.eat_all(&["IF", "NOT", "EXISTS"]);
            let name = self.ident()?;
            self.expect("AS")?;
            let ty = self.ty()?;
            return Ok(Statement::CreateType {
                name,
                if_not_exists,
                ty,
            });
        }
        if (self.peek_is(0, "SOURCE") || self.peek_is(0, "SINK")) && self.peek_is(1, "CONNECTOR") {
            return Err(self.error("connectors are not supported"));
        }
        let read_only = self.eat("SOURCE");
        let kind = self.source_kind()?;
        let if_not_exists = self.eat_all(&["IF", "NOT", "EXISTS"]);
        let name = self.ident()?;
        if self.p.peek_token_ref().token == Token::LParen {
            let columns = self.column_defs()?;
            let properties = self.with_properties()?;
            return Ok(Statement::CreateSource(CreateSource {
                kind,
                name,
                or_replace,
                if_not_exists,
                read_only,
                columns,
                properties,
            }));
        }
        let properties = self.with_properties()?;
        if !self.eat("AS") {
            if read_only {
                return Err(self.error("expected a column list"));
            }
            return Ok(Statement::CreateSource(CreateSource {
                kind,
                name,
                or_replace,
                if_not_exists,
                read_only,
                columns: Vec::new(),
                properties,
            }));
        }
        if read_only {
            return Err(self.error("CREATE SOURCE cannot be used with AS SELECT"));
        }
        let query = self.query()?;
        Ok(Statement::CreateAsSelect(CreateAsSelect {
            kind,
            name,
            or_replace,
            if_not_exists,
            properties,
            query,
        }))
    }

    fn column_defs(&mut self) -> R<Vec<ColumnDef>> {
        self.expect_token(Token::LParen)?;
        let mut cols = Vec::new();
        if self.p.consume_token(&Token::RParen) {
            return Ok(cols);
        }
        loop {
            cols.push(self.column_def()?);
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.expect_token(Token::RParen)?;
            return Ok(cols);
        }
    }

    fn column_def(&mut self) -> R<ColumnDef> {
        let name = self.ident()?;
        let ty = self.ty()?;
        let constraint = if self.eat_all(&["PRIMARY", "KEY"]) {
            ColumnConstraint::PrimaryKey
        } else if self.eat("KEY") {
            ColumnConstraint::Key
        } else if self.eat("HEADERS") {
            ColumnConstraint::Headers
        } else if self.eat("HEADER") {
            self.expect_token(Token::LParen)?;
            let key = self.string()?;
            self.expect_token(Token::RParen)?;
            ColumnConstraint::Header(key)
        } else {
            ColumnConstraint::None
        };
        Ok(ColumnDef {
            name,
            ty,
            constraint,
        })
    }

    fn with_properties(&mut self) -> R<Properties> {
        let mut props = Properties::new();
        if !self.eat("WITH") {
            return Ok(props);
        }
        self.expect_token(Token::LParen)?;
        loop {
            let name = self.ident()?.to_uppercase();
            self.expect_token(Token::Eq)?;
            let value = self.literal()?;
            // ksqlDB checks a window size as it parses the statement.
            if let (true, Literal::String(text)) = (name == "WINDOW_SIZE", &value)
                && let Err(e) = Duration::parse_text(text)
            {
                return Err(self.error(format!("Configuration WINDOW_SIZE is invalid: {e}")));
            }
            if props.insert(name.clone(), value).is_some() {
                return Err(self.error(format!("duplicate property {name}")));
            }
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.expect_token(Token::RParen)?;
            return Ok(props);
        }
    }

    fn literal(&mut self) -> R<Literal> {
        let negative = self.p.consume_token(&Token::Minus);
        let t = self.p.peek_token_ref().token.clone();
        let lit = match t {
            Token::SingleQuotedString(s) if !negative => Literal::String(s),
            Token::Number(n, _) => Literal::Number(if negative { format!("-{n}") } else { n }),
            Token::Word(w)
                if !negative && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("true") =>
            {
                Literal::Boolean(true)
            }
            Token::Word(w)
                if !negative
                    && w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("false") =>
            {
                Literal::Boolean(false)
            }
            Token::Word(w)
                if !negative && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("null") =>
            {
                Literal::Null
            }
            _ => return Err(self.error("expected a literal")),
        };
        self.p.advance_token();
        Ok(lit)
    }

    /// A type; closing `>` may come fused as `>>`, tracked in `pending_gt`.
    fn ty(&mut self) -> R<SqlType> {
        let mut pending = self.pending_gt;
        let t = crate::types::parse_type(&mut self.p, &mut pending).map_err(|e| self.sqlparser(e));
        self.pending_gt = pending;
        t
    }

    fn insert(&mut self) -> R<Statement> {
        self.expect("INSERT")?;
        self.expect("INTO")?;
        let at = self.p.peek_token_ref().span.start;
        let target = self.ident()?;
        if self.p.peek_token_ref().token == Token::LParen || self.peek_is(0, "VALUES") {
            let mut columns = Vec::new();
            if self.p.consume_token(&Token::LParen) {
                loop {
                    columns.push(self.ident()?);
                    if !self.p.consume_token(&Token::Comma) {
                        break;
                    }
                }
                self.expect_token(Token::RParen)?;
            }
            self.expect("VALUES")?;
            self.expect_token(Token::LParen)?;
            let values = if self.p.peek_token_ref().token == Token::RParen {
                Vec::new()
            } else {
                self.exprs()?
            };
            self.expect_token(Token::RParen)?;
            return Ok(Statement::InsertValues {
                target,
                columns,
                values,
            });
        }
        let properties = self.with_properties()?;
        let query = self.query()?;
        Ok(Statement::InsertInto {
            target,
            target_at: (at.line, at.column),
            properties,
            query,
        })
    }

    fn drop_statement(&mut self) -> R<Statement> {
        self.expect("DROP")?;
        if self.eat("TYPE") {
            let if_exists = self.eat_all(&["IF", "EXISTS"]);
            return Ok(Statement::DropType {
                name: self.ident()?,
                if_exists,
            });
        }
        if self.peek_is(0, "CONNECTOR") {
            return Err(self.error("connectors are not supported"));
        }
        let kind = self.source_kind()?;
        let if_exists = self.eat_all(&["IF", "EXISTS"]);
        let name = self.ident()?;
        let delete_topic = self.eat_all(&["DELETE", "TOPIC"]);
        Ok(Statement::Drop {
            kind,
            name,
            if_exists,
            delete_topic,
        })
    }

    fn alter(&mut self) -> R<Statement> {
        self.expect("ALTER")?;
        let kind = self.source_kind()?;
        let name = self.ident()?;
        let mut add_columns = Vec::new();
        loop {
            self.expect("ADD")?;
            self.eat("COLUMN");
            add_columns.push(self.column_def()?);
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::AlterSource {
            kind,
            name,
            add_columns,
        })
    }

    fn show(&mut self) -> R<Statement> {
        self.p.advance_token();
        let all = self.eat("ALL");
        let what = if self.eat("STREAMS") {
            ShowWhat::Streams
        } else if self.eat("TABLES") {
            ShowWhat::Tables
        } else if self.eat("TOPICS") {
            ShowWhat::Topics { all }
        } else if self.eat("QUERIES") {
            ShowWhat::Queries
        } else if self.eat("PROPERTIES") {
            ShowWhat::Properties
        } else if self.eat("FUNCTIONS") {
            ShowWhat::Functions
        } else if self.eat("TYPES") {
            ShowWhat::Types
        } else if self.eat("VARIABLES") {
            ShowWhat::Variables
        } else if self.eat("CONNECTORS")
            || self.eat_all(&["SOURCE", "CONNECTORS"])
            || self.eat_all(&["SINK", "CONNECTORS"])
        {
            ShowWhat::Connectors
        } else {
            return Err(self.error("expected STREAMS, TABLES, TOPICS, QUERIES, PROPERTIES, FUNCTIONS, TYPES or VARIABLES"));
        };
        let extended = self.eat("EXTENDED");
        Ok(Statement::Show { what, extended })
    }

    fn describe(&mut self) -> R<Statement> {
        self.expect("DESCRIBE")?;
        if self.eat("FUNCTION") {
            return Ok(Statement::DescribeFunction(self.ident()?));
        }
        if self.peek_is(0, "STREAMS")
            && (self.peek_is(1, "EXTENDED")
                || self.p.peek_nth_token_ref(1).token == Token::SemiColon
                || self.p.peek_nth_token_ref(1).token == Token::EOF)
        {
            self.p.advance_token();
            return Ok(Statement::DescribeStreams {
                extended: self.eat("EXTENDED"),
            });
        }
        let name = self.ident()?;
        Ok(Statement::Describe {
            name,
            extended: self.eat("EXTENDED"),
        })
    }

    fn print(&mut self) -> R<Statement> {
        self.expect("PRINT")?;
        let topic = match &self.p.peek_token_ref().token {
            Token::SingleQuotedString(_) => self.string()?,
            Token::Word(w) => {
                let v = w.value.clone();
                self.p.advance_token();
                v
            }
            _ => return Err(self.error("expected a topic name")),
        };
        let mut from_beginning = false;
        let mut interval = None;
        let mut limit = None;
        loop {
            if self.eat_all(&["FROM", "BEGINNING"]) {
                from_beginning = true;
            } else if self.eat("INTERVAL") || self.eat("SAMPLE") {
                interval = Some(self.number()?);
            } else if self.eat("LIMIT") {
                limit = Some(self.number()?);
            } else {
                break;
            }
        }
        Ok(Statement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        })
    }

    fn query(&mut self) -> R<Query> {
        self.expect("SELECT")?;
        let mut select = vec![self.select_item()?];
        while self.p.consume_token(&Token::Comma) {
            select.push(self.select_item()?);
        }
        self.expect("FROM")?;
        let from = self.relation()?;
        let window = if self.eat("WINDOW") {
            Some(self.window()?)
        } else {
            None
        };
        let filter = if self.eat("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let group_by = if self.eat_all(&["GROUP", "BY"]) {
            let exprs = self.exprs()?;
            // ksqlDB's grammar groups by value expressions: a bare condition (`a AND b`,
            // `a = b`) there is a syntax error (in parentheses it is a value).
            if exprs.iter().any(is_condition) {
                return Err(self.error("Syntax Error"));
            }
            exprs
        } else {
            Vec::new()
        };
        let partition_by = if self.eat_all(&["PARTITION", "BY"]) {
            self.exprs()?
        } else {
            Vec::new()
        };
        let having = if self.eat("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        let emit = if self.eat("EMIT") {
            if self.eat("CHANGES") {
                Some(Emit::Changes)
            } else if self.eat("FINAL") {
                Some(Emit::Final)
            } else {
                return Err(self.error("expected CHANGES or FINAL"));
            }
        } else {
            None
        };
        let limit = if self.eat("LIMIT") {
            Some(self.number()?)
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            window,
            filter,
            group_by,
            partition_by,
            having,
            emit,
            limit,
        })
    }

    fn select_item(&mut self) -> R<SelectItem> {
        if self.p.consume_token(&Token::Mul) {
            return Ok(SelectItem::Wildcard);
        }
        if matches!(self.p.peek_token_ref().token, Token::Word(_))
            && self.p.peek_nth_token_ref(1).token == Token::Period
            && self.p.peek_nth_token_ref(2).token == Token::Mul
        {
            let source = self.ident()?;
            self.p.advance_token();
            self.p.advance_token();
            return Ok(SelectItem::QualifiedWildcard(source));
        }
        let expr = self.expr()?;
        if self.p.peek_token_ref().token == Token::Arrow
            && self.p.peek_nth_token_ref(1).token == Token::Mul
        {
            self.p.advance_token();
            self.p.advance_token();
            return Ok(SelectItem::StructWildcard(expr));
        }
        let alias = if self.eat("AS") || self.alias_follows() {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    /// True when the next token is a bare alias (a word that does not start a clause).
    fn alias_follows(&self) -> bool {
        match &self.p.peek_token_ref().token {
            Token::Word(w) if w.quote_style.is_some() => true,
            Token::Word(w) => !CLAUSE_WORDS.iter().any(|c| w.value.eq_ignore_ascii_case(c)),
            _ => false,
        }
    }

    fn relation(&mut self) -> R<Relation> {
        let mut rel = self.source()?;
        loop {
            let kind = if self.eat("JOIN") || self.eat_all(&["INNER", "JOIN"]) {
                JoinKind::Inner
            } else if self.eat_all(&["LEFT", "JOIN"]) || self.eat_all(&["LEFT", "OUTER", "JOIN"]) {
                JoinKind::Left
            } else if self.eat_all(&["RIGHT", "JOIN"]) || self.eat_all(&["RIGHT", "OUTER", "JOIN"])
            {
                JoinKind::Right
            } else if self.eat_all(&["FULL", "JOIN"])
                || self.eat_all(&["FULL", "OUTER", "JOIN"])
                || self.eat_all(&["OUTER", "JOIN"])
            {
                JoinKind::Full
            } else {
                return Ok(rel);
            };
            let right = self.source()?;
            let within = if self.eat("WITHIN") {
                if self.p.consume_token(&Token::LParen) {
                    let before = self.duration()?;
                    self.expect_token(Token::Comma)?;
                    let after = self.duration()?;
                    self.expect_token(Token::RParen)?;
                    Some(JoinWithin { before, after })
                } else {
                    let d = self.duration()?;
                    Some(JoinWithin {
                        before: d,
                        after: d,
                    })
                }
            } else {
                None
            };
            let grace = if self.eat_all(&["GRACE", "PERIOD"]) {
                Some(self.duration()?)
            } else {
                None
            };
            self.expect("ON")?;
            let on = self.expr()?;
            rel = Relation::Join {
                left: Box::new(rel),
                right: Box::new(right),
                kind,
                within,
                grace,
                on: Box::new(on),
            };
        }
    }

    fn source(&mut self) -> R<Relation> {
        let name = self.ident()?;
        let alias = if self.eat("AS") || self.alias_follows() {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(Relation::Source { name, alias })
    }

    fn duration(&mut self) -> R<Duration> {
        let n = self.number()?;
        let unit = match unquoted_word(self.p.peek_token_ref()) {
            Some(w) => w.value.to_uppercase(),
            None => return Err(self.error("expected a time unit")),
        };
        let factor: u64 = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => return Err(self.error("expected MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS")),
        };
        self.p.advance_token();
        n.checked_mul(factor)
            .map(|millis| Duration { millis })
            .ok_or_else(|| self.error("duration is too large"))
    }

    fn window(&mut self) -> R<Window> {
        enum K {
            Tumbling,
            Hopping,
            Session,
        }
        // ksqlDB's grammar allows a window name before the kind.
        if !["TUMBLING", "HOPPING", "SESSION"]
            .iter()
            .any(|w| self.peek_is(0, w))
            && ["TUMBLING", "HOPPING", "SESSION"]
                .iter()
                .any(|w| self.peek_is(1, w))
        {
            self.p.advance_token();
        }
        let k = if self.eat("TUMBLING") {
            K::Tumbling
        } else if self.eat("HOPPING") {
            K::Hopping
        } else if self.eat("SESSION") {
            K::Session
        } else {
            return Err(self.error("expected TUMBLING, HOPPING or SESSION"));
        };
        self.expect_token(Token::LParen)?;
        let (mut size, mut advance, mut gap, mut retention, mut grace) =
            (None, None, None, None, None);
        loop {
            if self.eat("SIZE") {
                size = Some(self.duration()?);
            } else if self.eat_all(&["ADVANCE", "BY"]) {
                advance = Some(self.duration()?);
            } else if self.eat("RETENTION") {
                retention = Some(self.duration()?);
            } else if self.eat_all(&["GRACE", "PERIOD"]) {
                grace = Some(self.duration()?);
            } else if matches!(k, K::Session) && gap.is_none() {
                gap = Some(self.duration()?);
            } else {
                return Err(self.error("expected a window property"));
            }
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect_token(Token::RParen)?;
        let kind = match k {
            K::Tumbling => WindowKind::Tumbling {
                size: size.ok_or_else(|| self.error("a TUMBLING window needs a SIZE"))?,
            },
            K::Hopping => WindowKind::Hopping {
                size: size.ok_or_else(|| self.error("a HOPPING window needs a SIZE"))?,
                advance: advance.ok_or_else(|| self.error("a HOPPING window needs ADVANCE BY"))?,
            },
            K::Session => WindowKind::Session {
                gap: gap.ok_or_else(|| self.error("a SESSION window needs a gap"))?,
            },
        };
        Ok(Window {
            kind,
            retention,
            grace,
        })
    }
}
