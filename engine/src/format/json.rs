//! The `JSON` format as ksqlDB reads and writes it. Reading: a wrapped value is an object
//! whose fields match columns by name (exactly, else ignoring case); an unwrapped value
//! (`WRAP_SINGLE_VALUE=false`) is the single column itself. Values are coerced as ksqlDB's
//! JSON deserializer does: numbers from numeric text, any scalar or JSON text into STRING,
//! BYTES from base64, DECIMAL rescaled half-up, DATE/TIME/TIMESTAMP from numbers. Writing
//! produces fields in column order, doubles as Java prints them (`1.0`), decimals with
//! their scale.
//!
//! Each record is converted into a typed tree first and appended to the Arrow builders only
//! when the whole record converted, so a bad record fails alone and leaves no half row.

use base64::Engine;
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::DataType;
use serde_json::Value;
use sluice_sql::SqlType;

use super::{FormatError, RecordErrors, digits};
use crate::schema::arrow_type;

/// The writer appends to bytes (so it can write straight into a record batch's buffer),
/// text as `String` does.
trait TextOut {
    fn push_str(&mut self, s: &str);
}

impl TextOut for Vec<u8> {
    #[inline(always)]
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// A column the JSON format reads or writes.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
}

/// Checks at planning time that JSON can carry `ty` (map keys must be strings).
pub fn check_type(ty: &SqlType) -> Result<(), FormatError> {
    match ty {
        SqlType::Map(k, v) => {
            if **k != SqlType::String {
                return Err(FormatError::Deserialization(
                    "JSON only supports MAP types with STRING keys".into(),
                ));
            }
            check_type(v)
        }
        SqlType::Array(t) => check_type(t),
        SqlType::Struct(fs) => fs.iter().try_for_each(|(_, t)| check_type(t)),
        SqlType::Custom(_) => Err(FormatError::unsupported("JSON", ty)),
        _ => Ok(()),
    }
}

/// A JSON value already converted to a column's type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Typed {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F64(f64),
    Dec(i128),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Typed>),
    Map(Vec<(String, Typed)>),
    Struct(Vec<Typed>),
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NullNode",
        Value::Bool(_) => "BooleanNode",
        Value::Number(n) if n.is_f64() => "DoubleNode",
        Value::Number(_) => "IntNode",
        Value::String(_) => "TextNode",
        Value::Array(_) => "ArrayNode",
        Value::Object(_) => "ObjectNode",
    }
}

pub(super) fn cannot(v: &Value, target: &str) -> String {
    format!(
        "Can't convert type. sourceType: {}, requiredType: {target}",
        kind(v)
    )
}

fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
}

fn to_i64(v: &Value, target: &str) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| cannot(v, target)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("Can't coerce string to type. targetType: {target}")),
        _ => Err(cannot(v, target)),
    }
}

