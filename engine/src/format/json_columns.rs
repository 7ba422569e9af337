//! The columns the fast JSON reader (`json_fast`) writes a batch's values into: plain typed
//! vectors, so a value is checked against its column and stored in one step, that can take
//! back a record read part-way (its row then comes from the general reader), and that
//! become Arrow arrays without another copy.

use std::sync::Arc;

use datafusion::arrow::array::*;
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    Date32Type, Int32Type, Int64Type, Time32MillisecondType, TimestampMillisecondType,
};
use sluice_sql::SqlType;

use super::json::Typed;
use super::json_fast::Slot;

/// One column's values so far.
pub(super) struct ColumnValues {
    ty: SqlType,
    values: Values,
    /// Which rows are not null (allocated only once a null comes).
    valid: NullBufferBuilder,
}

/// The value that does not fit its column: the record needs the general reader.
pub(super) struct Mismatch;

enum Values {
    /// A column nobody reads: nothing is kept (it comes out all null).
    Unread,
    /// INT, DATE, TIME.
    I32(Vec<i32>),
    /// BIGINT, TIMESTAMP.
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(BooleanBufferBuilder),
    /// Each string's end in `bytes` (after a leading 0).
    Str {
        ends: Vec<i32>,
        bytes: Vec<u8>,
    },
}

impl ColumnValues {
    /// A column of `ty` (one of the types `json_fast::supports`) with room for `rows`
    /// values, and for `text_bytes` of string bytes (one allocation instead of a dozen
    /// doublings, each a copy; what is left over is given back in `finish`); `None` for a
    /// type it does not hold.
    pub(super) fn new(
        ty: &SqlType,
        rows: usize,
        unread: bool,
        text_bytes: usize,
    ) -> Option<ColumnValues> {
        let values = match ty {
            _ if unread => Values::Unread,
            SqlType::Int | SqlType::Date | SqlType::Time => Values::I32(Vec::with_capacity(rows)),
            SqlType::Bigint | SqlType::Timestamp => Values::I64(Vec::with_capacity(rows)),
            SqlType::Double => Values::F64(Vec::with_capacity(rows)),
            SqlType::Boolean => Values::Bool(BooleanBufferBuilder::new(rows)),
            SqlType::String => {
                let mut ends = Vec::with_capacity(rows + 1);
                ends.push(0);
                Values::Str {
                    ends,
                    bytes: Vec::with_capacity(text_bytes),
                }
            }
            _ => return None,
        };
        Some(ColumnValues {
            ty: ty.clone(),
            values,
            valid: NullBufferBuilder::new(rows),
        })
    }

    /// How many values the column holds (0 for an unread one).
    pub(super) fn len(&self) -> usize {
        match &self.values {
            Values::Unread => 0,
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Str { ends, .. } => ends.len() - 1,
        }
    }

    /// Appends a value as the fast reader read it, if it is one of the column's type
    /// without any coercion (`null` is null).
    #[inline(always)]
    pub(super) fn put(&mut self, slot: Slot<'_>) -> Result<(), Mismatch> {
        match slot {
            Slot::Null => {
                self.push_null();
                return Ok(());
            }
            Slot::Int(x) => return self.put_int(x),
            Slot::Str(s) => return self.put_str(&s),
            Slot::Float(x) => match &mut self.values {
                Values::F64(v) => v.push(x),
                Values::Unread => return Ok(()),
                _ => return Err(Mismatch),
            },
            Slot::Bool(x) => match &mut self.values {
                Values::Bool(v) => v.append(x),
                Values::Unread => return Ok(()),
                _ => return Err(Mismatch),
            },
        }
        self.valid.append_non_null();
        Ok(())
    }

    /// Appends an integer (`put` of `Slot::Int`).
    #[inline(always)]
    pub(super) fn put_int(&mut self, x: i64) -> Result<(), Mismatch> {
        match &mut self.values {
            // As the general reader, an integer out of INT's range wraps.
            Values::I32(v) => v.push(x as i32),
            Values::I64(v) => v.push(x),
            Values::F64(v) => v.push(x as f64),
            Values::Unread => return Ok(()),
            Values::Bool(_) | Values::Str { .. } => return Err(Mismatch),
        }
        self.valid.append_non_null();
        Ok(())
    }

    /// Appends a string (`put` of `Slot::Str`).
    #[inline(always)]
    pub(super) fn put_str(&mut self, s: &str) -> Result<(), Mismatch> {
        match &mut self.values {
            Values::Str { ends, bytes } => push_str(ends, bytes, s)?,
            Values::Unread => return Ok(()),
            _ => return Err(Mismatch),
        }
        self.valid.append_non_null();
        Ok(())
    }

    /// Appends a value the general reader converted to the column's type (anything else
    /// is null, as `json::append` has it).
    pub(super) fn put_typed(&mut self, v: Typed) {
        match (&mut self.values, v) {
            (Values::Unread, _) => return,
            (Values::I32(values), Typed::I32(x)) => values.push(x),
            (Values::I64(values), Typed::I64(x)) => values.push(x),
            (Values::F64(values), Typed::F64(x)) => values.push(x),
            (Values::Bool(values), Typed::Bool(x)) => values.append(x),
            (Values::Str { ends, bytes }, Typed::Str(s)) => {
                if push_str(ends, bytes, &s).is_err() {
                    return self.push_null();
                }
            }
            _ => return self.push_null(),
        }
        self.valid.append_non_null();
    }

