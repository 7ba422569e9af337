//! The `DELIMITED` format: one line of delimiter-separated fields, one per column, as ksqlDB
//! writes it with Apache Commons CSV: an empty unquoted field is null; quotes (`"`, doubled
//! inside) protect delimiters and line breaks; when writing, a field is quoted if it holds
//! the delimiter, a quote or a line break, ends in white space, or — for the first field of
//! the record — starts with a character that is not a letter or a digit. Only primitive
//! types (no ARRAY, MAP or STRUCT).

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use serde_json::Value;
use sluice_sql::SqlType;

use super::json::{Column, build_columns, value_json};
use super::{FormatError, RecordErrors};

/// Checks at planning time that DELIMITED can carry `ty`.
pub fn check_type(ty: &SqlType) -> Result<(), FormatError> {
    match ty {
        SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_) | SqlType::Custom(_) => {
            Err(FormatError::unsupported("DELIMITED", ty))
        }
        _ => Ok(()),
    }
}

/// The delimiter a `VALUE_DELIMITER`/`KEY_DELIMITER` property names.
pub fn parse_delimiter(text: &str) -> Result<char, String> {
    match text {
        "TAB" => Ok('\t'),
        "SPACE" => Ok(' '),
        t if t.chars().count() == 1 && t != " " => t.chars().next().ok_or_else(String::new),
        "" | " " => Err("Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use the word 'TAB' or 'SPACE' instead".into()),
        t => Err(format!("Invalid delimiter value: '{t}'. Delimiter must be a single character or TAB or SPACE")),
    }
}

/// Splits one record into fields; `None` marks an empty unquoted field (null).
fn split(line: &str, delimiter: char) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        loop {
            match chars.next() {
                None => {
                    fields.push((quoted || !field.is_empty()).then_some(field));
                    return Ok(fields);
                }
                Some(c) if c == delimiter => break,
                Some(_) if quoted => return Err("characters after a closing quote".into()),
                Some(c) => field.push(c),
            }
        }
        fields.push((quoted || !field.is_empty()).then_some(field));
    }
}

/// Decodes a batch of payloads into one column per entry of `columns`.
pub fn decode_columns(
    columns: &[Column],
    delimiter: char,
    payloads: &[Option<&[u8]>],
) -> Result<(Vec<ArrayRef>, RecordErrors), FormatError> {
    for c in columns {
        check_type(&c.ty)?;
    }
    let parsed: Vec<Result<Option<Vec<Value>>, String>> = payloads
        .iter()
        .map(|p| {
            let Some(bytes) = p else {
                return Ok(None);
            };
            let line = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
            let fields = split(line.trim_end_matches(['\r', '\n']), delimiter)?;
            if fields.len() != columns.len() {
                return Err(format!(
                    "Column count mismatch on deserialization. expected: {}, got: {}",
                    columns.len(),
                    fields.len()
                ));
            }
            Ok(Some(
                fields
                    .into_iter()
                    .map(|f| f.map_or(Value::Null, Value::String))
                    .collect(),
            ))
        })
        .collect();
    let rows = parsed.iter().map(|r| match r {
        Err(e) => Err(e.clone()),
        Ok(None) => Ok(None),
        Ok(Some(values)) => Ok(Some(values.iter().map(Some).collect())),
    });
    build_columns(columns, rows, payloads.len())
}

fn needs_quotes(text: &str, first: bool, delimiter: char) -> bool {
    let Some(c) = text.chars().next() else {
        return first;
    };
    // Commons CSV's MINIMAL mode: a record starting with anything but a letter or digit,
    // or any field starting at or below '#' (space, controls, '!', '"', '#'), is quoted.
    (first && !c.is_ascii_alphanumeric())
        || c <= '#'
        || text
            .chars()
            .any(|c| c == delimiter || c == '"' || c == '\n' || c == '\r')
        || text.chars().last().is_some_and(|c| c <= ' ')
}

/// Encodes row `row` of `arrays` (one per column) as one delimited record.
pub fn encode_row(
    columns: &[Column],
    arrays: &[ArrayRef],
    delimiter: char,
    row: usize,
) -> Result<Vec<u8>, FormatError> {
    let mut out = String::new();
    for (i, (c, a)) in columns.iter().zip(arrays).enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        if a.is_null(row) {
            continue;
        }
        let text = match &c.ty {
            SqlType::String => a
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|s| s.value(row).to_string())
                .ok_or_else(|| {
                    FormatError::Deserialization(format!("column {} is not a string", c.name))
                })?,
            SqlType::Boolean => a
                .as_any()
                .downcast_ref::<BooleanArray>()
                .map(|b| b.value(row).to_string())
                .ok_or_else(|| {
                    FormatError::Deserialization(format!("column {} is not a boolean", c.name))
                })?,
            ty => {
                let mut s = String::new();
                value_json(&mut s, ty, a.as_ref(), row)?;
                s.trim_matches('"').to_string()
            }
        };
        if needs_quotes(&text, i == 0, delimiter) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(spec: &[(&str, SqlType)]) -> Vec<Column> {
        spec.iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                ty: t.clone(),
            })
            .collect()
    }

    #[test]
    fn fields_split_with_quotes_and_nulls() {
        assert_eq!(
            split("a,,\"b,c\",\"x\"\"y\"", ',').unwrap(),
            vec![
                Some("a".into()),
                None,
                Some("b,c".into()),
                Some("x\"y".into())
            ]
        );
        assert_eq!(split("", ',').unwrap(), vec![None]);
        assert!(split("\"open", ',').is_err());
    }

    #[test]
    fn round_trip_with_ksqldb_quoting() {
        let c = cols(&[
            (
                "D",
                SqlType::Decimal {
                    precision: 10,
                    scale: 4,
                },
            ),
            ("S", SqlType::String),
            ("I", SqlType::Int),
        ]);
        let (arrays, errors) =
            decode_columns(&c, ',', &[Some(b"-1.5,\"a,b\","), Some(b".12,x,7")]).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            String::from_utf8(encode_row(&c, &arrays, ',', 0).unwrap()).unwrap(),
            "\"-1.5000\",\"a,b\","
        );
        assert_eq!(
            String::from_utf8(encode_row(&c, &arrays, ',', 1).unwrap()).unwrap(),
            "0.1200,x,7"
        );
    }

    #[test]
    fn wrong_field_counts_fail_the_record_only() {
        let c = cols(&[("A", SqlType::Int), ("B", SqlType::Int)]);
        let (arrays, errors) =
            decode_columns(&c, '|', &[Some(b"1|2"), Some(b"1"), Some(b"x|2")]).unwrap();
        assert_eq!(errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(arrays[0].len(), 3);
    }

    #[test]
    fn delimiters_by_name() {
        assert_eq!(parse_delimiter("TAB"), Ok('\t'));
        assert_eq!(parse_delimiter("|"), Ok('|'));
        assert!(
            parse_delimiter("").is_err()
                && parse_delimiter(" ").is_err()
                && parse_delimiter("ab").is_err()
        );
        assert!(check_type(&SqlType::Array(Box::new(SqlType::Int))).is_err());
    }
}
