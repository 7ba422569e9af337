//! A source's key or value columns <-> bytes, whatever the format: the bridge between the
//! catalog's columns and the format modules.

use datafusion::arrow::array::{ArrayRef, new_null_array};

use crate::catalog::{Column, Format};
use crate::format::{FormatError, RecordErrors, delimited, json, kafka};
use crate::schema::arrow_type;

fn json_columns(columns: &[&Column]) -> Vec<json::Column> {
    columns
        .iter()
        .map(|c| json::Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
        })
        .collect()
}

/// Checks at planning time that `format` can carry `columns`.
pub fn check(format: Format, columns: &[&Column]) -> Result<(), FormatError> {
    match format {
        Format::Kafka => {
            if columns.len() > 1 {
                return Err(FormatError::Deserialization(
                    "The 'KAFKA' format only supports a single field. Got: ".to_string()
                        + &columns
                            .iter()
                            .map(|c| format!("`{}` {}", c.name, c.ty))
                            .collect::<Vec<_>>()
                            .join(", "),
                ));
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
    format: Format,
    columns: &[&Column],
    wrapped: bool,
    delimiter: char,
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    if columns.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    match format {
        Format::Kafka => {
            let (a, e) = kafka::decode_column(&columns[0].ty, payloads)?;
            Ok((vec![a], e))
        }
        Format::Json => json::decode_columns(&json_columns(columns), wrapped, payloads),
        Format::Delimited => delimited::decode_columns(&json_columns(columns), delimiter, payloads),
        Format::None => {
            let arrays = columns
                .iter()
                .map(|c| {
                    arrow_type(&c.ty)
                        .map(|t| new_null_array(&t, payloads.len()))
                        .ok_or_else(|| FormatError::unsupported(format.name(), &c.ty))
                })
                .collect::<Result<_, _>>()?;
            Ok((arrays, Vec::new()))
        }
    }
}

/// Encodes row `row` of `arrays` (one per column); `None` when there is nothing to write
/// (no columns, or a KAFKA null).
pub fn encode(
    format: Format,
    columns: &[&Column],
    arrays: &[ArrayRef],
    wrapped: bool,
    delimiter: char,
    row: usize,
) -> Result<Option<Vec<u8>>, FormatError> {
    if columns.is_empty() {
        return Ok(None);
    }
    match format {
        Format::Kafka => kafka::encode_value(&columns[0].ty, arrays[0].as_ref(), row),
        Format::Json => {
            if !wrapped && arrays[0].is_null(row) {
                return Ok(None);
            }
            json::encode_row(&json_columns(columns), arrays, wrapped, row).map(Some)
        }
        Format::Delimited => {
            delimited::encode_row(&json_columns(columns), arrays, delimiter, row).map(Some)
        }
        Format::None => Ok(None),
    }
}
