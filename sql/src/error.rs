//! Parse errors with the line and column where parsing stopped.

use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::Location;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl ParseError {
    pub fn new(line: u64, column: u64, message: impl Into<String>) -> Self {
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    /// Converts sqlparser's error, whose text ends in "at Line: l, Column: c" when it knows.
    pub fn from_sqlparser(e: &ParserError, fallback: Option<Location>) -> Self {
        let text = match e {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s.clone(),
            ParserError::RecursionLimitExceeded => "the statement is nested too deeply".into(),
        };
        if let Some(i) = text.rfind(" at Line: ") {
            let pos = &text[i + " at Line: ".len()..];
            if let Some((l, c)) = pos.split_once(", Column: ")
                && let (Ok(line), Ok(column)) = (l.trim().parse(), c.trim().parse())
            {
                return ParseError::new(line, column, format!("Syntax Error: {}", &text[..i]));
            }
        }
        let loc = fallback.unwrap_or(Location { line: 1, column: 1 });
        ParseError::new(loc.line, loc.column, format!("Syntax Error: {text}"))
    }
}
