//! The JSON hot path: objects whose columns are all scalars (BOOLEAN, INT, BIGINT, DOUBLE,
//! STRING, DATE, TIME, TIMESTAMP) are read in one pass straight from the record's bytes —
//! keys matched to columns without allocating, unescaped strings borrowed, values appended
//! to the Arrow builders — instead of building a `serde_json::Value` tree per record.
//! Anything this path does not handle exactly as `json.rs` does (a coercion from text, a
//! float into an integer column, a key that two fields match, a parse error) sends that
//! one record down the general path, so both paths always agree.

use std::borrow::Cow;
use std::fmt;

use datafusion::arrow::array::*;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use sluice_sql::SqlType;

use super::json::{Column, Typed, append, builder, cannot, convert, field};
use super::{FormatError, RecordErrors};

/// Whether the fast path reads columns of this type.
pub(super) fn supports(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::Boolean
            | SqlType::Int
            | SqlType::Bigint
            | SqlType::Double
            | SqlType::String
            | SqlType::Date
            | SqlType::Time
            | SqlType::Timestamp
    )
}

/// One field's value as read, before it is checked against its column's type.
#[derive(Debug, Clone, PartialEq)]
enum Slot<'a> {
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

/// The record needs the general path.
struct Fallback;

/// Decodes wrapped JSON objects of scalar columns. Same contract as `json::decode_columns`.
pub(super) fn decode_objects(
    columns: &[Column],
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    decode_objects_skipping(columns, &[], payloads)
}

/// `decode_objects`, leaving the columns marked in `unread` unread (all null).
pub(super) fn decode_objects_skipping(
    columns: &[Column],
    unread: &[bool],
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    let mut builders = columns
        .iter()
        .map(|c| builder(&c.ty, payloads.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut errors = Vec::new();
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(columns.len());
    // Records of a topic usually list their fields in the same order: remember which column
    // the n-th key matched last time and try that first. Only safe when no two column names
    // differ by case alone (then a case-insensitive match is the only match).
    let ambiguous = columns.iter().enumerate().any(|(i, a)| {
        columns[i + 1..]
            .iter()
            .any(|b| a.name.eq_ignore_ascii_case(&b.name))
    });
    let mut hints: Vec<Option<usize>> = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let Some(bytes) = p else {
            for (b, c) in builders.iter_mut().zip(columns) {
                append(b.as_mut(), &c.ty, Typed::Null);
            }
            continue;
        };
        slots.clear();
        slots.resize(columns.len(), Slot::Missing);
        let hints = (!ambiguous).then_some(&mut hints);
        let fast = read_object(bytes, columns, unread, hints, &mut slots).and_then(|()| {
            // Check every slot converts before appending any, so a row is all or nothing.
            let ok = columns.iter().zip(&slots).all(|(c, s)| fits(&c.ty, s));
            if ok { Ok(()) } else { Err(Fallback) }
        });
        match fast {
            Ok(()) => {
                for ((b, c), s) in builders.iter_mut().zip(columns).zip(slots.drain(..)) {
                    append_slot(b.as_mut(), &c.ty, s);
                }
            }
            Err(Fallback) => {
                let typed = general(columns, bytes).unwrap_or_else(|why| {
                    errors.push((i, FormatError::Deserialization(why)));
                    vec![Typed::Null; columns.len()]
                });
                for ((b, c), v) in builders.iter_mut().zip(columns).zip(typed) {
                    append(b.as_mut(), &c.ty, v);
                }
            }
        }
    }
    Ok((builders.iter_mut().map(|b| b.finish()).collect(), errors))
}

/// The general path for one record (as `json::decode_columns` reads it).
fn general(columns: &[Column], bytes: &[u8]) -> Result<Vec<Typed>, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("Failed to deserialize JSON: {e}"))?;
    match &v {
        Value::Null => Ok(vec![Typed::Null; columns.len()]),
        Value::Object(m) => columns
            .iter()
            .map(|c| field(m, &c.name).map_or(Ok(Typed::Null), |x| convert(&c.ty, x)))
            .collect(),
        other => Err(cannot(other, "STRUCT")),
    }
}

/// Whether a slot is a value of the column's type without any coercion.
fn fits(ty: &SqlType, s: &Slot<'_>) -> bool {
    matches!(
        (ty, s),
        (_, Slot::Missing | Slot::Null)
            | (SqlType::Boolean, Slot::Bool(_))
            | (
                SqlType::Int | SqlType::Bigint | SqlType::Date | SqlType::Time | SqlType::Timestamp,
                Slot::Int(_)
            )
            | (SqlType::Double, Slot::Int(_) | Slot::Float(_))
            | (SqlType::String, Slot::Str(_))
    )
}

fn append_slot(b: &mut dyn ArrayBuilder, ty: &SqlType, s: Slot<'_>) {
    macro_rules! push {
        ($builder:ty, $val:expr) => {
            super::append_to!(b, $builder, $val)
        };
    }
    match (ty, s) {
        (SqlType::Boolean, Slot::Bool(x)) => push!(BooleanBuilder, Some(x)),
        (SqlType::Int, Slot::Int(x)) => push!(Int32Builder, Some(x as i32)),
        (SqlType::Date, Slot::Int(x)) => push!(Date32Builder, Some(x as i32)),
        (SqlType::Time, Slot::Int(x)) => push!(Time32MillisecondBuilder, Some(x as i32)),
        (SqlType::Bigint, Slot::Int(x)) => push!(Int64Builder, Some(x)),
        (SqlType::Timestamp, Slot::Int(x)) => push!(TimestampMillisecondBuilder, Some(x)),
        (SqlType::Double, Slot::Int(x)) => push!(Float64Builder, Some(x as f64)),
        (SqlType::Double, Slot::Float(x)) => push!(Float64Builder, Some(x)),
        (SqlType::String, Slot::Str(x)) => push!(StringBuilder, Some(x.as_ref())),
        (ty, _) => append(b, ty, Typed::Null),
    }
}