/// Parses decimal text into an unscaled integer at `scale`, rounding half up, and checks it
/// fits `precision` digits.
fn parse_decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (digits, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let all: String = format!("{int_part}{frac_part}");
    if !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // value = all * 10^(exp - frac_len); we want value * 10^scale.
    let shift = exp - frac_part.len() as i32 + i32::from(scale);
    let mut unscaled: i128 = 0;
    for b in all.bytes() {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    if shift >= 0 {
        unscaled = unscaled.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else {
        let div = 10i128.checked_pow((-shift) as u32)?;
        let (q, r) = (unscaled / div, unscaled % div);
        unscaled = if r * 2 >= div { q + 1 } else { q };
    }
    if unscaled >= 10i128.checked_pow(u32::from(precision))? {
        return None;
    }
    Some(if neg { -unscaled } else { unscaled })
}

/// Finds a field: the exact name first, then ignoring case.
pub(super) fn field<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(super) fn convert(ty: &SqlType, v: &Value) -> Result<Typed, String> {
    if v.is_null() {
        return Ok(Typed::Null);
    }
    Ok(match ty {
        SqlType::Boolean => match v {
            Value::Bool(b) => Typed::Bool(*b),
            Value::String(s) => Typed::Bool(s.trim().eq_ignore_ascii_case("true")),
            _ => return Err(cannot(v, "BOOLEAN")),
        },
        SqlType::Int => Typed::I32(to_i64(v, "INTEGER")? as i32),
        SqlType::Bigint => Typed::I64(to_i64(v, "BIGINT")?),
        SqlType::Double => match v {
            Value::Number(n) => Typed::F64(n.as_f64().ok_or_else(|| cannot(v, "DOUBLE"))?),
            Value::String(s) => Typed::F64(
                s.trim()
                    .parse()
                    .map_err(|_| "Can't coerce string to type. targetType: DOUBLE".to_string())?,
            ),
            _ => return Err(cannot(v, "DOUBLE")),
        },
        SqlType::Decimal { precision, scale } => {
            let text = number_text(v).ok_or_else(|| cannot(v, "DECIMAL"))?;
            Typed::Dec(parse_decimal(&text, *precision, *scale).ok_or_else(|| {
                format!("Cannot fit decimal '{text}' into DECIMAL({precision}, {scale})")
            })?)
        }
        SqlType::String => Typed::Str(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        SqlType::Bytes => match v {
            Value::String(s) => Typed::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("Value is not a valid base64 encoded string: {e}"))?,
            ),
            _ => return Err(cannot(v, "BYTES")),
        },
        SqlType::Date => Typed::I32(to_i64(v, "DATE")? as i32),
        SqlType::Time => Typed::I32(to_i64(v, "TIME")? as i32),
        SqlType::Timestamp => Typed::I64(to_i64(v, "TIMESTAMP")?),
        SqlType::Array(t) => match v {
            Value::Array(items) => Typed::List(
                items
                    .iter()
                    .map(|i| convert(t, i))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(cannot(v, "ARRAY")),
        },
        SqlType::Map(_, t) => match v {
            Value::Object(m) => Typed::Map(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), convert(t, x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(cannot(v, "MAP")),
        },
        SqlType::Struct(fields) => match v {
            Value::Object(m) => Typed::Struct(
                fields
                    .iter()
                    .map(|(n, t)| field(m, n).map_or(Ok(Typed::Null), |x| convert(t, x)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(cannot(v, "STRUCT")),
        },
        SqlType::Custom(n) => return Err(format!("unresolved type {n}")),
    })
}

/// Appends an already-converted value; the builder was made for the column's Arrow type.
pub(super) fn append(b: &mut dyn ArrayBuilder, ty: &SqlType, v: Typed) {
    macro_rules! prim {
        ($builder:ty, $val:expr) => {
            super::append_to!(b, $builder, $val)
        };
    }
    match ty {
        SqlType::Boolean => prim!(
            BooleanBuilder,
            if let Typed::Bool(x) = v {
                Some(x)
            } else {
                None
            }
        ),
        SqlType::Int => prim!(
            Int32Builder,
            if let Typed::I32(x) = v { Some(x) } else { None }
        ),
        SqlType::Bigint => prim!(
            Int64Builder,
            if let Typed::I64(x) = v { Some(x) } else { None }
        ),
        SqlType::Double => prim!(
            Float64Builder,
            if let Typed::F64(x) = v { Some(x) } else { None }
        ),
        SqlType::Decimal { .. } => prim!(
            Decimal128Builder,
            if let Typed::Dec(x) = v { Some(x) } else { None }
        ),
        SqlType::String => prim!(
            StringBuilder,
            if let Typed::Str(x) = v { Some(x) } else { None }
        ),
        SqlType::Bytes => prim!(
            BinaryBuilder,
            if let Typed::Bytes(x) = v {
                Some(x)
            } else {
                None
            }
        ),
        SqlType::Date => prim!(
            Date32Builder,
            if let Typed::I32(x) = v { Some(x) } else { None }
        ),
        SqlType::Time => prim!(
            Time32MillisecondBuilder,
            if let Typed::I32(x) = v { Some(x) } else { None }
        ),
        SqlType::Timestamp => prim!(
            TimestampMillisecondBuilder,
            if let Typed::I64(x) = v { Some(x) } else { None }
        ),
        SqlType::Array(t) => {
            let b = b
                .as_any_mut()
                .downcast_mut::<ListBuilder<Box<dyn ArrayBuilder>>>()
                .expect("list builder");
            match v {
                Typed::List(items) => {
                    for i in items {
                        append(b.values().as_mut(), t, i);
                    }
                    b.append(true);
                }
                _ => b.append(false),
            }
        }
        SqlType::Map(_, t) => {
            let b = b
                .as_any_mut()
                .downcast_mut::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>()
                .expect("map builder");
            match v {
                Typed::Map(entries) => {
                    for (k, x) in entries {
                        append(b.keys().as_mut(), &SqlType::String, Typed::Str(k));
                        append(b.values().as_mut(), t, x);
                    }
                    let _ = b.append(true);
                }
                _ => {
                    let _ = b.append(false);
                }
            }
        }
        SqlType::Struct(fields) => {
            let b = b
                .as_any_mut()
                .downcast_mut::<StructBuilder>()
                .expect("struct builder");
            let values = match v {
                Typed::Struct(vs) => Some(vs),
                _ => None,
            };
            for (i, (_, t)) in fields.iter().enumerate() {
                let x = values
                    .as_ref()
                    .and_then(|vs| vs.get(i).cloned())
                    .unwrap_or(Typed::Null);
                append(b.field_builders_mut()[i].as_mut(), t, x);
            }
            b.append(values.is_some());
        }
        SqlType::Custom(_) => {}
    }
}

pub(super) fn builder(ty: &SqlType, capacity: usize) -> Result<Box<dyn ArrayBuilder>, FormatError> {
    let dt: DataType = arrow_type(ty).ok_or_else(|| FormatError::unsupported("JSON", ty))?;
    Ok(make_builder(&dt, capacity))
}

/// Decodes a batch of payloads into one Arrow column per `columns` entry. `wrapped` says
/// whether a value is an object of fields (else it is the single column's value). Rows of
/// null payloads are all null. Records that do not decode come back with their index and
/// reason and are all null in the columns.
pub fn decode_columns(
    columns: &[Column],
    wrapped: bool,
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    if !wrapped && columns.len() != 1 {
        return Err(FormatError::Deserialization(
            "an unwrapped JSON value needs exactly one column".into(),
        ));
    }
    for c in columns {
        check_type(&c.ty)?;
    }
    if wrapped && columns.iter().all(|c| super::json_fast::supports(&c.ty)) {
        return super::json_fast::decode_objects(columns, payloads);
    }
    decode_general(columns, wrapped, payloads)
}

/// Like `decode_columns` for wrapped values, but columns marked in `unread` are not read
/// (they come back all null); only STRING columns may be marked (see `Serde::skip_unread`).
pub fn decode_columns_skipping(
    columns: &[Column],
    unread: &[bool],
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    for c in columns {
        check_type(&c.ty)?;
    }
    if columns.iter().all(|c| super::json_fast::supports(&c.ty)) {
        return super::json_fast::decode_objects_skipping(columns, unread, payloads);
    }
    decode_general(columns, true, payloads)
}

/// The general path: each record parsed into a `serde_json::Value` tree, then converted.
pub(super) fn decode_general(
    columns: &[Column],
    wrapped: bool,
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    let parsed: Vec<Result<Option<Value>, String>> = payloads
        .iter()
        .map(|p| match p {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice::<Value>(bytes)
                .map(Some)
                .map_err(|e| format!("Failed to deserialize JSON: {e}")),
        })
        .collect();
    let rows = parsed.iter().map(|r| match r {
        Err(e) => Err(e.clone()),
        Ok(None) | Ok(Some(Value::Null)) => Ok(None),
        Ok(Some(v)) if !wrapped => Ok(Some(vec![Some(v)])),
        Ok(Some(Value::Object(m))) => Ok(Some(columns.iter().map(|c| field(m, &c.name)).collect())),
        Ok(Some(other)) => Err(cannot(other, "STRUCT")),
    });
    build_columns(columns, rows, payloads.len())
}

/// Builds one Arrow column per entry of `columns` from rows of JSON values (`None` for a
/// record without a value, a missing field as `None`); rows that do not convert come back
/// as errors and are all null. Shared by the JSON and DELIMITED formats.
pub(crate) fn build_columns<'v>(
    columns: &[Column],
    rows: impl Iterator<Item = Result<Option<Vec<Option<&'v Value>>>, String>>,
    capacity: usize,
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    let mut builders = columns
        .iter()
        .map(|c| builder(&c.ty, capacity))
        .collect::<Result<Vec<_>, _>>()?;
    let mut errors = Vec::new();
    for (i, row) in rows.enumerate() {
        let typed: Result<Vec<Typed>, String> = row.and_then(|r| match r {
            None => Ok(vec![Typed::Null; columns.len()]),
            Some(values) => columns
                .iter()
                .zip(values)
                .map(|(c, v)| v.map_or(Ok(Typed::Null), |x| convert(&c.ty, x)))
                .collect(),
        });
        let typed = typed.unwrap_or_else(|why| {
            errors.push((i, FormatError::Deserialization(why)));
            vec![Typed::Null; columns.len()]
        });
        for ((b, c), v) in builders.iter_mut().zip(columns).zip(typed) {
            append(b.as_mut(), &c.ty, v);
        }
    }
    Ok((builders.iter_mut().map(|b| b.finish()).collect(), errors))
}

/// Writes a double as Java's `Double.toString` does, which is how ksqlDB's JSON (Jackson)
/// and DELIMITED output print them: plain from 10^-3 up to 10^7 (`1.0`, `0.5`, `1234567.0`),
/// scientific outside it (`1.0E7`, `1.23456785E7`, `1.0E-4`, `4.9E-324`).
fn write_double(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        // Jackson (ksqlDB's JSON writer) writes non-finite doubles as strings.
        out.push_str("\"NaN\"");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if f != 0.0 && !(1e-3..1e7).contains(&f.abs()) {
        write_scientific(out, f);
    } else if f == f.trunc() {
        // An integer below 10^7 (or zero, keeping its sign): its digits and `.0`.
        if f.is_sign_negative() {
            out.push(b'-');
        }
        out.push_str(itoa::Buffer::new().format(f.abs() as u32));
        out.push_str(".0");
    } else {
        // Within [10^-3, 10^7) zmij writes plain notation (its exponent form starts past
        // 10^-5 and 10^15) and, for a value that is not integral, no `.0`: its text is
        // already Java's, without `write_shortest`'s checks.
        out.push_str(zmij::Buffer::new().format_finite(f));
    }
}

/// A finite, nonzero double in Java's scientific layout: its shortest digits (zmij's), one
/// before the point and at least one after, then `E` and the exponent. Where one digit
/// would do, Java takes the two-digit decimal nearest the double (`4.9E-324`, not
/// `5.0E-324`): `{:.1e}`, correctly rounded, gives that one.
fn write_scientific(out: &mut Vec<u8>, f: f64) {
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(f).as_bytes();
    if let Some((laid_out, len)) = scientific_from_plain(text) {
        out.extend_from_slice(&laid_out[..len]);
        return;
    }
    write_scientific_from(out, f, text);
}

/// Java's scientific layout read straight off zmij's plain notation of a double of at
/// least one (`66406144.16` → `6.640614416E7`): the common case (prices, sums and averages
/// from 10^7 up), without reading the digits into a `Shortest`. None for any other text:
/// below one, zmij's own exponent, or one significant digit (Java's two-digit rule).
fn scientific_from_plain(text: &[u8]) -> Option<([u8; 48], usize)> {
    let (negative, body) = match text.split_first() {
        Some((b'-', body)) => (true, body),
        _ => (false, text),
    };
    let point = body.iter().position(|&b| b == b'.')?;
    let (whole, fraction) = (&body[..point], &body[point + 1..]);
    let (&first, whole_rest) = whole.split_first()?;
    if !first.is_ascii_digit()
        || first == b'0'
        || fraction.is_empty()
        || !fraction.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    // zmij's digits are the shortest, so only an integral value has zeros at the end
    // (written `….0`); those zeros are not significant.
    let (rest, fraction) = match fraction {
        b"0" => {
            let significant = whole_rest
                .iter()
                .rposition(|&d| d != b'0')
                .map_or(0, |p| p + 1);
            (&whole_rest[..significant], &b""[..])
        }
        _ => (whole_rest, fraction),
    };
    if rest.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut laid_out = [0u8; 48];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let end = len + bytes.len();
        laid_out.get_mut(len..end).map(|slot| {
            slot.copy_from_slice(bytes);
            len = end;
        })
    };
    if negative {
        put(b"-")?;
    }
    put(&[first, b'.'])?;
    put(rest)?;
    put(fraction)?;
    put(b"E")?;
    put(itoa::Buffer::new().format(point - 1).as_bytes())?;
    Some((laid_out, len))
}

/// `write_scientific` by way of `Shortest`, for any text zmij writes.
fn write_scientific_from(out: &mut Vec<u8>, f: f64, text: &[u8]) {
    let Some(shortest) = Shortest::read(text) else {
        out.push_str(&format!("{f:E}"));
        return;
    };
    let (mut digits, mut exp10) = (shortest.digits(), shortest.point - 1);
    let two;
    if digits.len() == 1 {
        // Rare (a power of ten times one digit): core's formatter is fine here.
        let text = format!("{:.1e}", f.abs());
        if let Some((mantissa, exp)) = text.split_once('e')
            && let (Some(exp), [first, b'.', second]) = (exp.parse().ok(), mantissa.as_bytes())
        {
            two = [*first, *second];
            digits = &two;
            exp10 = exp;
        }
    }
    let Some((first, rest)) = digits.split_first() else {
        out.push_str(&format!("{f:E}"));
        return;
    };
    if shortest.negative {
        out.push(b'-');
    }
    out.push(*first);
    out.push(b'.');
    match rest {
        [] => out.push(b'0'),
        rest => out.extend_from_slice(rest),
    }
    out.push(b'E');
    out.extend_from_slice(itoa::Buffer::new().format(exp10).as_bytes());
}

/// A finite, nonzero double's shortest digits as zmij writes them (`-1.5e-7`, `1e+21`,
/// `0.0001234`, `100.0`), read back: the double is 0.DIGITS times ten to the `point`.
struct Shortest {
    negative: bool,
    all: [u8; 32],
    digits: std::ops::Range<usize>,
    point: i64,
}

impl Shortest {
    /// None for zero or a text zmij does not write.
    fn read(text: &[u8]) -> Option<Shortest> {
        // One pass over the text: its digits, how many came before the point, and the
        // exponent.
        let mut all = [0u8; 32];
        let (mut count, mut before_point, mut exp10) = (0, None, 0i64);
        let negative = text.first() == Some(&b'-');
        let mut i = usize::from(negative);
        while let Some(&b) = text.get(i) {
            match b {
                b'.' => before_point = Some(count),
                b'e' => {
                    let (sign, from) = match text.get(i + 1) {
                        Some(b'-') => (-1, i + 2),
                        Some(b'+') => (1, i + 2),
                        _ => (1, i + 1),
                    };
                    let exp = text
                        .get(from..)
                        .unwrap_or_default()
                        .iter()
                        .fold(0i64, |e, d| e * 10 + i64::from(d.wrapping_sub(b'0')));
                    exp10 = sign * exp;
                    break;
                }
                _ => {
                    if let Some(slot) = all.get_mut(count) {
                        *slot = b;
                    }
                    count += 1;
                }
            }
            i += 1;
        }
        let written = &all[..count.min(all.len())];
        let leading = written.iter().take_while(|&&d| d == b'0').count();
        let end = written
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(leading, |p| p + 1);
        if end <= leading || count > all.len() {
            return None;
        }
        Some(Shortest {
            negative,
            all,
            digits: leading..end,
            point: before_point.unwrap_or(count) as i64 - leading as i64 + exp10,
        })
    }

    fn digits(&self) -> &[u8] {
        &self.all[self.digits.clone()]
    }
}

fn write_decimal(out: &mut Vec<u8>, unscaled: i128, scale: i8) {
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    if neg {
        out.push(b'-');
    }
    if scale == 0 {
        out.push_str(&digits);
        return;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    out.push_str(int);
    out.push(b'.');
    out.push_str(frac);
}

/// Writes `s` as a JSON string, escaped exactly as serde_json escapes (short escapes for
/// the usual control characters, `\u00XX` for the others, everything else as is), without
/// an allocation. Inlined for the usual string, which needs no escape.
#[inline(always)]
fn write_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let plain = plain_run::<false>(bytes, 0);
    if plain == bytes.len() {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_escaped_string(out, s, plain);
    }
}

/// `write_string` of a string with something to escape at `first` (and none before).
#[inline(never)]
fn write_escaped_string(out: &mut Vec<u8>, s: &str, first: usize) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    let mut i = first;
    while i < bytes.len() {
        // Runs of bytes that need no escape, many at a time.
        i = plain_run::<false>(bytes, i);
        let Some(&b) = bytes.get(i) else { break };
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push_str(escape);
        }
        i += 1;
        plain = i;
    }
    out.push_str(&s[plain..]);
    out.push(b'"');
}

/// The first position from `at` on whose byte is a quote, a backslash, a control character
/// or, when `STOP_AT_NON_ASCII`, not ASCII (`bytes.len()` when there is none): what comes
/// before it is plain text, to copy or skip as it is. The JSON reader's string scanner
/// (which must see non-ASCII bytes, to check them as UTF-8) and the writer (which copies
/// them) both run on it. Sixteen bytes at a time with SSE2 (in every x86-64), then eight.
pub(super) fn plain_run<const STOP_AT_NON_ASCII: bool>(bytes: &[u8], mut at: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        while at + 16 <= bytes.len() {
            let mask = special16::<STOP_AT_NON_ASCII>(bytes, at);
            if mask != 0 {
                return at + mask.trailing_zeros() as usize;
            }
            at += 16;
        }
        // The last few bytes: the last sixteen again, less the ones already looked at.
        if at < bytes.len() && bytes.len() >= 16 {
            let from = bytes.len() - 16;
            let mask = special16::<STOP_AT_NON_ASCII>(bytes, from) >> (at - from);
            return match mask {
                0 => bytes.len(),
                m => at + m.trailing_zeros() as usize,
            };
        }
    }
    while let Some(Ok(chunk)) = bytes.get(at..at + 8).map(<[u8; 8]>::try_from) {
        let word = u64::from_le_bytes(chunk);
        if (STOP_AT_NON_ASCII && word & 0x8080_8080_8080_8080 != 0) || needs_escape(word) {
            break;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if matches!(b, b'"' | b'\\' | 0..=0x1f) || (STOP_AT_NON_ASCII && b >= 0x80) {
            return at;
        }
        at += 1;
    }
    at
}

/// Bit `i` set where byte `at + i` of `bytes` is special (as `plain_run` means it), for the
/// sixteen bytes from `at`, which must lie within `bytes`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special16<const STOP_AT_NON_ASCII: bool>(bytes: &[u8], at: usize) -> u32 {
    use std::arch::x86_64::*;
    assert!(at + 16 <= bytes.len());
    // SAFETY: the sixteen bytes from `at` lie within `bytes` (asserted just above) and the
    // load is unaligned; SSE2 is in the x86-64 baseline.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().add(at).cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let below_space = if STOP_AT_NON_ASCII {
            // Signed: bytes 0x80-0xff are negative, so this takes them in too.
            _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))
        } else {
            // Unsigned: v <= 0x1f exactly when max(v, 0x1f) is 0x1f.
            let control = _mm_set1_epi8(0x1f);
            _mm_cmpeq_epi8(_mm_max_epu8(v, control), control)
        };
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), below_space)) as u32
    }
}

