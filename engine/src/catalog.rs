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
}

impl Source {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.key)
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
}

impl Catalog {
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
