//! The JSON hot path: objects whose columns are all scalars (BOOLEAN, INT, BIGINT, DOUBLE,
//! STRING, DATE, TIME, TIMESTAMP) are read in one pass straight from the record's bytes by
//! a strict byte scanner — keys matched to columns without allocating, unescaped strings
//! borrowed, values appended to the Arrow builders — instead of building a
//! `serde_json::Value` tree per record.
//! Anything this path does not handle exactly as `json.rs` does (a coercion from text, a
//! float into an integer column, a key that two fields match, a parse error) sends that
//! one record down the general path, so both paths always agree.

use std::borrow::Cow;

use datafusion::arrow::array::*;
use serde_json::Value;
use sluice_sql::SqlType;

use super::json::{Column, Typed, append, builder, cannot, convert, field};
use super::{FormatError, RecordErrors};
use crate::schema::arrow_type;

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
    let is_unread = |i: usize| unread.get(i).copied().unwrap_or(false);
    let mut builders = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let capacity = if is_unread(i) { 0 } else { payloads.len() };
            ColumnBuilder::new(&c.ty, capacity)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut errors = Vec::new();
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(columns.len());
    // Records of a topic usually list the same keys in the same order: the n-th key of the
    // last record and the column it named, to reuse when this record's n-th key is the same.
    let mut keys: Vec<scan::RecentKey> = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let Some(bytes) = p else {
            for (b, c) in builders.iter_mut().zip(columns) {
                append(b.as_dyn(), &c.ty, Typed::Null);
            }
            continue;
        };
        slots.clear();
        slots.resize(columns.len(), Slot::Missing);
        let fast = read_object(bytes, columns, unread, &mut keys, &mut slots).and_then(|()| {
            // Check every slot converts before appending any, so a row is all or nothing.
            let ok = columns.iter().zip(&slots).all(|(c, s)| fits(&c.ty, s));
            if ok { Ok(()) } else { Err(Fallback) }
        });
        match fast {
            Ok(()) => {
                for (i, (b, s)) in builders.iter_mut().zip(slots.drain(..)).enumerate() {
                    if !is_unread(i) {
                        b.push(s);
                    }
                }
            }
            Err(Fallback) => {
                let typed = general(columns, bytes).unwrap_or_else(|why| {
                    errors.push((i, FormatError::Deserialization(why)));
                    vec![Typed::Null; columns.len()]
                });
                for ((b, c), v) in builders.iter_mut().zip(columns).zip(typed) {
                    append(b.as_dyn(), &c.ty, v);
                }
            }
        }
    }
    let arrays = builders
        .iter_mut()
        .zip(columns)
        .enumerate()
        .map(|(i, (b, c))| match (is_unread(i), arrow_type(&c.ty)) {
            // Unread columns are all null (the general path's values for them are dropped
            // too, as the fast path never reads them).
            (true, Some(dt)) => new_null_array(&dt, payloads.len()),
            _ => b.as_dyn().finish(),
        })
        .collect();
    Ok((arrays, errors))
}

/// A column's Arrow builder, by type: the fast path appends to it without a downcast per
/// value.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int(Int32Builder),
    Bigint(Int64Builder),
    Double(Float64Builder),
    String(StringBuilder),
    /// Other types (DATE, TIME, TIMESTAMP) are rarer and go through the general append.
    Other(Box<dyn ArrayBuilder>, SqlType),
}

impl ColumnBuilder {
    fn new(ty: &SqlType, capacity: usize) -> Result<ColumnBuilder, FormatError> {
        Ok(match ty {
            SqlType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
            SqlType::Int => ColumnBuilder::Int(Int32Builder::with_capacity(capacity)),
            SqlType::Bigint => ColumnBuilder::Bigint(Int64Builder::with_capacity(capacity)),
            SqlType::Double => ColumnBuilder::Double(Float64Builder::with_capacity(capacity)),
            SqlType::String => ColumnBuilder::String(StringBuilder::with_capacity(capacity, 0)),
            other => ColumnBuilder::Other(builder(other, capacity)?, other.clone()),
        })
    }

    fn as_dyn(&mut self) -> &mut dyn ArrayBuilder {
        match self {
            ColumnBuilder::Boolean(b) => b,
            ColumnBuilder::Int(b) => b,
            ColumnBuilder::Bigint(b) => b,
            ColumnBuilder::Double(b) => b,
            ColumnBuilder::String(b) => b,
            ColumnBuilder::Other(b, _) => b.as_mut(),
        }
    }