/// Whether any of the eight bytes of `word` may need an escape: a quote, a backslash or a
/// control character (a false positive only sends the bytes through the byte-wise check).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    below_space
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

/// Row `row` of `array` (of `ty`'s Arrow type) as JSON text, appended to `out` (the REST
/// API's row columns).
pub fn value_json(
    out: &mut String,
    ty: &SqlType,
    array: &dyn Array,
    row: usize,
) -> Result<(), FormatError> {
    // SAFETY: the writer appends only whole `&str`s and ASCII bytes, so `out` stays valid
    // UTF-8 (also when it stops at an error part-way).
    write_value(unsafe { out.as_mut_vec() }, ty, array, row)
}

/// Writes row `row` of `array` (of `ty`'s Arrow type) as JSON text.
pub(crate) fn write_value(
    out: &mut Vec<u8>,
    ty: &SqlType,
    array: &dyn Array,
    row: usize,
) -> Result<(), FormatError> {
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    let any = array.as_any();
    let wrong = || FormatError::Deserialization(format!("column is not of type {ty}"));
    match ty {
        SqlType::Boolean => out.push_str(
            if any
                .downcast_ref::<BooleanArray>()
                .ok_or_else(wrong)?
                .value(row)
            {
                "true"
            } else {
                "false"
            },
        ),
        SqlType::Int => out.push_str(
            itoa::Buffer::new().format(
                any.downcast_ref::<Int32Array>()
                    .ok_or_else(wrong)?
                    .value(row),
            ),
        ),
        SqlType::Bigint => out.push_str(
            itoa::Buffer::new().format(
                any.downcast_ref::<Int64Array>()
                    .ok_or_else(wrong)?
                    .value(row),
            ),
        ),
        SqlType::Double => write_double(
            out,
            any.downcast_ref::<Float64Array>()
                .ok_or_else(wrong)?
                .value(row),
        ),
        SqlType::Decimal { scale, .. } => write_decimal(
            out,
            any.downcast_ref::<Decimal128Array>()
                .ok_or_else(wrong)?
                .value(row),
            *scale as i8,
        ),
        SqlType::String => write_string(
            out,
            any.downcast_ref::<StringArray>()
                .ok_or_else(wrong)?
                .value(row),
        ),
        SqlType::Bytes => write_string(
            out,
            &base64::engine::general_purpose::STANDARD.encode(
                any.downcast_ref::<BinaryArray>()
                    .ok_or_else(wrong)?
                    .value(row),
            ),
        ),
        SqlType::Date => out.push_str(
            &any.downcast_ref::<Date32Array>()
                .ok_or_else(wrong)?
                .value(row)
                .to_string(),
        ),
        SqlType::Time => out.push_str(
            &any.downcast_ref::<Time32MillisecondArray>()
                .ok_or_else(wrong)?
                .value(row)
                .to_string(),
        ),
        SqlType::Timestamp => out.push_str(
            &any.downcast_ref::<TimestampMillisecondArray>()
                .ok_or_else(wrong)?
                .value(row)
                .to_string(),
        ),
        SqlType::Array(t) => {
            let items = any
                .downcast_ref::<ListArray>()
                .ok_or_else(wrong)?
                .value(row);
            out.push(b'[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, t, items.as_ref(), i)?;
            }
            out.push(b']');
        }
        SqlType::Map(_, t) => {
            let entries = any.downcast_ref::<MapArray>().ok_or_else(wrong)?.value(row);
            let keys = entries
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(wrong)?;
            let values = entries.column(1);
            out.push(b'{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, keys.value(i));
                out.push(b':');
                write_value(out, t, values.as_ref(), i)?;
            }
            out.push(b'}');
        }
        SqlType::Struct(fields) => {
            let s = any.downcast_ref::<StructArray>().ok_or_else(wrong)?;
            out.push(b'{');
            for (i, (name, t)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, name);
                out.push(b':');
                write_value(out, t, s.column(i).as_ref(), row)?;
            }
            out.push(b'}');
        }
        SqlType::Custom(_) => return Err(FormatError::unsupported("JSON", ty)),
    }
    Ok(())
}

