//! The catalog: streams (and later tables, types and queries) with their columns, topic and
//! formats, by upper-cased name.

use std::collections::BTreeMap;

use sluice_sql::SqlType;
use sluice_sql::ast::SourceKind;

/// A serialization format of a key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Kafka,
    Json,
    Delimited,
    None,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name.to_uppercase().as_str() {
            "KAFKA" => Format::Kafka,
            "JSON" => Format::Json,
            "DELIMITED" => Format::Delimited,
            "NONE" => Format::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Kafka => "KAFKA",
            Format::Json => "JSON",
            Format::Delimited => "DELIMITED",
            Format::None => "NONE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub topic: String,
    pub columns: Vec<Column>,
    pub key_format: Format,
    pub value_format: Format,
    /// Whether a single value column is wrapped in an object (`WRAP_SINGLE_VALUE`).
    pub wrap_single_value: bool,
    /// Field delimiters of the DELIMITED format.
    pub key_delimiter: char,
    pub value_delimiter: char,
    /// The column records take their time from (`TIMESTAMP`), if not ROWTIME.
    pub timestamp: Option<TimestampColumn>,
    /// `CREATE SOURCE STREAM|TABLE`: queries read it, nothing writes to it through Sluice.
    pub read_only: bool,
    /// Columns filled from the record's headers rather than its key or value.
    pub headers: Vec<HeaderColumn>,
    /// The windows of a windowed table (its record keys carry the window).
    pub window: Option<sluice_sql::ast::WindowKind>,
}

/// A column read from record headers: `HEADERS` (all of them, as
/// `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`) or `HEADER('k')` (the last value of header `k`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderColumn {
    pub column: String,
    /// `None` for `HEADERS`, the header's key for `HEADER('k')`.
    pub key: Option<String>,
}

/// `WITH (TIMESTAMP='col', TIMESTAMP_FORMAT='…')`: where a source's record times come from,
/// or a sink's record times are taken.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestampColumn {
    pub column: String,
    /// Java pattern of a STRING column's text.
    pub format: Option<String>,
}

impl Source {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    /// The columns the value format carries (not the key's, not the headers').
    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| !c.key && !self.headers.iter().any(|h| h.column == c.name))
    }

    /// The columns filled from record headers, with where each comes from.
    pub fn header_columns(&self) -> impl Iterator<Item = (&Column, &HeaderColumn)> {
        self.headers.iter().filter_map(|h| {
            self.columns
                .iter()
                .find(|c| c.name == h.column)
                .map(|c| (c, h))
        })
    }

    /// Value columns, then header columns: what `SELECT *` shows after the key.
    pub fn row_columns(&self) -> impl Iterator<Item = &Column> {
        self.value_columns()
            .chain(self.header_columns().map(|(c, _)| c))
    }

    /// Whether values are read and written wrapped in an object.
    pub fn value_wrapped(&self) -> bool {
        self.value_format != Format::Kafka
            && (self.wrap_single_value || self.value_columns().count() != 1)
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    sources: BTreeMap<String, Source>,
    /// Custom types (`CREATE TYPE name AS …`), by upper-cased name.
    types: BTreeMap<String, SqlType>,
}

impl Catalog {
    pub fn add_type(&mut self, name: &str, ty: SqlType) {
        self.types.insert(name.to_uppercase(), ty);
    }

    pub fn remove_type(&mut self, name: &str) -> Option<SqlType> {
        self.types.remove(&name.to_uppercase())
    }

    pub fn types(&self) -> impl Iterator<Item = (&String, &SqlType)> {
        self.types.iter()
    }

    /// `ty` with every custom type name replaced by its definition; `Err(name)` for a name
    /// that is not defined.
    pub fn resolve(&self, ty: &SqlType) -> Result<SqlType, String> {
        Ok(match ty {
            SqlType::Custom(name) => match self.types.get(&name.to_uppercase()) {
                Some(t) => self.resolve(t)?,
                None => return Err(name.clone()),
            },
            SqlType::Array(t) => SqlType::Array(Box::new(self.resolve(t)?)),
            SqlType::Map(k, v) => {
                SqlType::Map(Box::new(self.resolve(k)?), Box::new(self.resolve(v)?))
            }
            SqlType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|(n, t)| Ok((n.clone(), self.resolve(t)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.get(name)
    }

    pub fn insert(&mut self, source: Source) {
        self.sources.insert(source.name.clone(), source);
    }

    pub fn remove(&mut self, name: &str) -> Option<Source> {
        self.sources.remove(name)
    }

    /// The first source reading `topic`.
    pub fn by_topic(&self, topic: &str) -> Option<&Source> {
        self.sources.values().find(|s| s.topic == topic)
    }

    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }
}
