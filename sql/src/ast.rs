//! ksqlDB statements as Sluice understands them. Expressions stay sqlparser `Expr`s (planned
//! later with DataFusion); everything ksqlDB adds around them has its own types here.
//! Identifiers are already normalized: unquoted ones upper-cased, quoted ones kept.

use std::collections::BTreeMap;
use std::fmt;

pub use datafusion::sql::sqlparser::ast::Expr;

use crate::types::SqlType;

/// A literal in a `WITH (…)` clause or a `SET`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(String),
    Boolean(bool),
    Null,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) | Literal::Number(s) => f.write_str(s),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// `WITH (NAME = literal, …)`, names upper-cased.
pub type Properties = BTreeMap<String, Literal>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnConstraint {
    None,
    /// `KEY` (streams)
    Key,
    /// `PRIMARY KEY` (tables)
    PrimaryKey,
    /// `HEADERS`: all headers as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`
    Headers,
    /// `HEADER('name')`: one header's bytes
    Header(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: SqlType,
    pub constraint: ColumnConstraint,
}

/// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (cols) WITH (…)`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub kind: SourceKind,
    pub name: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
    /// `CREATE SOURCE STREAM|TABLE`: read-only.
    pub read_only: bool,
    pub columns: Vec<ColumnDef>,
    pub properties: Properties,
}

/// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (…)] AS SELECT …`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateAsSelect {
    pub kind: SourceKind,
    pub name: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub properties: Properties,
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard,
    /// `source.*`
    QualifiedWildcard(String),
    /// `struct_expr->*`
    StructWildcard(Expr),
    Expr {
        expr: Expr,
        alias: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// A duration such as `10 SECONDS`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub millis: u64,
}

impl Duration {
    /// `30 SECONDS`, `1 MINUTE`, `500 MILLISECONDS` (a property's text) as a duration.
    pub fn parse_text(text: &str) -> Result<Duration, String> {
        let invalid = |why: String| format!("Invalid duration: '{text}'. {why}");
        let mut parts = text.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("Expected a number and a time unit".into()));
        };
        let n: u64 = n
            .parse()
            .map_err(|_| invalid(format!("Not a number: '{n}'")))?;
        let unit_ms: u64 = match unit.to_uppercase().trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(invalid(format!(
                    "Unknown time unit: '{}'",
                    unit.to_uppercase()
                )));
            }
        };
        Ok(Duration {
            millis: n.saturating_mul(unit_ms),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinWithin {
    pub before: Duration,
    pub after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    Source {
        name: String,
        alias: Option<String>,
    },
    Join {
        left: Box<Relation>,
        right: Box<Relation>,
        kind: JoinKind,
        within: Option<JoinWithin>,
        grace: Option<Duration>,
        on: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size: Duration },
    Hopping { size: Duration, advance: Duration },
    Session { gap: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub kind: WindowKind,
    pub retention: Option<Duration>,
    pub grace: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

/// `SELECT … FROM … [WINDOW …] [WHERE …] [GROUP BY …] [PARTITION BY …] [HAVING …]
/// [EMIT CHANGES|FINAL] [LIMIT n]`
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: Relation,
    pub window: Option<Window>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub emit: Option<Emit>,
    pub limit: Option<u64>,
}

impl Query {
    /// `SELECT <select> FROM <name> [AS <alias>]`, nothing else.
    pub fn projection(select: Vec<SelectItem>, name: &str, alias: Option<String>) -> Query {
        Query {
            select,
            from: Relation::Source {
                name: name.to_string(),
                alias,
            },
            window: None,
            filter: None,
            group_by: Vec::new(),
            partition_by: Vec::new(),
            having: None,
            emit: None,
            limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowWhat {
    Streams,
    Tables,
    Topics { all: bool },
    Queries,
    Properties,
    Functions,
    Types,
    Variables,
    Connectors,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateSource(CreateSource),
    CreateAsSelect(CreateAsSelect),
    InsertInto {
        target: String,
        /// Where the target's name is in the text: (line, column), 1-based (0 if unknown).
        target_at: (u64, u64),
        properties: Properties,
        query: Query,
    },
    InsertValues {
        target: String,
        columns: Vec<String>,
        values: Vec<Expr>,
    },
    Select(Query),
    Drop {
        kind: SourceKind,
        name: String,
        if_exists: bool,
        delete_topic: bool,
    },
    CreateType {
        name: String,
        if_not_exists: bool,
        ty: SqlType,
    },
    DropType {
        name: String,
        if_exists: bool,
    },
    AlterSource {
        kind: SourceKind,
        name: String,
        add_columns: Vec<ColumnDef>,
    },
    /// `TERMINATE id`, or `TERMINATE ALL` (`None`)
    Terminate(Option<String>),
    Pause(Option<String>),
    Resume(Option<String>),
    Show {
        what: ShowWhat,
        extended: bool,
    },
    Describe {
        name: String,
        extended: bool,
    },
    DescribeStreams {
        extended: bool,
    },
    DescribeFunction(String),
    /// `EXPLAIN <statement>` or `EXPLAIN <query id>`
    Explain(Box<ExplainTarget>),
    Print {
        topic: String,
        from_beginning: bool,
        interval: Option<u64>,
        limit: Option<u64>,
    },
    Set {
        name: String,
        value: String,
    },
    Unset(String),
    Define {
        name: String,
        value: String,
    },
    Undefine(String),
    RunScript(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExplainTarget {
    Statement(Box<Statement>),
    QueryId(String),
}