/// Encodes row `row` of `arrays` (one per column) as a JSON value: an object of the columns
/// in order when `wrapped`, else the single column's value.
pub fn encode_row(
    columns: &[Column],
    arrays: &[ArrayRef],
    wrapped: bool,
    row: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    encode_row_into(columns, arrays, wrapped, row, &mut out)?;
    Ok(out)
}

/// `encode_row` appending to `out` (a buffer a writer reuses between records).
pub fn encode_row_into(
    columns: &[Column],
    arrays: &[ArrayRef],
    wrapped: bool,
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    if !wrapped {
        let (c, a) = columns
            .first()
            .zip(arrays.first())
            .ok_or_else(|| FormatError::Deserialization("no column to write".into()))?;
        return write_value(out, &c.ty, a.as_ref(), row);
    }
    encode_object_into(columns, &object_keys(columns), arrays, row, out)
}

/// Each column's name as an object key with its colon (`"NAME":`), for `encode_object_into`.
pub fn object_keys(columns: &[Column]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let mut key = Vec::new();
            write_string(&mut key, &c.name);
            key.push(b':');
            // Lossless: the writer writes the name's UTF-8 and ASCII.
            String::from_utf8_lossy(&key).into_owned()
        })
        .collect()
}

/// `encode_row_into` for a wrapped row, the object keys written beforehand (`object_keys`
/// of `columns`).
pub fn encode_object_into(
    columns: &[Column],
    keys: &[String],
    arrays: &[ArrayRef],
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    out.push(b'{');
    for (i, ((c, key), a)) in columns.iter().zip(keys).zip(arrays).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push_str(key);
        write_value(out, &c.ty, a.as_ref(), row)?;
    }
    out.push(b'}');
    Ok(())
}

