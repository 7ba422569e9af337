//! Output matching as ksqlDB's test harness does it: per topic the same number of records in
//! the same order; keys and values compared structurally (objects field by field, expected
//! names matched exactly or upper-cased; arrays element by element); integers exactly;
//! decimals exactly *including scale* unless `use.exact.numeric.comparison=false`; a number
//! written with an exponent within 1e-6; a string expectation against a number as an exact
//! decimal; timestamps and windows only when the expectation gives them; headers always (an
//! expectation without headers means none).

use super::json::Json;
use super::model::TestRecord;

/// A number as (unscaled digits, scale), e.g. "1.50" -> (150, 2); `None` if not decimal text.
fn decimal(text: &str) -> Option<(i128, i64)> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unscaled: i128 = digits.parse().ok()?;
    Some((
        if neg { -unscaled } else { unscaled },
        frac.len() as i64 - exp,
    ))
}

/// Same value, ignoring scale: 1.50 == 1.5.
fn same_value(a: (i128, i64), b: (i128, i64)) -> bool {
    let (mut x, mut y) = (a, b);
    while x.1 < y.1 {
        match x.0.checked_mul(10) {
            Some(v) => x = (v, x.1 + 1),
            None => return false,
        }
    }
    while y.1 < x.1 {
        match y.0.checked_mul(10) {
            Some(v) => y = (v, y.1 + 1),
            None => return false,
        }
    }
    x.0 == y.0
}

fn is_integer(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

fn numbers_match(expected: &str, actual: &str, exact: bool) -> bool {
    if is_integer(expected) && is_integer(actual) {
        return expected.parse::<i128>().ok() == actual.parse::<i128>().ok();
    }
    if expected.contains(['e', 'E']) || actual.contains(['e', 'E']) {
        if let (Ok(e), Ok(a)) = (expected.parse::<f64>(), actual.parse::<f64>()) {
            return (e - a).abs() <= 1e-6 * e.abs().max(1.0);
        }
        return false;
    }
    match (decimal(expected), decimal(actual)) {
        (Some(e), Some(a)) if exact => e == a,
        (Some(e), Some(a)) => same_value(e, a),
        _ => false,
    }
}

/// Why `actual` does not match `expected`, or `None` when it does.
pub fn value_mismatch(expected: &Json, actual: &Json, exact_numeric: bool) -> Option<String> {
    let differ = || Some(format!("expected {expected} but got {actual}"));
    match (expected, actual) {
        (Json::Null, Json::Null) => None,
        (Json::Bool(a), Json::Bool(b)) if a == b => None,
        (Json::Number(e), Json::Number(a)) => {
            (!numbers_match(e, a, exact_numeric)).then(differ).flatten()
        }
        (Json::String(e), Json::Number(a)) => match (decimal(e), decimal(a)) {
            (Some(x), Some(y)) if x == y || !exact_numeric && same_value(x, y) => None,
            _ => differ(),
        },
        (Json::String(e), Json::String(a)) if e == a => None,
        (Json::Array(e), Json::Array(a)) => {
            if e.len() != a.len() {
                return differ();
            }
            e.iter()
                .zip(a)
                .find_map(|(x, y)| value_mismatch(x, y, exact_numeric))
        }
        (Json::Object(e), Json::Object(a)) => {
            if e.len() != a.len() {
                return differ();
            }
            for (name, ev) in e {
                let upper = name.to_uppercase();
                let Some((_, av)) = a
                    .iter()
                    .find(|(k, _)| k == name)
                    .or_else(|| a.iter().find(|(k, _)| *k == upper))
                else {
                    return Some(format!("field {name} missing in {actual}"));
                };
                if let Some(why) = value_mismatch(ev, av, exact_numeric) {
                    return Some(format!("field {name}: {why}"));
                }
            }
            None
        }
        _ => differ(),
    }
}

/// Compares one topic's records in order.
pub fn records_mismatch(
    expected: &[TestRecord],
    actual: &[TestRecord],
    exact_numeric: bool,
) -> Option<String> {
    if expected.len() != actual.len() {
        return Some(format!(
            "expected {} records but got {}: {}",
            expected.len(),
            actual.len(),
            actual
                .iter()
                .map(|r| format!("{} -> {}", r.key, r.value))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let at =
            |what: &str, why: String| Some(format!("record {i} of {}: {what}: {why}", e.topic));
        if let Some(why) = value_mismatch(&e.key, &a.key, exact_numeric) {
            return at("key", why);
        }
        if let Some(why) = value_mismatch(&e.value, &a.value, exact_numeric) {
            return at("value", why);
        }
        if let Some(ts) = e.timestamp
            && Some(ts) != a.timestamp
        {
            return at(
                "timestamp",
                format!("expected {ts} but got {:?}", a.timestamp),
            );
        }
        if e.window.is_some() && e.window != a.window {
            return at(
                "window",
                format!("expected {:?} but got {:?}", e.window, a.window),
            );
        }
        let expected_headers = e.headers.clone().unwrap_or_default();
        let actual_headers = a.headers.clone().unwrap_or_default();
        if expected_headers != actual_headers {
            return at(
                "headers",
                format!("expected {expected_headers:?} but got {actual_headers:?}"),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::json::parse;

    fn m(e: &str, a: &str, exact: bool) -> bool {
        value_mismatch(&parse(e).unwrap(), &parse(a).unwrap(), exact).is_none()
    }

    #[test]
    fn numbers() {
        assert!(m("1", "1", true));
        assert!(!m("1", "2", true));
        assert!(m("1.50", "1.50", true));
        assert!(!m("1.5", "1.50", true), "scale counts");
        assert!(m("1.5", "1.50", false));
        assert!(
            m("1.0E7", "10000000.0", true),
            "exponent form within tolerance"
        );
        assert!(
            m("\"10.10\"", "10.10", true),
            "string expectation vs decimal"
        );
        assert!(!m("\"10.1\"", "10.10", true));
    }

    #[test]
    fn objects_and_arrays() {
        assert!(
            m(
                r#"{"a": 1, "B": [1, null]}"#,
                r#"{"A": 1, "B": [1, null]}"#,
                true
            ),
            "expected names upper-cased"
        );
        assert!(
            !m(r#"{"a": 1}"#, r#"{"A": 1, "X": 2}"#, true),
            "field counts differ"
        );
        assert!(!m("[1, 2]", "[1]", true));
        assert!(!m("null", "0", true));
        assert!(m("\"x\"", "\"x\"", true));
    }

    #[test]
    fn records_in_order_with_optional_fields() {
        let rec = |v: &str, ts: Option<i64>| TestRecord {
            topic: "T".into(),
            key: Json::Null,
            value: parse(v).unwrap(),
            timestamp: ts,
            window: None,
            headers: None,
        };
        let e = [rec("1", Some(5)), rec("2", None)];
        assert!(records_mismatch(&e, &[rec("1", Some(5)), rec("2", Some(9))], true).is_none());
        assert!(records_mismatch(&e, &[rec("2", Some(5)), rec("1", Some(9))], true).is_some());
        assert!(records_mismatch(&e, &[rec("1", Some(6)), rec("2", None)], true).is_some());
        assert!(records_mismatch(&e, &[rec("1", Some(5))], true).is_some());
    }
}
