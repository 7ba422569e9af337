//! ksqlDB's functions over JSON text: EXTRACTJSONFIELD (a JSONPath subset: `$`, `.name`,
//! `['name']`, `[n]`), IS_JSON_STRING, JSON_ARRAY_LENGTH, JSON_KEYS, JSON_RECORDS,
//! JSON_ITEMS and JSON_CONCAT. Text that is not JSON gives null, as in ksqlDB.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, MapArray, StringArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sluice_sql::SqlType;

use super::row_udf::{Ret, any_of, null_of, text, udf};

pub(crate) fn string_list() -> DataType {
    DataType::new_list(DataType::Utf8, true)
}

pub(crate) fn string_map() -> DataType {
    crate::schema::arrow_type(&SqlType::Map(
        Box::new(SqlType::String),
        Box::new(SqlType::String),
    ))
    .expect("MAP<STRING, STRING> has an Arrow type")
}

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "extractjsonfield",
            any_of(&[2]),
            Ret::Fixed(DataType::Utf8),
            |a, t| {
                let (Some(json), Some(path)) = (text(&a[0]), text(&a[1])) else {
                    return null_of(t);
                };
                let found = serde_json::from_str::<Value>(json)
                    .ok()
                    .and_then(|v| follow(&v, path).cloned());
                Ok(ScalarValue::Utf8(match found {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(other) => Some(other.to_string()),
                }))
            },
        ),
        udf(
            "is_json_string",
            any_of(&[1]),
            Ret::Fixed(DataType::Boolean),
            |a, _| {
                let ok = text(&a[0]).is_some_and(|s| serde_json::from_str::<Value>(s).is_ok());
                Ok(ScalarValue::Boolean(Some(ok)))
            },
        ),
        udf(
            "json_array_length",
            any_of(&[1]),
            Ret::Fixed(DataType::Int32),
            |a, t| match parse(&a[0]) {
                Some(Value::Array(items)) => Ok(ScalarValue::Int32(Some(items.len() as i32))),
                _ => null_of(t),
            },
        ),
        udf(
            "json_keys",
            any_of(&[1]),
            Ret::Fixed(string_list()),
            |a, t| match entries(&a[0]) {
                Some(e) => Ok(string_list_scalar(e.0.into_iter().map(|(k, _)| Some(k)))),
                None => null_of(t),
            },
        ),
        udf(
            "json_records",
            any_of(&[1]),
            Ret::Fixed(string_map()),
            |a, t| match entries(&a[0]) {
                Some(e) => string_map_scalar(
                    e.0.into_iter()
                        .map(|(k, v)| (k, Some(json_text(&v))))
                        .collect(),
                ),
                None => null_of(t),
            },
        ),
        udf(
            "json_items",
            any_of(&[1]),
            Ret::Fixed(string_list()),
            |a, t| match parse(&a[0]) {
                Some(Value::Array(items)) => Ok(string_list_scalar(
                    items.iter().map(|v| Some(v.to_string())),
                )),
                _ => null_of(t),
            },
        ),
        udf(
            "json_concat",
            datafusion::logical_expr::Signature::variadic_any(
                datafusion::logical_expr::Volatility::Immutable,
            ),
            Ret::Fixed(DataType::Utf8),
            |a, t| match concat(a) {
                Some(s) => Ok(ScalarValue::Utf8(Some(s))),
                None => null_of(t),
            },
        ),
    ]
}

fn parse(v: &ScalarValue) -> Option<Value> {
    serde_json::from_str(text(v)?).ok()
}

/// A JSON value as ksqlDB's JSON_RECORDS shows it: strings bare, the rest as JSON.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value at a JSONPath (`$.a.b[0]['c']`), if there is one.
fn follow<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut rest = path.trim().strip_prefix('$').unwrap_or(path.trim());
    let mut at = root;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            at = at.as_object()?.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inside = r[..end].trim();
            at = match inside.strip_prefix(['\'', '"']) {
                Some(q) => at.as_object()?.get(q.strip_suffix(['\'', '"'])?)?,
                None => at
                    .as_array()?
                    .get(usize::try_from(inside.parse::<i64>().ok()?).ok()?)?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(at)
}

/// JSON_CONCAT: objects merge (later keys win), anything else concatenates into an array.
fn concat(args: &[ScalarValue]) -> Option<String> {
    let values = args.iter().map(parse).collect::<Option<Vec<Value>>>()?;
    if values.iter().all(Value::is_object) {
        let mut merged: Vec<(String, Value)> = Vec::new();
        for arg in args {
            for (k, v) in entries(arg)?.0 {
                match merged.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(slot) => slot.1 = v,
                    None => merged.push((k, v)),
                }
            }
        }
        let body: Vec<String> = merged
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        return Some(format!("{{{}}}", body.join(",")));
    }
    let mut items = Vec::new();
    for v in values {
        match v {
            Value::Array(a) => items.extend(a),
            other => items.push(other),
        }
    }
    Some(Value::Array(items).to_string())
}

/// A JSON object's entries in the order the text has them.
struct Entries(Vec<(String, Value)>);

fn entries(v: &ScalarValue) -> Option<Entries> {
    serde_json::from_str(text(v)?).ok()
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut m: M,
            ) -> std::result::Result<Entries, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

pub(crate) fn string_list_scalar(items: impl Iterator<Item = Option<String>>) -> ScalarValue {
    let values: Vec<ScalarValue> = items.map(ScalarValue::Utf8).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8))
}

/// A MAP<STRING, STRING> value laid out as Sluice lays maps out.
pub(crate) fn string_map_scalar(entries: Vec<(String, Option<String>)>) -> Result<ScalarValue> {
    let DataType::Map(entry_field, sorted) = string_map() else {
        unreachable!("string_map is a map")
    };
    let DataType::Struct(fields) = entry_field.data_type() else {
        unreachable!("map entries are structs")
    };
    let keys: StringArray = entries.iter().map(|(k, _)| Some(k.as_str())).collect();
    let values: StringArray = entries.iter().map(|(_, v)| v.as_deref()).collect();
    let columns: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(values)];
    let structs = StructArray::try_new(fields.clone(), columns, None)?;
    let offsets = OffsetBuffer::from_lengths([entries.len()]);
    let map = MapArray::try_new(
        Arc::new(Field::clone(&entry_field)),
        offsets,
        structs,
        None,
        sorted,
    )?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let v: Value = serde_json::from_str(r#"{"a": {"b": [1, {"c": "x"}]}}"#).unwrap();
        assert_eq!(follow(&v, "$.a.b[0]"), Some(&Value::from(1)));
        assert_eq!(follow(&v, "$.a.b[1].c"), Some(&Value::from("x")));
        assert_eq!(follow(&v, "$['a']['b'][1]['c']"), Some(&Value::from("x")));
        assert_eq!(follow(&v, "$.a.b[-1]"), None);
        assert_eq!(follow(&v, "$.missing"), None);
    }

    #[test]
    fn concat_merges_objects_and_appends_the_rest() {
        let s = |t: &str| ScalarValue::Utf8(Some(t.into()));
        assert_eq!(
            concat(&[s(r#"{"b": 1}"#), s(r#"{"a": 2}"#)]).unwrap(),
            r#"{"b":1,"a":2}"#
        );
        assert_eq!(
            concat(&[s("[1]"), s(r#"{"a":1}"#)]).unwrap(),
            r#"[1,{"a":1}]"#
        );
        assert_eq!(concat(&[s("null"), s("null")]).unwrap(), "[null,null]");
        assert_eq!(concat(&[s("1"), s("")]), None);
    }
}
