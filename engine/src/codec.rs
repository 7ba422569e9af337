//! A source's key or value columns <-> bytes, whatever the format: the bridge between the
//! catalog and the format modules. A `Serde` is prepared once per source side (format,
//! columns, wrapping, delimiter), so decoding and encoding batches allocate nothing per row
//! for the schema.

use datafusion::arrow::array::{ArrayRef, new_null_array};

use crate::catalog::{Column, Format, Source};
use crate::format::{FormatError, RecordErrors, delimited, json, kafka};
use crate::schema::arrow_type;

/// How one side (key or value) of a source is read and written.
#[derive(Debug, Clone)]
pub struct Serde {
    pub format: Format,
    pub columns: Vec<json::Column>,
    /// Whether JSON wraps the columns in an object.
    pub wrapped: bool,
    /// The DELIMITED field delimiter.
    pub delimiter: char,
    /// Columns a query never reads, which decoding may skip when skipping cannot change
    /// whether a record decodes (JSON STRING columns: any JSON value is a valid STRING).
    /// Empty: decode everything.
    pub unread: Vec<bool>,
    /// Whether this is a key's serde (as errors name its columns).
    pub is_key: bool,
    /// Each column's name as a JSON object key with its colon (`"NAME":`), written once
    /// here rather than escaped again for every record.
    json_keys: Vec<String>,
    /// The same keys with what comes before each (`{` or `,`), for `RowEncoder`.
    json_key_prefixes: Vec<json::KeyPrefix>,
}

fn fields<'a>(columns: impl Iterator<Item = &'a Column>) -> Vec<json::Column> {
    columns
        .map(|c| json::Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
        })
        .collect()
}

/// Buffers an encoder reuses between records.
#[derive(Default)]
pub struct Scratch {
    text: Vec<u8>,
    bytes: Vec<u8>,
}

impl Serde {
    /// The key side: a single key column is written bare, several as an object.
    pub fn key(source: &Source) -> Serde {
        let columns = fields(source.key_columns());
        Serde {
            format: source.key_format,
            wrapped: columns.len() != 1,
            json_keys: json::object_keys(&columns),
            json_key_prefixes: json::object_key_prefixes(&columns),
            columns,
            delimiter: source.key_delimiter,
            unread: Vec::new(),
            is_key: true,
        }
    }

    pub fn value(source: &Source) -> Serde {
        let columns = fields(source.value_columns());
        Serde {
            format: source.value_format,
            json_keys: json::object_keys(&columns),
            json_key_prefixes: json::object_key_prefixes(&columns),
            columns,
            wrapped: source.value_wrapped(),
            delimiter: source.value_delimiter,
            unread: Vec::new(),
            is_key: false,
        }
    }

    /// Marks the columns not in `read` (by name) that decoding may skip: for JSON, STRING
    /// columns (any JSON value is a valid STRING, so skipping one never changes whether a
    /// record decodes). Other formats and types are always decoded.
    pub fn skip_unread(&mut self, read: &std::collections::HashSet<String>) {
        if self.format != Format::Json || !self.wrapped {
            return;
        }
        self.unread = self
            .columns
            .iter()
            .map(|c| c.ty == sluice_sql::SqlType::String && !read.contains(&c.name))
            .collect();
    }