    /// Appends a slot that `fits` the column's type.
    fn push(&mut self, s: Slot<'_>) {
        match (self, s) {
            (ColumnBuilder::Boolean(b), Slot::Bool(x)) => b.append_value(x),
            (ColumnBuilder::Int(b), Slot::Int(x)) => b.append_value(x as i32),
            (ColumnBuilder::Bigint(b), Slot::Int(x)) => b.append_value(x),
            (ColumnBuilder::Double(b), Slot::Int(x)) => b.append_value(x as f64),
            (ColumnBuilder::Double(b), Slot::Float(x)) => b.append_value(x),
            (ColumnBuilder::String(b), Slot::Str(x)) => b.append_value(x),
            (ColumnBuilder::Other(b, ty), s) => append_slot(b.as_mut(), ty, s),
            (b, _) => b.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Bigint(b) => b.append_null(),
            ColumnBuilder::Double(b) => b.append_null(),
            ColumnBuilder::String(b) => b.append_null(),
            ColumnBuilder::Other(b, ty) => append(b.as_mut(), ty, Typed::Null),
        }
    }
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
    keys: &mut Vec<scan::RecentKey>,
    slots: &mut [Slot<'a>],
) -> Result<(), Fallback> {
    scan::object(bytes, columns, unread, keys, slots).map_err(|scan::GiveUp| Fallback)
}

/// The column a key names (exactly, else ignoring case).
fn column_for(columns: &[Column], key: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == key).or_else(|| {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(key))
    })
}

/// A byte scanner for the common record: one flat object of numbers, unescaped strings,
/// booleans and nulls, read without a general JSON parser. It is strict: anything it
/// does not read exactly as serde_json would (an escape in a string it keeps, a nested
/// value, a number out of range, any syntax it does not expect) gives up on the record,
/// which serde_json's reader then reads.
mod scan {
    use std::borrow::Cow;

    use super::{Column, Slot, column_for};
    use crate::format::json::plain_run;

    pub(super) struct GiveUp;

    /// The n-th key of the last record: its bytes as written (`None` when it had escapes)
    /// and the column it named.
    pub(super) type RecentKey = (Option<Box<[u8]>>, Option<usize>);