/// A column's array as a writer sees it, looked at once per batch rather than once per
/// row: the common scalar types typed (no downcast or type dispatch per value), anything
/// else written by `write_value`.
pub(crate) enum ColumnView<'a> {
    Bigint(&'a Int64Array),
    Int(&'a Int32Array),
    Double(&'a Float64Array),
    Boolean(&'a BooleanArray),
    String(&'a StringArray),
    Other(&'a SqlType, &'a dyn Array),
}

impl<'a> ColumnView<'a> {
    pub(crate) fn of(ty: &'a SqlType, array: &'a dyn Array) -> ColumnView<'a> {
        let any = array.as_any();
        let typed = match ty {
            SqlType::Bigint => any.downcast_ref().map(ColumnView::Bigint),
            SqlType::Int => any.downcast_ref().map(ColumnView::Int),
            SqlType::Double => any.downcast_ref().map(ColumnView::Double),
            SqlType::Boolean => any.downcast_ref().map(ColumnView::Boolean),
            SqlType::String => any.downcast_ref().map(ColumnView::String),
            _ => None,
        };
        // An array not of its column's type goes to `write_value`, which reports it.
        typed.unwrap_or(ColumnView::Other(ty, array))
    }

    /// Writes row `row`'s value, as `write_value` does.
    pub(crate) fn write(&self, out: &mut Vec<u8>, row: usize) -> Result<(), FormatError> {
        macro_rules! or_null {
            ($a:expr, $write:expr) => {
                if $a.is_null(row) {
                    out.push_str("null")
                } else {
                    $write
                }
            };
        }
        match self {
            ColumnView::Bigint(a) => {
                or_null!(a, digits::push_i64(out, a.value(row)))
            }
            ColumnView::Int(a) => or_null!(a, digits::push_i64(out, i64::from(a.value(row)))),
            ColumnView::Double(a) => or_null!(a, write_double(out, a.value(row))),
            ColumnView::Boolean(a) => {
                or_null!(a, out.push_str(if a.value(row) { "true" } else { "false" }))
            }
            ColumnView::String(a) => or_null!(a, write_string(out, a.value(row))),
            ColumnView::Other(ty, a) => return write_value(out, ty, *a, row),
        }
        Ok(())
    }
}

/// Each column's name as an object key with what comes before it: `{"A":` for the first,
/// `,"B":` for the others (an object of no columns is `{` and `}`), for
/// `encode_viewed_object_into`.
pub fn object_key_prefixes(columns: &[Column]) -> Vec<KeyPrefix> {
    object_keys(columns)
        .into_iter()
        .enumerate()
        .map(|(i, key)| KeyPrefix::new(format!("{}{key}", if i == 0 { '{' } else { ',' })))
        .collect()
}

/// The bytes written before a value of an object: kept padded to sixteen bytes too, so a
/// short one (most are) is written with one fixed-size copy instead of a call to `memcpy`.
#[derive(Debug, Clone)]
pub struct KeyPrefix {
    text: String,
    padded: Option<[u8; 16]>,
}

impl KeyPrefix {
    fn new(text: String) -> KeyPrefix {
        let padded = (text.len() <= 16).then(|| {
            let mut padded = [0u8; 16];
            padded[..text.len()].copy_from_slice(text.as_bytes());
            padded
        });
        KeyPrefix { text, padded }
    }

    #[inline(always)]
    fn push(&self, out: &mut Vec<u8>) {
        match &self.padded {
            Some(padded) => digits::push_prefix_of(out, padded, self.text.len()),
            None => out.push_str(&self.text),
        }
    }
}

/// `encode_object_into` over columns viewed once per batch (`ColumnView`), with keys from
/// `object_key_prefixes`.
pub(crate) fn encode_viewed_object_into(
    prefixes: &[KeyPrefix],
    views: &[ColumnView<'_>],
    row: usize,
    out: &mut Vec<u8>,
) -> Result<(), FormatError> {
    if views.is_empty() {
        out.push(b'{');
    }
    for (prefix, view) in prefixes.iter().zip(views) {
        prefix.push(out);
        view.write(out, row)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use sluice_sql::types::parse_type;

    /// Appends what `write` writes to `out`, checked to be UTF-8: the tests read the
    /// byte writers' output as text through these (same-named) wrappers.
    fn text_of<T>(out: &mut String, write: impl FnOnce(&mut Vec<u8>) -> T) -> T {
        let mut bytes = Vec::new();
        let result = write(&mut bytes);
        out.push_str(std::str::from_utf8(&bytes).expect("the writer writes UTF-8"));
        result
    }

    fn write_double(out: &mut String, f: f64) {
        text_of(out, |b| super::write_double(b, f))
    }

    fn write_string(out: &mut String, s: &str) {
        text_of(out, |b| super::write_string(b, s))
    }

    fn write_scientific(out: &mut String, f: f64) {
        text_of(out, |b| super::write_scientific(b, f))
    }

    fn write_scientific_from(out: &mut String, f: f64, text: &[u8]) {
        text_of(out, |b| super::write_scientific_from(b, f, text))
    }

    fn write_decimal(out: &mut String, unscaled: i128, scale: i8) {
        text_of(out, |b| super::write_decimal(b, unscaled, scale))
    }

    fn encode_object_into(
        columns: &[Column],
        keys: &[String],
        arrays: &[ArrayRef],
        row: usize,
        out: &mut String,
    ) -> Result<(), FormatError> {
        text_of(out, |b| {
            super::encode_object_into(columns, keys, arrays, row, b)
        })
    }

    fn encode_viewed_object_into(
        prefixes: &[KeyPrefix],
        views: &[ColumnView<'_>],
        row: usize,
        out: &mut String,
    ) -> Result<(), FormatError> {
        text_of(out, |b| {
            super::encode_viewed_object_into(prefixes, views, row, b)
        })
    }

    /// Writes a finite double as Rust's `{}` does: the shortest digits that read back as the
    /// same double, in plain decimal notation (`0.00000015`, `1000000000000000000000`).
    /// The digits are zmij's (serde_json's float writer), laid out here. (Where two shortest
    /// digit strings are equally close to the double, zmij takes the even last digit, as
    /// Java's `Double.toString` does; Rust's formatter may take the other.) Checked against
    /// Rust's formatter, it is the reference `write_double`'s plain range is checked against.
    fn write_shortest(out: &mut String, f: f64) {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format_finite(f);
        // Most values come out in plain notation already, and then exactly as Rust writes
        // them (unless integral: zmij writes `100.0`, Rust `100`).
        if !text.bytes().any(|b| b == b'e') && !text.ends_with(".0") {
            out.push_str(text);
            return;
        }
        let Some(shortest) = Shortest::read(text.as_bytes()) else {
            // Zero (written by the caller) or a text zmij does not write: core's formatter.
            let _ = write!(out, "{f}");
            return;
        };
        let (negative, digits, point) = (shortest.negative, shortest.digits(), shortest.point);
        // SAFETY: only ASCII bytes (zmij's digits, '-', '.', '0') are appended, so `out` stays
        // valid UTF-8.
        let out = unsafe { out.as_mut_vec() };
        if negative {
            out.push(b'-');
        }
        if point <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-point) as usize, b'0');
            out.extend_from_slice(digits);
        } else if (point as usize) < digits.len() {
            let (whole, part) = digits.split_at(point as usize);
            out.extend_from_slice(whole);
            out.push(b'.');
            out.extend_from_slice(part);
        } else {
            out.extend_from_slice(digits);
            out.resize(out.len() + point as usize - digits.len(), b'0');
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for text in [
            "plain",
            "a\"b\\c",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}\u{8}\u{c}",
            "héllo ☃",
            "",
        ] {
            let mut out = String::new();
            write_string(&mut out, text);
            assert_eq!(out, Value::String(text.to_string()).to_string(), "{text:?}");
        }
        // Each special character at every position of the runs the writer skips (sixteen
        // bytes at a time, then the last sixteen again, or eight and one for short text),
        // in text of every length up to 41, alone and after a first one.
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCDE";
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '☃'] {
            for len in 0..=plain.len() {
                for at in 0..=len {
                    for first in [None, Some(at / 2)] {
                        let mut text: String = plain[..len].into();
                        text.insert(at, special);
                        if let Some(first) = first {
                            text.insert(first, '"');
                        }
                        let mut out = String::new();
                        write_string(&mut out, &text);
                        assert_eq!(out, Value::String(text.clone()).to_string(), "{text:?}");
                    }
                }
            }
        }
    }

    fn ty(text: &str) -> SqlType {
        let dialect = sluice_sql::dialect::KsqlDialect;
        let mut p = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(text)
            .unwrap();
        parse_type(&mut p, &mut 0).unwrap()
    }

    fn col(name: &str, t: &str) -> Column {
        Column {
            name: name.into(),
            ty: ty(t),
        }
    }

    /// Doubles as Java's `Double.toString` prints them (JDK 19 and later, whose digits are
    /// the shortest): plain within [10^-3, 10^7), scientific outside it.
    #[test]
    fn doubles_are_laid_out_as_java_writes_them() {
        for (f, java) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (0.001, "0.001"),
            (9.99e-4, "9.99E-4"),
            (1.0e-4, "1.0E-4"),
            (1.234e-5, "1.234E-5"),
            (9999999.0, "9999999.0"),
            (-9999999.0, "-9999999.0"),
            (-3.0, "-3.0"),
            (1000000.0, "1000000.0"),
            (9999999.5, "9999999.5"),
            (1.0e7, "1.0E7"),
            (12345678.5, "1.23456785E7"),
            (123456789.0, "1.23456789E8"),
            (-1.5e10, "-1.5E10"),
            (1.0e21, "1.0E21"),
            (1.0e23, "1.0E23"),
            (2.0e-3, "0.002"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::MIN, "-1.7976931348623157E308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (4.9e-324, "4.9E-324"),
            (-4.9e-324, "-4.9E-324"),
            (1.0e-323, "9.9E-324"),
            // ksqlDB's tests print it 4.6116860184273879E18 (a JDK before 19, one digit more).
            (4.611686018427388e18, "4.611686018427388E18"),
            (3.074457345651058e12, "3.074457345651058E12"),
        ] {
            let mut out = String::new();
            write_double(&mut out, f);
            assert_eq!(out, java, "{f:e}");
        }
        // Every scientific one reads back as the same double.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            let f = f64::from_bits(crate::format::xorshift(&mut x));
            if f.is_finite() && f != 0.0 {
                let mut out = String::new();
                write_double(&mut out, f);
                assert_eq!(out.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{out}");
                let (mantissa, _) = out.split_once('E').unwrap_or((&out, ""));
                assert!(mantissa.contains('.'), "{out}");
            }
        }
        // Integers below 10^7 are their digits and `.0`, as core's `{:.1}` writes them.
        for i in (-9_999_999i64..=9_999_999).step_by(9_973).chain([0, 1, -1]) {
            let mut out = String::new();
            write_double(&mut out, i as f64);
            assert_eq!(out, format!("{:.1}", i as f64));
        }
    }

    /// Doubles within [10^-3, 10^7) that are not integral come out exactly as
    /// `write_shortest` writes them (zmij's text taken as it is).
    #[test]
    fn plain_range_doubles_match_write_shortest() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut checked = 0;
        for i in 0..600_000u64 {
            let x = crate::format::xorshift(&mut x);
            let scale = [1e-3, 1e-2, 0.1, 1.0, 1e2, 1e4, 1e6][(i % 7) as usize];
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            for f in [
                unit * scale * 10.0,
                -unit * scale * 10.0,
                (x % 10_000_000) as f64 * 0.908,
            ] {
                if f == f.trunc() || !(1e-3..1e7).contains(&f.abs()) {
                    continue;
                }
                let (mut double, mut shortest) = (String::new(), String::new());
                write_double(&mut double, f);
                write_shortest(&mut shortest, f);
                assert_eq!(double, shortest, "{f:e}");
                checked += 1;
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    /// The scientific layout read straight off zmij's plain text agrees with the one by way
    /// of `Shortest`, for doubles of every magnitude, prices' size, integral ones and ones
    /// with zeros inside; and it is the one taken for most doubles from 10^7 up.
    #[test]
    fn scientific_fast_path_matches_the_general_one() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut doubles = vec![
            1.0e7,
            1.0e15,
            1.0e16,
            2.0e7,
            10000005.0,
            1.0000000005e7,
            12e20,
        ];
        for _ in 0..300_000 {
            let bits = crate::format::xorshift(&mut x);
            doubles.push(f64::from_bits(bits));
            doubles.push((bits % 100_000_000_000) as f64 * 0.908);
            doubles.push((bits % 10_000_000_000_000_000) as f64);
            doubles.push(-((bits % 1_000_000) as f64) * 1.0e7);
        }
        let mut fast = 0;
        for f in doubles {
            if !f.is_finite() || f == 0.0 || (1e-3..1e7).contains(&f.abs()) {
                continue;
            }
            let (mut laid_out, mut general) = (String::new(), String::new());
            write_scientific(&mut laid_out, f);
            let mut buffer = zmij::Buffer::new();
            let text = buffer.format_finite(f).as_bytes();
            write_scientific_from(&mut general, f, text);
            assert_eq!(laid_out, general, "{f:e}");
            if f.abs() < 1e15 && scientific_from_plain(text).is_some() {
                fast += 1;
            }
        }
        assert!(fast > 500_000, "the fast path was taken {fast} times");
    }

    /// Doubles come out as Rust's `{}` writes them (plain notation, the shortest digits
    /// that read back as the same double), except that where two such digit strings are
    /// equally close to the double, the last digit is the even one (as zmij and Java's
    /// `Double.toString` choose; Rust's formatter may take the other). Edge cases, every
    /// power of ten, and a million pseudo-random doubles of every magnitude and of prices'
    /// size.
    #[test]
    fn shortest_doubles_match_rust_display() {
        let mut ties = 0;
        let mut check = |f: f64| {
            if f.is_finite() {
                let mut out = String::new();
                write_shortest(&mut out, f);
                let rust = format!("{f}");
                if out != rust {
                    // Only the last digit may differ, by one, to the even one.
                    let (a, b) = (out.as_bytes(), rust.as_bytes());
                    assert_eq!(a.len(), b.len(), "{f:e}: {out} vs {rust}");
                    assert_eq!(a[..a.len() - 1], b[..b.len() - 1], "{f:e}: {out} vs {rust}");
                    let (x, y) = (a[a.len() - 1], b[b.len() - 1]);
                    assert!(
                        x.abs_diff(y) == 1 && (x - b'0').is_multiple_of(2),
                        "{f:e}: {out} vs {rust}"
                    );
                    ties += 1;
                }
                assert_eq!(out.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{out}");
            }
        };
        for f in [
            0.5,
            -0.5,
            1.5e-7,
            1e21,
            1e-7,
            0.1,
            0.2,
            0.3,
            1e16,
            1.2345e15,
            123456789.0,
            -1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.0001234,
            100.25,
            9007199254740993.0,
            0.0,
            -0.0,
        ] {
            check(f);
        }
        for e in -320..=308 {
            check(format!("1e{e}").parse().unwrap());
            check(format!("-9.87654321e{e}").parse().unwrap());
        }
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500_000 {
            check(f64::from_bits(next()));
            check(0.908 * (next() % 100_000_000) as f64);
        }
        // Ties are rare.
        assert!(ties < 1_000, "{ties}");
    }

    /// The writer over columns viewed once per batch writes what the per-value writer does,
    /// for the typed columns, the others, nulls, and an array not of its column's type.
    #[test]
    fn viewed_columns_encode_as_write_value_does() {
        let columns = vec![
            col("B", "BIGINT"),
            col("I", "INT"),
            col("D", "DOUBLE"),
            col("OK", "BOOLEAN"),
            col("S", "STRING"),
            col("DEC", "DECIMAL(4,2)"),
            col("L", "ARRAY<INT>"),
            col("A_LONGER_NAME_THAN_SIXTEEN", "BIGINT"),
        ];
        let inputs = [
            r#"{"b":-9223372036854775808,"i":7,"d":1.5,"ok":true,"s":"a\"b\u0001","dec":12.5,"l":[1,null],"a_longer_name_than_sixteen":12}"#,
            r#"{"b":null,"i":null,"d":null,"ok":null,"s":null,"dec":null,"l":null}"#,
            r#"{"b":3,"i":-2147483648,"d":1e300,"ok":false,"s":"é","dec":-0.01,"l":[]}"#,
            r#"{}"#,
        ];
        let payloads: Vec<Option<&[u8]>> = inputs.iter().map(|s| Some(s.as_bytes())).collect();
        let (arrays, errors) = decode_columns(&columns, true, &payloads).unwrap();
        assert!(errors.is_empty());
        let keys = object_keys(&columns);
        let prefixes = object_key_prefixes(&columns);
        let views: Vec<ColumnView> = columns
            .iter()
            .zip(&arrays)
            .map(|(c, a)| ColumnView::of(&c.ty, a.as_ref()))
            .collect();
        assert!(matches!(views[0], ColumnView::Bigint(_)));
        assert!(matches!(views[4], ColumnView::String(_)));
        for row in 0..inputs.len() {
            let (mut per_value, mut viewed) = (String::new(), String::new());
            encode_object_into(&columns, &keys, &arrays, row, &mut per_value).unwrap();
            encode_viewed_object_into(&prefixes, &views, row, &mut viewed).unwrap();
            assert_eq!(viewed, per_value);
        }
        // An INT array under a STRING column: both writers refuse it.
        let wrong = [col("S", "STRING")];
        let ints: ArrayRef = std::sync::Arc::new(Int32Array::from(vec![1]));
        let view = ColumnView::of(&wrong[0].ty, ints.as_ref());
        assert!(matches!(view, ColumnView::Other(..)));
        let mut out = String::new();
        assert!(text_of(&mut out, |b| view.write(b, 0)).is_err());
        assert!(encode_object_into(&wrong, &object_keys(&wrong), &[ints], 0, &mut out).is_err());
        let mut empty = String::new();
        encode_viewed_object_into(&[], &[], 0, &mut empty).unwrap();
        assert_eq!(empty, "{}");
    }

    fn round_trip(columns: &[Column], wrapped: bool, inputs: &[&str]) -> Vec<String> {
        let payloads: Vec<Option<&[u8]>> = inputs.iter().map(|s| Some(s.as_bytes())).collect();
        let (arrays, errors) = decode_columns(columns, wrapped, &payloads).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        (0..inputs.len())
            .map(|r| String::from_utf8(encode_row(columns, &arrays, wrapped, r).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn fields_match_ignoring_case_and_come_out_in_column_order() {
        let cols = [
            col("ID", "BIGINT"),
            col("NAME", "STRING"),
            col("Quoted", "INT"),
        ];
        let out = round_trip(
            &cols,
            true,
            &[
                r#"{"name": "a", "id": 1, "Quoted": 2, "extra": 0}"#,
                r#"{}"#,
            ],
        );
        assert_eq!(
            out,
            [
                r#"{"ID":1,"NAME":"a","Quoted":2}"#,
                r#"{"ID":null,"NAME":null,"Quoted":null}"#
            ]
        );
    }

    #[test]
    fn ksqldb_coercions() {
        let cols = [
            col("I", "INT"),
            col("B", "BIGINT"),
            col("D", "DOUBLE"),
            col("S", "STRING"),
            col("DEC", "DECIMAL(4, 2)"),
            col("BY", "BYTES"),
            col("BO", "BOOLEAN"),
        ];
        let out = round_trip(
            &cols,
            true,
            &[
                r#"{"I": "12", "B": 3.9, "D": "2", "S": {"x": [1]}, "DEC": 10.125, "BY": "AAE=", "BO": true}"#,
            ],
        );
        assert_eq!(
            out,
            [r#"{"I":12,"B":3,"D":2.0,"S":"{\"x\":[1]}","DEC":10.13,"BY":"AAE=","BO":true}"#]
        );
    }

    #[test]
    fn nested_types_round_trip() {
        let cols = [col(
            "A",
            "ARRAY<STRUCT<F DOUBLE, M MAP<STRING, ARRAY<INT>>>>",
        )];
        let out = round_trip(
            &cols,
            true,
            &[r#"{"a": [{"f": 1.5, "m": {"k": [1, null]}}, null, {"F": null}]}"#],
        );
        assert_eq!(
            out,
            [r#"{"A":[{"F":1.5,"M":{"k":[1,null]}},null,{"F":null,"M":null}]}"#]
        );
    }

    #[test]
    fn unwrapped_single_values() {
        let cols = [col("V", "MAP<STRING, DOUBLE>")];
        assert_eq!(
            round_trip(&cols, false, &[r#"{"a": 45.67}"#]),
            [r#"{"a":45.67}"#]
        );
    }

    #[test]
    fn a_bad_record_fails_alone() {
        let cols = [col("I", "INT"), col("S", "STRUCT<X INT>")];
        let payloads: Vec<Option<&[u8]>> = vec![
            Some(br#"{"I": 1, "S": {"X": 1}}"#),
            Some(br#"{"I": "one"}"#),
            Some(b"not json"),
            Some(br#"{"I": 4, "S": 5}"#),
            None,
            Some(br#"{"I": 6}"#),
        ];
        let (arrays, errors) = decode_columns(&cols, true, &payloads).unwrap();
        assert_eq!(
            errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(errors[0].1.to_string().contains("INTEGER"));
        let ints = arrays[0].as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(ints.len(), 6);
        assert_eq!(
            (
                ints.value(0),
                ints.is_null(1),
                ints.is_null(4),
                ints.value(5)
            ),
            (1, true, true, 6)
        );
        assert_eq!(arrays[1].len(), 6);
    }

    #[test]
    fn map_keys_must_be_strings() {
        let e = check_type(&ty("MAP<INT, DOUBLE>")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "JSON only supports MAP types with STRING keys"
        );
    }

    #[test]
    fn decimals_round_half_up_and_check_precision() {
        assert_eq!(parse_decimal("10.125", 4, 2), Some(1013));
        assert_eq!(parse_decimal("-0.5", 3, 0), Some(-1));
        assert_eq!(parse_decimal("1e2", 5, 1), Some(1000));
        assert_eq!(parse_decimal("100.0", 4, 2), None);
        assert_eq!(parse_decimal("abc", 4, 2), None);
        let mut s = String::new();
        write_decimal(&mut s, -5, 2);
        assert_eq!(s, "-0.05");
    }
}
