//! The JSON hot path: objects whose columns are all scalars (BOOLEAN, INT, BIGINT, DOUBLE,
//! STRING, DATE, TIME, TIMESTAMP) are read in one pass straight from the record's bytes by
//! a strict byte scanner — a record laid out like the last one read by comparing the bytes
//! between its values, others key by key without allocating, unescaped strings borrowed,
//! values written straight into typed columns (`json_columns.rs`) — instead of building a
//! `serde_json::Value` tree per record.
//! Anything this path does not handle exactly as `json.rs` does (a coercion from text, a
//! float into an integer column, a key that two fields match, a parse error) sends that
//! one record down the general path, so both paths always agree.

use std::borrow::Cow;

use datafusion::arrow::array::*;
use serde_json::Value;
use sluice_sql::SqlType;

use super::json::{Column, Typed, cannot, convert, field};
use super::json_columns::{ColumnValues, Mismatch};
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
pub(super) enum Slot<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

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
    // Room for each string column's bytes up front: the records' own length (which no
    // column's strings can pass), up to a bound, so a huge call does not ask for that much
    // per column at once (past it, the column grows by doubling).
    const TEXT_ROOM_BOUND: usize = 16 << 20;
    let text_bytes = payloads
        .iter()
        .flatten()
        .map(|p| p.len())
        .sum::<usize>()
        .min(TEXT_ROOM_BOUND);
    let mut out = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            ColumnValues::new(&c.ty, payloads.len(), is_unread(i), text_bytes)
                .ok_or_else(|| FormatError::unsupported("JSON", &c.ty))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let read: Vec<usize> = (0..columns.len()).filter(|&i| !is_unread(i)).collect();
    let mut errors = Vec::new();
    // Records of a topic usually list the same keys in the same order (and are often laid
    // out byte for byte alike): what the last record looked like, to read this one faster.
    let mut memory = scan::Memory::default();
    for (row, p) in payloads.iter().enumerate() {
        let Some(bytes) = p else {
            for &i in &read {
                out[i].push_null();
            }
            continue;
        };
        // The scanner writes each value straight into its column, so a record is read in
        // one pass; one it gives up on is taken back and read by the general path.
        match scan::object(bytes, columns, unread, &mut memory, &mut out, row) {
            // Every column read has its value.
            Ok(scan::Read::Whole) => {}
            Ok(scan::Read::Partly) => {
                for &i in &read {
                    if out[i].len() == row {
                        out[i].push_null();
                    }
                }
            }
            Err(scan::GiveUp) => {
                for &i in &read {
                    out[i].truncate(row);
                }
                let typed = general(columns, bytes).unwrap_or_else(|why| {
                    errors.push((row, FormatError::Deserialization(why)));
                    vec![Typed::Null; columns.len()]
                });
                for (c, v) in out.iter_mut().zip(typed) {
                    c.put_typed(v);
                }
            }
        }
    }
    // Unread columns are all null (the general path's values for them are dropped too, as
    // the fast path never reads them).
    let arrays = out.into_iter().map(|c| c.finish(payloads.len())).collect();
    Ok((arrays, errors))
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
    use std::ops::Range;

    use super::{Column, ColumnValues, Mismatch, Slot, column_for};
    use crate::format::json::plain_run;

    pub(super) struct GiveUp;

    /// How much of a row a record filled in.
    pub(super) enum Read {
        /// A value for every column read (the record's layout names them all).
        Whole,
        /// Values for some columns: the others are still to be made null.
        Partly,
    }

    /// The n-th key of the last record: its bytes as written (`None` when it had escapes)
    /// and the column it named.
    type RecentKey = (Option<Box<[u8]>>, Option<usize>);

    /// Whether `a` and `b` are equal, eight bytes at a time with the last eight (or four)
    /// overlapping the ones before: keys and separators are short, and a call to `memcmp`
    /// or a byte loop for the remainder cost more than the comparison.
    pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
        let n = a.len();
        if n != b.len() {
            return false;
        }
        let word = |s: &[u8], at: usize| s[at..].first_chunk::<8>().map(|w| u64::from_le_bytes(*w));
        let half = |s: &[u8], at: usize| s[at..].first_chunk::<4>().map(|w| u32::from_le_bytes(*w));
        if n >= 8 {
            let mut at = 0;
            while at + 8 < n {
                if word(a, at) != word(b, at) {
                    return false;
                }
                at += 8;
            }
            word(a, n - 8) == word(b, n - 8)
        } else if n >= 4 {
            half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
        } else {
            a == b
        }
    }

    /// The leading decimal digits of eight bytes (the first in the lowest byte): how many
    /// (0 to 8) and the number they spell, found without a loop: a mask of the bytes that
    /// are not digits, then the digits combined pairwise, in fours and all eight by
    /// multiplication.
    pub(super) fn leading_digits(chunk: [u8; 8]) -> (usize, u64) {
        let word = u64::from_le_bytes(chunk);
        // A digit's byte becomes its value, 0 to 9.
        let values = word ^ 0x3030_3030_3030_3030;
        // A byte's high bit is set when its value is 10 or more. (Adding can carry out of
        // a byte of 0x8a or more, which is flagged itself: the carry only reaches bytes
        // after the first that is not a digit.)
        let not_digit =
            (values.wrapping_add(0x7676_7676_7676_7676) | values) & 0x8080_8080_8080_8080;
        let count = (not_digit.trailing_zeros() / 8) as usize;
        if count == 0 {
            return (0, 0);
        }
        // The digits moved to the top: the bytes below them become leading zeros.
        let v = values << (8 * (8 - count));
        let v = v.wrapping_mul(10).wrapping_add(v >> 8);
        const PAIRS: u64 = 0x0000_00FF_0000_00FF;
        let v = ((v & PAIRS).wrapping_mul(100 + (1_000_000 << 32)))
            .wrapping_add(((v >> 16) & PAIRS).wrapping_mul(1 + (10_000 << 32)))
            >> 32;
        (count, v & 0xFFFF_FFFF)
    }

    /// 10 to the power of 0 to 8.
    const TENS: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];

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

        /// Skips exactly `expected`, or gives up.
        fn skip_exactly(&mut self, expected: &[u8]) -> Result<(), GiveUp> {
            let end = self.at + expected.len();
            match self.bytes.get(self.at..end) {
                Some(here) if same_bytes(here, expected) => {
                    self.at = end;
                    Ok(())
                }
                _ => Err(GiveUp),
            }
        }

        /// A string after its opening quote (borrowed when it has no escape; one with
        /// escapes is decoded by serde_json, which also checks them). Inlined: most of a
        /// record's strings are read by the layout loop, and a call costs about as much
        /// as the scan of a short string.
        #[inline(always)]
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
                return unescaped(&self.bytes[from - 1..self.at]);
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

        /// A value nobody reads: a string (most are) read here, anything else by
        /// `skipped_value`.
        #[inline(always)]
        fn skipped(&mut self) -> Result<(), GiveUp> {
            if self.peek() == Some(b'"') {
                self.at += 1;
                self.string().map(|_| ())
            } else {
                self.skipped_value(0)
            }
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

        /// A number, as JSON's grammar has it. The integer part is read in the one pass
        /// that finds its end, up to eight digits at a time.
        #[inline(always)]
        fn number(&mut self) -> Result<Slot<'a>, GiveUp> {
            let from = self.at;
            let negative = self.peek() == Some(b'-');
            if negative {
                self.at += 1;
            }
            let digits = self.at;
            let mut value: u64 = 0;
            // Eight bytes at a time while eight are left, then one at a time.
            while let Some(&chunk) = self.bytes[self.at..].first_chunk::<8>() {
                let (count, digits) = leading_digits(chunk);
                value = value.wrapping_mul(TENS[count]).wrapping_add(digits);
                self.at += count;
                if count < 8 {
                    break;
                }
            }
            while let Some(&b) = self.bytes.get(self.at) {
                let d = b.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                value = value.wrapping_mul(10).wrapping_add(u64::from(d));
                self.at += 1;
            }
            let count = self.at - digits;
            // At least one digit, and no leading zero.
            if count == 0 || (count > 1 && self.bytes[digits] == b'0') {
                return Err(GiveUp);
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
            // `-0` is serde_json's to read.
            if negative && value == 0 {
                return Err(GiveUp);
            }
            // Up to eighteen digits cannot overflow; longer integers are checked digit by
            // digit (beyond i64, serde_json reads them).
            if count <= 18 {
                let value = value as i64;
                return Ok(Slot::Int(if negative { -value } else { value }));
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

        /// A scalar value, appended to `column` if it is of the column's type (else the
        /// record needs the general path). Integers and strings (most values) go straight
        /// to their column's typed push, not through a `Slot` and `ColumnValues::put`'s
        /// match of slot and column.
        #[inline(always)]
        fn value_into(&mut self, column: &mut ColumnValues) -> Result<(), GiveUp> {
            let pushed = match self.peek().ok_or(GiveUp)? {
                b'-' | b'0'..=b'9' => match self.number()? {
                    Slot::Int(x) => column.put_int(x),
                    other => column.put(other),
                },
                b'"' => {
                    self.at += 1;
                    let text = self.string()?;
                    column.put_str(&text)
                }
                _ => column.put(self.value()?),
            };
            pushed.map_err(|Mismatch| GiveUp)
        }

        /// A scalar value.
        #[inline(always)]
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

    /// A string with escapes (`quoted`, quotes included), decoded and checked by serde_json.
    #[cold]
    fn unescaped(quoted: &[u8]) -> Result<Cow<'_, str>, GiveUp> {
        serde_json::from_slice::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| GiveUp)
    }

    /// The layout of the last record read whole: the bytes between one value and the next
    /// (whitespace, a comma, the next key and its colon) and the column each value goes to.
    /// A record with exactly these bytes around its values is read without looking at its
    /// keys: one comparison per field.
    #[derive(Default)]
    struct Shape {
        /// Every separator's bytes, one after another.
        bytes: Vec<u8>,
        /// Per field: its separator's range in `bytes` and the column it is read into
        /// (`None`: a value nobody reads, still checked as JSON).
        fields: Vec<(Range<usize>, Option<usize>)>,
        /// The bytes after the last value (the closing brace and any whitespace).
        end: Range<usize>,
        known: bool,
        /// Whether the fields name every column read.
        whole: bool,
    }

    /// What the scanner remembers from one record to the next.
    #[derive(Default)]
    pub(super) struct Memory {
        /// The n-th key of the last record read key by key.
        keys: Vec<RecentKey>,
        shape: Shape,
    }

    /// Reads one flat object into row `row` of `out` (whose columns hold `row` values each),
    /// or gives up (leaving whatever it wrote for the caller to take back).
    pub(super) fn object(
        bytes: &[u8],
        columns: &[Column],
        unread: &[bool],
        memory: &mut Memory,
        out: &mut [ColumnValues],
        row: usize,
    ) -> Result<Read, GiveUp> {
        if memory.shape.known {
            if in_shape(bytes, &memory.shape, out).is_ok() {
                return Ok(if memory.shape.whole {
                    Read::Whole
                } else {
                    Read::Partly
                });
            }
            for c in out.iter_mut() {
                c.truncate(row);
            }
        }
        key_by_key(bytes, columns, unread, memory, out, row).map(|()| Read::Partly)
    }

    /// A record laid out as the last one: the same bytes around its values. Anything else
    /// gives up (and is read key by key). Whatever this accepts, `key_by_key` reads the
    /// same way: the separators are bytes it read in a record it accepted, and each ends
    /// where a value starts and starts where one ends (a value is never followed by a
    /// byte that could continue it: after it came whitespace, a comma or a brace).
    fn in_shape(bytes: &[u8], shape: &Shape, out: &mut [ColumnValues]) -> Result<(), GiveUp> {
        let mut c = Cursor { bytes, at: 0 };
        for (separator, column) in &shape.fields {
            c.skip_exactly(&shape.bytes[separator.clone()])?;
            match column {
                Some(i) => c.value_into(&mut out[*i])?,
                None => c.skipped()?,
            }
        }
        let end = &shape.bytes[shape.end.clone()];
        if bytes.len() - c.at == end.len() && same_bytes(&bytes[c.at..], end) {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// Reads an object key by key, and remembers its layout when it reads it whole.
    fn key_by_key(
        bytes: &[u8],
        columns: &[Column],
        unread: &[bool],
        memory: &mut Memory,
        out: &mut [ColumnValues],
        row: usize,
    ) -> Result<(), GiveUp> {
        let Memory { keys, shape } = memory;
        shape.known = false;
        shape.bytes.clear();
        shape.fields.clear();
        // Where the last value ended (the next separator starts there).
        let mut last_end = 0;
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
                let read = column.filter(|&i| !unread.get(i).copied().unwrap_or(false));
                let from = shape.bytes.len();
                shape.bytes.extend_from_slice(&bytes[last_end..c.at]);
                shape.fields.push((from..shape.bytes.len(), read));
                match read {
                    Some(i) => {
                        // A key given twice is serde_json's to read.
                        if out[i].len() > row {
                            return Err(GiveUp);
                        }
                        c.value_into(&mut out[i])?;
                    }
                    None => c.skipped_value(0)?,
                }
                last_end = c.at;
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
        if c.at != bytes.len() {
            return Err(GiveUp);
        }
        let from = shape.bytes.len();
        shape.bytes.extend_from_slice(&bytes[last_end..]);
        shape.end = from..shape.bytes.len();
        shape.known = true;
        shape.whole = (0..columns.len())
            .filter(|&i| !unread.get(i).copied().unwrap_or(false))
            .all(|i| shape.fields.iter().any(|(_, c)| *c == Some(i)));
        Ok(())
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
            // Records laid out alike, read by their layout: naming every column, then
            // only some (the rest null), then every column again.
            Some(br#"{"id":1,"name":"a","price":2.5,"ok":true,"n":3,"ts":17}"#),
            Some(br#"{"id":2,"name":"b","price":3.5,"ok":false,"n":4,"ts":18}"#),
            Some(br#"{"id":3,"name":"c"}"#),
            Some(br#"{"id":4,"name":"d"}"#),
            Some(br#"{"id":5,"name":"e","price":4.5,"ok":true,"n":5,"ts":19}"#),
            Some(br#"{"id":6,"name":"f","price":5.5,"ok":true,"n":6,"ts":20}"#),
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

    /// Records laid out like the one before them are read by their layout; each of these
    /// follows a record of the common layout, so every near-miss meets the learnt shape.
    #[test]
    fn records_laid_out_like_the_last_read_as_the_general_path_does() {
        let columns = vec![
            col("ID", SqlType::Bigint),
            col("NAME", SqlType::String),
            col("PRICE", SqlType::Double),
            col("OTHER", SqlType::String),
        ];
        let common = r#"{"id":1,"name":"a","skip":[1,{"x":2}],"price":2.5,"other":"o"}"#;
        let variants = [
            r#"{"id":22,"name":"bb","skip":{},"price":3,"other":"p"}"#,
            r#"{"id":"22","name":"bb","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p","id":3}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p"} "#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p"}x"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p"}}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p""#,
            r#"{"id":2,"name":"b","skip":1,"price":3}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p","more":1}"#,
            r#"{"id":2 ,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2,"Name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p","name":"c"}"#,
            r#"{"id":2x,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2.5,"name":"b","skip":[1,2,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b","skip":tru,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b\u0041","skip":null,"price":-3e2,"other":null}"#,
            r#"{"id":-0,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":20,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":5}"#,
            r#"{}"#,
            r#"{"id":2,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#" {"id":2,"name":"b","skip":1,"price":3,"other":"p"}"#,
            r#"{"id" :2,"name":"b","skip":1,"price":3,"other":"p"}"#,
        ];
        let mut inputs: Vec<&str> = Vec::new();
        for v in variants {
            // Twice: once after the common layout, once after its own.
            inputs.extend([common, v, v, common]);
        }
        let payloads: Vec<Option<&[u8]>> = inputs.iter().map(|r| Some(r.as_bytes())).collect();
        let general = super::super::json::decode_general(&columns, true, &payloads).unwrap();
        for unread in [vec![], vec![false, false, false, true]] {
            let fast = decode_objects_skipping(&columns, &unread, &payloads).unwrap();
            assert_eq!(
                fast.1, general.1,
                "the same records fail, for the same reasons"
            );
            for (i, (a, b)) in fast.0.iter().zip(&general.0).enumerate() {
                if !unread.get(i).copied().unwrap_or(false) {
                    assert_eq!(a.to_data(), b.to_data(), "column {i}");
                }
            }
        }
        assert!(!general.1.is_empty());
    }

    /// Byte strings compare equal exactly when they are, at every length and wherever
    /// they differ.
    #[test]
    fn same_bytes_at_every_length() {
        let text: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=text.len() {
            let a = &text[..n];
            assert!(scan::same_bytes(a, a));
            assert!(!scan::same_bytes(a, &text[..n.saturating_sub(1)]) || n == 0);
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!scan::same_bytes(a, &b), "{n} {at}");
            }
        }
    }

    /// Up to eight leading digits read at once are the number they spell, whatever follows.
    #[test]
    fn leading_digits_at_once() {
        let digits = b"90817263";
        for count in 0..=8 {
            for after in 0..=255u8 {
                let mut chunk = [after; 8];
                chunk[..count].copy_from_slice(&digits[..count]);
                let expect_count = chunk.iter().take_while(|b| b.is_ascii_digit()).count();
                let expect: u64 = std::str::from_utf8(&chunk[..expect_count])
                    .unwrap()
                    .parse()
                    .unwrap_or(0);
                assert_eq!(
                    scan::leading_digits(chunk),
                    (expect_count, expect),
                    "{chunk:?}"
                );
            }
        }
        assert_eq!(scan::leading_digits(*b"00000000"), (8, 0));
        assert_eq!(scan::leading_digits(*b"99999999"), (8, 99_999_999));
        assert_eq!(scan::leading_digits(*b"0012\xff\xff\x00\x00"), (4, 12));
    }

    /// Integers of every length, both signs, with fractions, exponents and the wrong
    /// shapes after them, read as the general path reads them.
    #[test]
    fn integers_of_every_length_read_as_the_general_path_does() {
        let columns = vec![col("N", SqlType::Bigint), col("D", SqlType::Double)];
        let mut inputs: Vec<String> = Vec::new();
        let digits = "1234567890123456789012";
        for len in 1..=digits.len() {
            let n = &digits[..len];
            for sign in ["", "-"] {
                for tail in ["", ".5", "e2", "x", "0", ".", " "] {
                    inputs.push(format!(r#"{{"n":{sign}{n}{tail},"d":{sign}{n}{tail}}}"#));
                }
                inputs.push(format!(r#"{{"n":{sign}0{n}}}"#));
                inputs.push(format!(r#"{{"n":{sign}{}}}"#, "9".repeat(len)));
            }
        }
        for edge in [
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "999999999999999999",
            "1000000000000000000",
            "-0",
            "0",
            "00",
        ] {
            inputs.push(format!(r#"{{"n":{edge}}}"#));
        }
        let payloads: Vec<Option<&[u8]>> = inputs.iter().map(|r| Some(r.as_bytes())).collect();
        let fast = decode_objects(&columns, &payloads).unwrap();
        let general = super::super::json::decode_general(&columns, true, &payloads).unwrap();
        assert_eq!(
            fast.1, general.1,
            "the same records fail, for the same reasons"
        );
        assert!(!fast.1.is_empty());
        for (a, b) in fast.0.iter().zip(&general.0) {
            assert_eq!(a.to_data(), b.to_data());
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