    /// Whether `a` and `b` (of one length) are equal, eight bytes at a time: keys are short,
    /// and a call to `memcmp` per key cost more than the comparison.
    fn same_bytes(a: &[u8], b: &[u8]) -> bool {
        let mut a8 = a.chunks_exact(8);
        let mut b8 = b.chunks_exact(8);
        for (x, y) in (&mut a8).zip(&mut b8) {
            let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            if word(x) != word(y) {
                return false;
            }
        }
        a8.remainder()
            .iter()
            .zip(b8.remainder())
            .all(|(x, y)| x == y)
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Cursor<'a> {
        fn skip_ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
                self.at += 1;
            }
        }

        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.at).copied()
        }

        fn expect(&mut self, b: u8) -> Result<(), GiveUp> {
            if self.peek() == Some(b) {
                self.at += 1;
                Ok(())
            } else {
                Err(GiveUp)
            }
        }

        /// A string after its opening quote (borrowed when it has no escape; one with
        /// escapes is decoded by serde_json, which also checks them).
        fn string(&mut self) -> Result<Cow<'a, str>, GiveUp> {
            let from = self.at;
            let mut escaped = false;
            let mut ascii = true;
            loop {
                self.at = plain_run::<true>(self.bytes, self.at);
                match *self.bytes.get(self.at).ok_or(GiveUp)? {
                    b'"' => break,
                    b'\\' => {
                        escaped = true;
                        self.at += 2;
                    }
                    0..=0x1f => return Err(GiveUp),
                    0x80.. => {
                        ascii = false;
                        self.at += 1;
                    }
                    _ => self.at += 1,
                }
            }
            self.at += 1;
            if escaped {
                let quoted = &self.bytes[from - 1..self.at];
                return serde_json::from_slice::<String>(quoted)
                    .map(Cow::Owned)
                    .map_err(|_| GiveUp);
            }
            let text = &self.bytes[from..self.at - 1];
            if ascii {
                // SAFETY: every byte of `text` is below 0x80 (checked above), and ASCII is
                // valid UTF-8.
                return Ok(Cow::Borrowed(unsafe {
                    std::str::from_utf8_unchecked(text)
                }));
            }
            std::str::from_utf8(text)
                .map(Cow::Borrowed)
                .map_err(|_| GiveUp)
        }

        /// Whether the string starting here (after its opening quote) is `plain`, bytes of a
        /// string without escapes: then it is skipped with its closing quote. A string
        /// cannot hold an unescaped quote, so these bytes followed by a quote are exactly
        /// the string.
        fn plain_string_is(&mut self, plain: &[u8]) -> bool {
            let end = self.at + plain.len();
            let matches =
                self.bytes.get(end) == Some(&b'"') && same_bytes(&self.bytes[self.at..end], plain);
            if matches {
                self.at = end + 1;
            }
            matches
        }

        /// An array or object (after its opening bracket) nobody reads, checked as JSON.
        fn skip_nested(&mut self, close: u8, depth: usize) -> Result<(), GiveUp> {
            if depth > 64 {
                return Err(GiveUp);
            }
            self.skip_ws();
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(());
            }
            loop {
                if close == b'}' {
                    self.expect(b'"')?;
                    self.string()?;
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                }
                self.skipped_value(depth + 1)?;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.skip_ws();
                    }
                    Some(c) if c == close => {
                        self.at += 1;
                        return Ok(());
                    }
                    _ => return Err(GiveUp),
                }
            }
        }

        /// A value nobody reads, checked as JSON.
        fn skipped_value(&mut self, depth: usize) -> Result<(), GiveUp> {
            match self.peek().ok_or(GiveUp)? {
                b'[' => {
                    self.at += 1;
                    self.skip_nested(b']', depth)
                }
                b'{' => {
                    self.at += 1;
                    self.skip_nested(b'}', depth)
                }
                _ => self.value().map(|_| ()),
            }
        }

        fn literal(&mut self, word: &[u8]) -> Result<(), GiveUp> {
            if self.bytes[self.at..].starts_with(word) {
                self.at += word.len();
                Ok(())
            } else {
                Err(GiveUp)
            }
        }

        /// Skips decimal digits; how many.
        fn digits(&mut self) -> usize {
            let from = self.at;
            while let Some(b'0'..=b'9') = self.peek() {
                self.at += 1;
            }
            self.at - from
        }

        /// A number, as JSON's grammar has it.
        fn number(&mut self) -> Result<Slot<'a>, GiveUp> {
            let from = self.at;
            if self.peek() == Some(b'-') {
                self.at += 1;
            }
            let digits = self.at;
            match self.peek() {
                Some(b'0') => self.at += 1,
                Some(b'1'..=b'9') => {
                    self.digits();
                }
                _ => return Err(GiveUp),
            }
            let mut float = false;
            if self.peek() == Some(b'.') {
                float = true;
                self.at += 1;
                if self.digits() == 0 {
                    return Err(GiveUp);
                }
            }
            if let Some(b'e' | b'E') = self.peek() {
                float = true;
                self.at += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.at += 1;
                }
                if self.digits() == 0 {
                    return Err(GiveUp);
                }
            }
            if float {
                let text = std::str::from_utf8(&self.bytes[from..self.at]).map_err(|_| GiveUp)?;
                let f: f64 = text.parse().map_err(|_| GiveUp)?;
                return if f.is_finite() {
                    Ok(Slot::Float(f))
                } else {
                    Err(GiveUp)
                };
            }
            // `-0` and integers beyond i64 are serde_json's to read.
            let negative = digits > from;
            if &self.bytes[digits..self.at] == b"0" && negative {
                return Err(GiveUp);
            }
            let mut value: i64 = 0;
            for &d in &self.bytes[digits..self.at] {
                let d = i64::from(d - b'0');
                value = value
                    .checked_mul(10)
                    .and_then(|v| {
                        if negative {
                            v.checked_sub(d)
                        } else {
                            v.checked_add(d)
                        }
                    })
                    .ok_or(GiveUp)?;
            }
            Ok(Slot::Int(value))
        }

        /// A scalar value.
        fn value(&mut self) -> Result<Slot<'a>, GiveUp> {
            match self.peek().ok_or(GiveUp)? {
                b'"' => {
                    self.at += 1;
                    self.string().map(Slot::Str)
                }
                b't' => self.literal(b"true").map(|()| Slot::Bool(true)),
                b'f' => self.literal(b"false").map(|()| Slot::Bool(false)),
                b'n' => self.literal(b"null").map(|()| Slot::Null),
                b'-' | b'0'..=b'9' => self.number(),
                _ => Err(GiveUp),
            }
        }
    }

    /// Reads one flat object into `slots`, or gives up.
    pub(super) fn object<'a>(
        bytes: &'a [u8],
        columns: &[Column],
        unread: &[bool],
        keys: &mut Vec<RecentKey>,
        slots: &mut [Slot<'a>],
    ) -> Result<(), GiveUp> {
        let mut c = Cursor { bytes, at: 0 };
        c.skip_ws();
        c.expect(b'{')?;
        c.skip_ws();
        let mut ordinal = 0;
        if c.peek() == Some(b'}') {
            c.at += 1;
        } else {
            loop {
                c.expect(b'"')?;
                let column = match keys.get(ordinal) {
                    Some((Some(last), column)) if c.plain_string_is(last) => *column,
                    _ => {
                        let from = c.at;
                        let key = c.string()?;
                        let column = column_for(columns, &key);
                        if keys.len() <= ordinal {
                            keys.resize(ordinal + 1, (None, None));
                        }
                        // Only a key written without escapes can be matched by its bytes.
                        let raw =
                            matches!(key, Cow::Borrowed(_)).then(|| bytes[from..c.at - 1].into());
                        keys[ordinal] = (raw, column);
                        column
                    }
                };
                ordinal += 1;
                c.skip_ws();
                c.expect(b':')?;
                c.skip_ws();
                match column {
                    Some(i) if !unread.get(i).copied().unwrap_or(false) => {
                        if slots[i] != Slot::Missing {
                            return Err(GiveUp);
                        }
                        slots[i] = c.value()?;
                    }
                    _ => c.skipped_value(0)?,
                }
                c.skip_ws();
                match c.peek() {
                    Some(b',') => {
                        c.at += 1;
                        c.skip_ws();
                    }
                    Some(b'}') => {
                        c.at += 1;
                        break;
                    }
                    _ => return Err(GiveUp),
                }
            }
        }
        c.skip_ws();
        if c.at == bytes.len() {
            Ok(())
        } else {
            Err(GiveUp)
        }
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
            // What the byte scanner reads, and where it must give up.
            Some(b" {\t\"id\" : -12 ,\n\"price\":1.5e3, \"ts\":0 }\r\n"),
            Some(br#"{"id":-0,"price":-0.0}"#),
            Some(br#"{"id":01}"#),
            Some(br#"{"id":1.}"#),
            Some(br#"{"id":-}"#),
            Some(br#"{"price":1e400}"#),
            Some(br#"{"price":2.2250738585072011e-308,"n":2147483648}"#),
            Some(br#"{"id":9223372036854775807,"n":-2147483648}"#),
            Some(br#"{"id":-9223372036854775809}"#),
            Some(br#"{"id":1,}"#),
            Some(br#"{"id":1 "name":"x"}"#),
            Some(br#"{"url":"http:\/\/x\u0041\n","id":3}"#),
            Some(br#"{"url":"bad \x escape","id":3}"#),
            Some(br#"{"url":"\ud83d\ude00","id":3}"#),
            Some(b"{\"name\":\"tab\there\"}"),
            Some(br#"{"n\u0061me":"x"}"#),
            Some(br#"{"extra":[1,{"a":"}"}],"id":5}"#),
            Some(br#"{"id":tru}"#),
            Some(br#"{"ok":true,"ok2":false,"id":null}"#),
            Some(b"{\"name\":\"\xff\"}"),
            Some(br#"{"id":1}}"#),
            Some(br#"{"name":"\ud83d\ude00 \ud83d","id":7}"#),
            Some(br#"{"name":"\ud83d\ude00","deep":{"a":[[[]]],"b":{}},"id":8}"#),
            Some(br#"{"deep":{"a":[1 2]},"id":9}"#),
            Some(br#"{"name":"a long plain ascii string of more than eight bytes","url":"http://example.com/x?y=1&z=2 \u00e9 and more","id":10}"#),
            Some(br#"{"name":"0123456789abc\"def0123456789","id":11}"#),
            Some(b"{\"name\":\"0123456789abcdef\x01123456789\",\"id\":12}"),
            Some("{\"name\":\"0123456789abcdé0123456789\",\"id\":13}".as_bytes()),
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

    /// Each byte the string scanner must stop at, at every position of the runs it skips
    /// many bytes at a time (sixteen, eight, one), in a read string and an unread one.
    #[test]
    fn a_special_byte_anywhere_in_a_long_string_reads_as_the_general_path_does() {
        let columns = vec![col("NAME", SqlType::String), col("ID", SqlType::Bigint)];
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCDE";
        let specials: [&[u8]; 8] = [
            br#"\""#,
            br"\\",
            br"\n",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            b"\xff",
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for special in specials {
            for at in 0..=plain.len() {
                let mut text = plain.as_bytes().to_vec();
                text.splice(at..at, special.iter().copied());
                for field in ["name", "other"] {
                    let mut record = format!("{{\"{field}\":\"").into_bytes();
                    record.extend_from_slice(&text);
                    record.extend_from_slice(br#"","id":1}"#);
                    inputs.push(record);
                }
            }
        }
        let payloads: Vec<Option<&[u8]>> = inputs.iter().map(|r| Some(r.as_slice())).collect();
        let fast = decode_objects(&columns, &payloads).unwrap();
        let general = super::super::json::decode_general(&columns, true, &payloads).unwrap();
        assert_eq!(
            fast.1, general.1,
            "the same records fail, for the same reasons"
        );
        assert!(!fast.1.is_empty(), "control bytes and bad UTF-8 fail");
        for (a, b) in fast.0.iter().zip(&general.0) {
            assert_eq!(a.to_data(), b.to_data());
        }
    }
}