    pub(super) fn push_null(&mut self) {
        match &mut self.values {
            Values::Unread => return,
            Values::I32(v) => v.push(0),
            Values::I64(v) => v.push(0),
            Values::F64(v) => v.push(0.0),
            Values::Bool(v) => v.append(false),
            Values::Str { ends, bytes } => ends.push(bytes.len() as i32),
        }
        self.valid.append_null();
    }

    /// Takes back every value past the first `len`.
    pub(super) fn truncate(&mut self, len: usize) {
        match &mut self.values {
            Values::Unread => {}
            Values::I32(v) => v.truncate(len),
            Values::I64(v) => v.truncate(len),
            Values::F64(v) => v.truncate(len),
            Values::Bool(v) => v.truncate(len),
            Values::Str { ends, bytes } => {
                ends.truncate(len + 1);
                bytes.truncate(ends.last().map_or(0, |&e| e as usize));
            }
        }
        self.valid.truncate(len);
    }

    /// The column as an Arrow array of its type (`rows` nulls for an unread one).
    pub(super) fn finish(mut self, rows: usize) -> ArrayRef {
        let nulls = self.valid.finish();
        match self.values {
            Values::Unread => match crate::schema::arrow_type(&self.ty) {
                Some(dt) => new_null_array(&dt, rows),
                None => Arc::new(NullArray::new(rows)),
            },
            Values::I32(v) => {
                let v = ScalarBuffer::from(v);
                match self.ty {
                    SqlType::Date => Arc::new(PrimitiveArray::<Date32Type>::new(v, nulls)),
                    SqlType::Time => {
                        Arc::new(PrimitiveArray::<Time32MillisecondType>::new(v, nulls))
                    }
                    _ => Arc::new(PrimitiveArray::<Int32Type>::new(v, nulls)),
                }
            }
            Values::I64(v) => {
                let v = ScalarBuffer::from(v);
                match self.ty {
                    SqlType::Timestamp => {
                        Arc::new(PrimitiveArray::<TimestampMillisecondType>::new(v, nulls))
                    }
                    _ => Arc::new(PrimitiveArray::<Int64Type>::new(v, nulls)),
                }
            }
            Values::F64(v) => Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls)),
            Values::Bool(mut v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Str { ends, mut bytes } => {
                // In place: the allocator keeps the block and frees its tail.
                bytes.shrink_to_fit();
                let offsets = OffsetBuffer::new(ScalarBuffer::from(ends));
                // SAFETY: every value appended was a `&str` (valid UTF-8) and `ends` holds
                // each one's end: the offsets start at 0, never decrease, end at the
                // bytes' length and fall on the boundaries between whole strings.
                Arc::new(unsafe {
                    StringArray::new_unchecked(offsets, Buffer::from_vec(bytes), nulls)
                })
            }
        }
    }
}

/// Appends a string's bytes and its end, unless its end would pass the 2 GiB an Arrow
/// string column can index.
fn push_str(ends: &mut Vec<i32>, bytes: &mut Vec<u8>, s: &str) -> Result<(), Mismatch> {
    let end = i32::try_from(bytes.len() + s.len()).map_err(|_| Mismatch)?;
    bytes.extend_from_slice(s.as_bytes());
    ends.push(end);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::arrow_type;

    /// Each type comes out as its Arrow type with its values and nulls; a row taken back
    /// leaves no trace, in values or in nulls.
    #[test]
    fn columns_take_back_rows_and_finish_as_their_types() {
        let types = [
            (SqlType::Int, Slot::Int(-7)),
            (SqlType::Date, Slot::Int(19000)),
            (SqlType::Time, Slot::Int(3_600_000)),
            (SqlType::Bigint, Slot::Int(1 << 40)),
            (SqlType::Timestamp, Slot::Int(1_700_000_000_000)),
            (SqlType::Double, Slot::Float(2.5)),
            (SqlType::Boolean, Slot::Bool(true)),
            (SqlType::String, Slot::Str("é".into())),
        ];
        for (ty, value) in types {
            let mut c = ColumnValues::new(&ty, 4, false, 0).unwrap();
            assert!(c.put(value.clone()).is_ok());
            c.push_null();
            // A third row, written and taken back.
            assert!(c.put(value.clone()).is_ok());
            c.truncate(2);
            assert_eq!(c.len(), 2);
            c.put_typed(Typed::Null);
            assert!(c.put(value.clone()).is_ok());
            let a = c.finish(4);
            assert_eq!(Some(a.data_type().clone()), arrow_type(&ty), "{ty}");
            assert_eq!(a.len(), 4);
            let nulls: Vec<bool> = (0..4).map(|r| a.is_null(r)).collect();
            assert_eq!(nulls, [false, true, true, false], "{ty}");
        }
        // A value of another type is refused, and writes nothing.
        let mut c = ColumnValues::new(&SqlType::Bigint, 1, false, 0).unwrap();
        assert!(c.put(Slot::Str("1".into())).is_err());
        assert!(c.put(Slot::Float(1.0)).is_err());
        assert_eq!(c.len(), 0);
        // Strings taken back leave their bytes behind too.
        let mut s = ColumnValues::new(&SqlType::String, 2, false, 0).unwrap();
        assert!(s.put(Slot::Str("ab".into())).is_ok());
        assert!(s.put(Slot::Str("cd".into())).is_ok());
        s.truncate(1);
        assert!(s.put(Slot::Str("e".into())).is_ok());
        let a = s.finish(2);
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((a.value(0), a.value(1)), ("ab", "e"));
        // An unread column is all null, however many rows.
        let u = ColumnValues::new(&SqlType::Bigint, 3, true, 0).unwrap();
        let a = u.finish(3);
        assert_eq!((a.len(), a.null_count()), (3, 3));
    }
}
