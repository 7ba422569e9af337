//! Serialization formats: bytes of a record's key or value <-> Arrow columns. One module per
//! format. A value that does not decode is an error for that record only; the caller skips
//! the record into the processing log.

/// Appends `Some(value)` or a null to a `&mut dyn ArrayBuilder` known to be `$builder`
/// (the builder was made for the column's Arrow type, so the downcast cannot fail).
macro_rules! append_to {
    ($b:expr, $builder:ty, $val:expr) => {{
        let b = $b
            .as_any_mut()
            .downcast_mut::<$builder>()
            .expect("builder made for this type");
        match $val {
            Some(x) => b.append_value(x),
            None => b.append_null(),
        }
    }};
}
pub(crate) use append_to;

/// The next value of a xorshift sequence the caller seeds: the pseudo-random inputs the
/// format tests sweep, the same on every run.
#[cfg(test)]
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

pub mod delimited;
mod digits;
pub mod json;
mod json_columns;
mod json_fast;
pub mod kafka;

use sluice_sql::SqlType;

/// Records of a batch that did not decode: their index in the batch and why.
pub type RecordErrors = Vec<(usize, FormatError)>;

use crate::schema::type_kind_name;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format cannot carry the type at all (a statement error, caught at planning).
    #[error("The '{format}' format does not support type '{kind}'")]
    UnsupportedType {
        format: &'static str,
        kind: &'static str,
    },
    /// One record's bytes do not decode.
    #[error("{0}")]
    Deserialization(String),
}

impl FormatError {
    pub fn unsupported(format: &'static str, ty: &SqlType) -> Self {
        FormatError::UnsupportedType {
            format,
            kind: type_kind_name(ty),
        }
    }
}