/// Reads one top-level object into `slots` (one per column).
fn read_object<'a>(
    bytes: &'a [u8],
    columns: &[Column],
    unread: &[bool],
    hints: Option<&mut Vec<Option<usize>>>,
    slots: &mut [Slot<'a>],
) -> Result<(), Fallback> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(ObjectVisitor {
        columns,
        unread,
        hints,
        slots,
    })
    .map_err(|_| Fallback)?;
    de.end().map_err(|_| Fallback)
}

struct ObjectVisitor<'s, 'a> {
    columns: &'s [Column],
    unread: &'s [bool],
    hints: Option<&'s mut Vec<Option<usize>>>,
    slots: &'s mut [Slot<'a>],
}

impl<'de: 'a, 'a> Visitor<'de> for ObjectVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut ordinal = 0;
        loop {
            let hint = self
                .hints
                .as_ref()
                .and_then(|h| h.get(ordinal).copied().flatten());
            let Some(column) = map.next_key_seed(KeySeed {
                columns: self.columns,
                hint,
            })?
            else {
                break;
            };
            if let Some(h) = self.hints.as_mut() {
                if h.len() <= ordinal {
                    h.resize(ordinal + 1, None);
                }
                h[ordinal] = column;
            }
            ordinal += 1;
            match column {
                Some(i) if self.unread.get(i).copied().unwrap_or(false) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(i) => {
                    if self.slots[i] != Slot::Missing {
                        // Two fields for one column: the general path knows which wins.
                        return Err(de::Error::custom("duplicate"));
                    }
                    self.slots[i] = map.next_value_seed(ValueSeed)?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Matches a key to a column (exactly or ignoring case) without allocating; `hint` is the
/// column to try first.
struct KeySeed<'s> {
    columns: &'s [Column],
    hint: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if let Some(h) = self.hint
            && self
                .columns
                .get(h)
                .is_some_and(|c| c.name.eq_ignore_ascii_case(key))
        {
            return Ok(Some(h));
        }
        Ok(self.columns.iter().position(|c| c.name == key).or_else(|| {
            self.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(key))
        }))
    }
}

/// Reads a scalar value; arrays and objects send the record down the general path.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Slot<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Slot<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Slot<'de>, E> {
        Ok(Slot::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Slot<'de>, E> {
        Ok(Slot::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Slot<'de>, E> {
        i64::try_from(v)
            .map(Slot::Int)
            .map_err(|_| E::custom("out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Slot<'de>, E> {
        Ok(Slot::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Slot<'de>, E> {
        Ok(Slot::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Slot<'de>, E> {
        Ok(Slot::Str(Cow::Owned(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: SqlType) -> Column {
        Column {
            name: name.into(),
            ty,
        }
    }

    /// The fast path and the general path agree on every input, tricky ones included.
    #[test]
    fn agrees_with_the_general_path() {
        let columns = vec![
            col("ID", SqlType::Bigint),
            col("NAME", SqlType::String),
            col("PRICE", SqlType::Double),
            col("OK", SqlType::Boolean),
            col("N", SqlType::Int),
            col("TS", SqlType::Timestamp),
        ];
        let inputs: Vec<Option<&[u8]>> = vec![
            Some(br#"{"id":1,"name":"a","price":2.5,"ok":true,"n":3,"ts":17}"#),
            Some(br#"{"ID":2,"NAME":"esc\"aped\u00e9","PRICE":2,"OK":false}"#),
            Some(br#"{"id":"12","name":5,"price":"1.5","ok":"true","n":1.9}"#),
            Some(br#"{"id":1,"Id":2}"#),
            Some(br#"{"id":1,"id":2}"#),
            Some(br#"{"extra":{"deep":[1,2,{"x":null}]},"name":null}"#),
            Some(br#"{"name":["list"],"id":[1]}"#),
            Some(br#"not json"#),
            Some(br#"[1,2]"#),
            Some(br#"null"#),
            Some(b""),
            Some(br#"{"id":18446744073709551615}"#),
            Some(br#"{"id":1} trailing"#),
            None,
            Some(br#"{}"#),
        ];
        let fast = decode_objects(&columns, &inputs).unwrap();
        let general = super::super::json::decode_general(&columns, true, &inputs).unwrap();
        assert_eq!(
            fast.1, general.1,
            "the same records fail, for the same reasons"
        );
        for (a, b) in fast.0.iter().zip(&general.0) {
            assert_eq!(a.to_data(), b.to_data());
        }
        assert!(!fast.1.is_empty());

        // Skipping the unread STRING column changes nothing else: the same records fail
        // and every other column is the same (the skipped one is null where the fast path
        // read the record, and whatever the general path made of it elsewhere).
        let unread = [false, true, false, false, false, false];
        let skipping = decode_objects_skipping(&columns, &unread, &inputs).unwrap();
        assert_eq!(skipping.1, general.1);
        for (i, (a, b)) in skipping.0.iter().zip(&general.0).enumerate() {
            if !unread[i] {
                assert_eq!(a.to_data(), b.to_data());
            }
        }
    }
}
