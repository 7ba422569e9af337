//! Columns read from record headers: `HEADERS` as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`
//! (every header, in order) and `HEADER('k')` as BYTES (the last value of header `k`, null
//! when absent), built as Arrow arrays for a batch of records.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryBuilder, ListArray, StringBuilder, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::DataType;

use crate::EngineError;
use crate::catalog::{Column, HeaderColumn};
use crate::query::Header;
use crate::schema::arrow_type;

/// The column's values for records with `headers`.
pub fn header_array(
    column: &Column,
    header: &HeaderColumn,
    headers: &[&[Header]],
) -> Result<ArrayRef, EngineError> {
    match &header.key {
        Some(key) => {
            let mut b = BinaryBuilder::new();
            for hs in headers {
                match hs.iter().rev().find(|(k, _)| k == key) {
                    Some((_, Some(v))) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Ok(Arc::new(b.finish()))
        }
        None => {
            let dt = arrow_type(&column.ty)
                .ok_or_else(|| EngineError(format!("unsupported type {}", column.ty)))?;
            let DataType::List(item) = &dt else {
                return Err(EngineError(format!(
                    "HEADERS column {} is not an array",
                    column.name
                )));
            };
            let DataType::Struct(fields) = item.data_type() else {
                return Err(EngineError(format!(
                    "HEADERS column {} is not of structs",
                    column.name
                )));
            };
            let mut keys = StringBuilder::new();
            let mut values = BinaryBuilder::new();
            for (k, v) in headers.iter().flat_map(|h| h.iter()) {
                keys.append_value(k);
                values.append_option(v.as_deref());
            }
            let entries = StructArray::try_new(
                fields.clone(),
                vec![Arc::new(keys.finish()), Arc::new(values.finish())],
                None,
            )?;
            let offsets = OffsetBuffer::from_lengths(headers.iter().map(|h| h.len()));
            Ok(Arc::new(ListArray::try_new(
                item.clone(),
                offsets,
                Arc::new(entries),
                None,
            )?))
        }
    }
}
