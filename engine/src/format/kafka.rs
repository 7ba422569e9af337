//! The `KAFKA` format: a single column serialized as Kafka's own primitive serializers do —
//! INT as 4 big-endian bytes (IntegerSerializer), BIGINT as 8 (LongSerializer), DOUBLE as 8
//! big-endian IEEE-754 bytes (DoubleSerializer), STRING as UTF-8 (StringSerializer), BYTES
//! as they are. Other types are not supported, with ksqlDB's message. A null value is a
//! missing (null) payload.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Float64Array, Float64Builder, Int32Array,
    Int32Builder, Int64Array, Int64Builder, StringArray, StringBuilder,
};
use sluice_sql::SqlType;

use super::{FormatError, RecordErrors};

const NAME: &str = "KAFKA";

/// Checks that the KAFKA format can carry `ty`.
pub fn check_type(ty: &SqlType) -> Result<(), FormatError> {
    match ty {
        SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::String | SqlType::Bytes => {
            Ok(())
        }
        other => Err(FormatError::unsupported(NAME, other)),
    }
}

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], FormatError> {
    bytes.try_into().map_err(|_| {
        FormatError::Deserialization(format!(
            "Size of data received by {what}Deserializer is not {N}"
        ))
    })
}

/// Decodes one column from the payloads of a batch of records. Per-record errors come back
/// beside the column (that row is null in it) so one bad record never fails the batch.
pub fn decode_column(
    ty: &SqlType,
    payloads: &[Option<&[u8]>],
) -> Result<(ArrayRef, RecordErrors), FormatError> {
    check_type(ty)?;
    let mut errors = Vec::new();
    let array: ArrayRef = match ty {
        SqlType::Int => {
            let mut b = Int32Builder::with_capacity(payloads.len());
            for (i, p) in payloads.iter().enumerate() {
                match p.map(|p| fixed::<4>(p, "Integer")) {
                    None => b.append_null(),
                    Some(Ok(v)) => b.append_value(i32::from_be_bytes(v)),
                    Some(Err(e)) => {
                        errors.push((i, e));
                        b.append_null();
                    }
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Bigint => {
            let mut b = Int64Builder::with_capacity(payloads.len());
            for (i, p) in payloads.iter().enumerate() {
                match p.map(|p| fixed::<8>(p, "Long")) {
                    None => b.append_null(),
                    Some(Ok(v)) => b.append_value(i64::from_be_bytes(v)),
                    Some(Err(e)) => {
                        errors.push((i, e));
                        b.append_null();
                    }
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Double => {
            let mut b = Float64Builder::with_capacity(payloads.len());
            for (i, p) in payloads.iter().enumerate() {
                match p.map(|p| fixed::<8>(p, "Double")) {
                    None => b.append_null(),
                    Some(Ok(v)) => b.append_value(f64::from_be_bytes(v)),
                    Some(Err(e)) => {
                        errors.push((i, e));
                        b.append_null();
                    }
                }
            }
            Arc::new(b.finish())
        }
        SqlType::String => {
            let mut b = StringBuilder::with_capacity(payloads.len(), payloads.len() * 16);
            for (i, p) in payloads.iter().enumerate() {
                match p.map(std::str::from_utf8) {
                    None => b.append_null(),
                    Some(Ok(s)) => b.append_value(s),
                    Some(Err(e)) => {
                        errors.push((
                            i,
                            FormatError::Deserialization(format!("invalid UTF-8: {e}")),
                        ));
                        b.append_null();
                    }
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = BinaryBuilder::with_capacity(payloads.len(), payloads.len() * 16);
            for p in payloads {
                match p {
                    None => b.append_null(),
                    Some(p) => b.append_value(p),
                }
            }
            Arc::new(b.finish())
        }
    };
    Ok((array, errors))
}

/// Encodes row `row` of `array` (of the Arrow type of `ty`); `None` for null.
pub fn encode_value(
    ty: &SqlType,
    array: &dyn Array,
    row: usize,
) -> Result<Option<Vec<u8>>, FormatError> {
    let mut out = Vec::new();
    Ok(encode_value_into(ty, array, row, &mut out)?.then_some(out))
}

/// `encode_value` appending to `out`; false for null (nothing written).
pub fn encode_value_into(
    ty: &SqlType,
    array: &dyn Array,
    row: usize,
    out: &mut Vec<u8>,
) -> Result<bool, FormatError> {
    check_type(ty)?;
    if array.is_null(row) {
        return Ok(false);
    }
    let any = array.as_any();
    let wrong = || FormatError::Deserialization(format!("column is not of type {ty}"));
    match ty {
        SqlType::Int => out.extend_from_slice(
            &any.downcast_ref::<Int32Array>()
                .ok_or_else(wrong)?
                .value(row)
                .to_be_bytes(),
        ),
        SqlType::Bigint => out.extend_from_slice(
            &any.downcast_ref::<Int64Array>()
                .ok_or_else(wrong)?
                .value(row)
                .to_be_bytes(),
        ),
        SqlType::Double => out.extend_from_slice(
            &any.downcast_ref::<Float64Array>()
                .ok_or_else(wrong)?
                .value(row)
                .to_be_bytes(),
        ),
        SqlType::String => out.extend_from_slice(
            any.downcast_ref::<StringArray>()
                .ok_or_else(wrong)?
                .value(row)
                .as_bytes(),
        ),
        _ => out.extend_from_slice(
            any.downcast_ref::<BinaryArray>()
                .ok_or_else(wrong)?
                .value(row),
        ),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip_in_kafka_byte_order() {
        let cases: [(SqlType, Vec<u8>); 5] = [
            (SqlType::Int, 7i32.to_be_bytes().to_vec()),
            (SqlType::Bigint, (-2i64).to_be_bytes().to_vec()),
            (SqlType::Double, 2.5f64.to_be_bytes().to_vec()),
            (SqlType::String, b"foo".to_vec()),
            (SqlType::Bytes, vec![0, 255]),
        ];
        for (ty, bytes) in cases {
            let (col, errors) = decode_column(&ty, &[Some(&bytes), None]).unwrap();
            assert!(errors.is_empty());
            assert!(col.is_null(1));
            assert_eq!(encode_value(&ty, col.as_ref(), 0).unwrap(), Some(bytes));
            assert_eq!(encode_value(&ty, col.as_ref(), 1).unwrap(), None);
        }
    }

    #[test]
    fn bad_payloads_fail_only_their_row() {
        let (col, errors) = decode_column(
            &SqlType::Int,
            &[Some(&[0, 0, 0, 1]), Some(&[1, 2]), Some(&[0, 0, 0, 2])],
        )
        .unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        assert_eq!(
            errors[0].1.to_string(),
            "Size of data received by IntegerDeserializer is not 4"
        );
        let ints = col.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(
            (ints.value(0), ints.is_null(1), ints.value(2)),
            (1, true, 2)
        );
    }

    #[test]
    fn unsupported_types_use_ksqldbs_words() {
        let e = check_type(&SqlType::Array(Box::new(SqlType::Int))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The 'KAFKA' format does not support type 'ARRAY'"
        );
        assert!(check_type(&SqlType::Boolean).is_err());
    }
}