    /// The columns as ksqlDB lists them in format errors (`` `K` INTEGER KEY, … ``).
    pub fn describe_columns(&self) -> String {
        let suffix = if self.is_key { " KEY" } else { "" };
        self.columns
            .iter()
            .map(|c| format!("`{}` {}{suffix}", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks at planning time that the format can carry the columns.
    pub fn check(&self) -> Result<(), FormatError> {
        let columns = &self.columns;
        match self.format {
            Format::Kafka => {
                if columns.len() > 1 {
                    return Err(FormatError::Deserialization(format!(
                        "The 'KAFKA' format only supports a single field. Got: [{}]",
                        self.describe_columns()
                    )));
                }
                columns.iter().try_for_each(|c| kafka::check_type(&c.ty))
            }
            Format::Json => columns.iter().try_for_each(|c| json::check_type(&c.ty)),
            Format::None if columns.is_empty() => Ok(()),
            Format::None => Err(FormatError::Deserialization(
                "The 'NONE' format can only be used when no columns are defined".into(),
            )),
            Format::Delimited => columns
                .iter()
                .try_for_each(|c| delimited::check_type(&c.ty)),
        }
    }

    /// Decodes the payloads of a batch into one column per entry of `columns`.
    pub fn decode(
        &self,
        payloads: &[Option<&[u8]>],
    ) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
        if self.columns.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        match self.format {
            Format::Kafka => {
                let (a, e) = kafka::decode_column(&self.columns[0].ty, payloads)?;
                Ok((vec![a], e))
            }
            Format::Json if self.wrapped && self.unread.iter().any(|u| *u) => {
                json::decode_columns_skipping(&self.columns, &self.unread, payloads)
            }
            Format::Json => json::decode_columns(&self.columns, self.wrapped, payloads),
            Format::Delimited => delimited::decode_columns(&self.columns, self.delimiter, payloads),
            Format::None => {
                let arrays = self
                    .columns
                    .iter()
                    .map(|c| {
                        arrow_type(&c.ty)
                            .map(|t| new_null_array(&t, payloads.len()))
                            .ok_or_else(|| FormatError::unsupported(self.format.name(), &c.ty))
                    })
                    .collect::<Result<_, _>>()?;
                Ok((arrays, Vec::new()))
            }
        }
    }

    /// An encoder for the rows of `arrays` (one per column), which looks at their types
    /// once rather than once per row.
    pub fn rows<'a>(&'a self, arrays: &'a [ArrayRef]) -> RowEncoder<'a> {
        let views = if self.format == Format::Json && self.wrapped {
            self.columns
                .iter()
                .zip(arrays)
                .map(|(c, a)| json::ColumnView::of(&c.ty, a.as_ref()))
                .collect()
        } else {
            Vec::new()
        };
        RowEncoder {
            serde: self,
            arrays,
            views,
        }
    }

    /// Encodes row `row` of `arrays` (one per column); `None` when there is nothing to write
    /// (no columns, a KAFKA null, an unwrapped JSON null).
    /// `encode` into `scratch` (reused between records: no allocation per record for
    /// JSON); the bytes borrow from it.
    pub fn encode_to<'s>(
        &self,
        arrays: &[ArrayRef],
        row: usize,
        scratch: &'s mut Scratch,
    ) -> Result<Option<&'s [u8]>, FormatError> {
        if self.format == Format::Json && !self.columns.is_empty() {
            if !self.wrapped && arrays[0].is_null(row) {
                return Ok(None);
            }
            scratch.text.clear();
            if self.wrapped {
                json::encode_object_into(
                    &self.columns,
                    &self.json_keys,
                    arrays,
                    row,
                    &mut scratch.text,
                )?;
            } else {
                json::encode_row_into(&self.columns, arrays, false, row, &mut scratch.text)?;
            }
            return Ok(Some(scratch.text.as_slice()));
        }
        if self.format == Format::Kafka && !self.columns.is_empty() {
            scratch.bytes.clear();
            let written = kafka::encode_value_into(
                &self.columns[0].ty,
                arrays[0].as_ref(),
                row,
                &mut scratch.bytes,
            )?;
            return Ok(written.then_some(scratch.bytes.as_slice()));
        }
        Ok(match self.encode(arrays, row)? {
            Some(bytes) => {
                scratch.bytes = bytes;
                Some(&scratch.bytes)
            }
            None => None,
        })
    }

    pub fn encode(&self, arrays: &[ArrayRef], row: usize) -> Result<Option<Vec<u8>>, FormatError> {
        if self.columns.is_empty() {
            return Ok(None);
        }
        match self.format {
            Format::Kafka => kafka::encode_value(&self.columns[0].ty, arrays[0].as_ref(), row),
            Format::Json => {
                if !self.wrapped && arrays[0].is_null(row) {
                    return Ok(None);
                }
                json::encode_row(&self.columns, arrays, self.wrapped, row).map(Some)
            }
            Format::Delimited => {
                delimited::encode_row(&self.columns, arrays, self.delimiter, row).map(Some)
            }
            Format::None => Ok(None),
        }
    }
}

/// The rows of one batch's arrays, encoded by a `Serde` (`Serde::rows`).
pub struct RowEncoder<'a> {
    serde: &'a Serde,
    arrays: &'a [ArrayRef],
    /// Wrapped JSON: the columns as the writer sees them (empty for other formats).
    views: Vec<json::ColumnView<'a>>,
}

impl RowEncoder<'_> {
    /// Whether every row encodes to a value `write_into` can append (wrapped JSON).
    pub fn writes_in_place(&self) -> bool {
        !self.views.is_empty()
    }

    /// Appends row `row`'s encoding to `out` (when `writes_in_place`: a record batch's own
    /// buffer, so the value is not copied there afterwards); on an error, `out` may hold
    /// part of it.
    pub fn write_into(&self, row: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
        json::encode_viewed_object_into(&self.serde.json_key_prefixes, &self.views, row, out)
    }

    /// `Serde::encode_to` of row `row`.
    pub fn encode_to<'s>(
        &self,
        row: usize,
        scratch: &'s mut Scratch,
    ) -> Result<Option<&'s [u8]>, FormatError> {
        if self.views.is_empty() || self.serde.columns.is_empty() {
            return self.serde.encode_to(self.arrays, row, scratch);
        }
        scratch.text.clear();
        json::encode_viewed_object_into(
            &self.serde.json_key_prefixes,
            &self.views,
            row,
            &mut scratch.text,
        )?;
        Ok(Some(scratch.text.as_slice()))
    }
}
