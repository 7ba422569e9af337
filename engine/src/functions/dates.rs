//! ksqlDB's date and time functions: parsing and formatting with Java patterns
//! (STRINGTOTIMESTAMP, TIMESTAMPTOSTRING, PARSE_/FORMAT_TIMESTAMP|DATE|TIME, STRINGTODATE,
//! DATETOSTRING), conversions (UNIX_DATE, UNIX_TIMESTAMP, FROM_DAYS, FROM_UNIXTIME,
//! CONVERT_TZ) and arithmetic (DATEADD/SUB, TIMEADD/SUB, TIMESTAMPADD/SUB). BIGINT timestamps
//! are epoch milliseconds, DATE days since the epoch, TIME milliseconds since midnight.

use std::cell::RefCell;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;

use super::java_time::{Pattern, Zone, date_from_days, days_of};
use super::row_udf::{Ret, any_of, integer, not_accepted, null_of, row_error, text, udf};

const MILLIS_PER_DAY: i64 = 86_400_000;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// Every date/time function, with ksqlDB's names.
pub fn all() -> Vec<ScalarUDF> {
    let string = || Ret::Fixed(DataType::Utf8);
    vec![
        udf(
            "stringtotimestamp",
            any_of(&[2, 3]),
            Ret::Fixed(DataType::Int64),
            |a, t| parse_millis(a, t, |ms| ScalarValue::Int64(Some(ms))),
        ),
        udf(
            "parse_timestamp",
            any_of(&[2, 3]),
            Ret::Fixed(ts_type()),
            |a, t| parse_millis(a, t, |ms| ScalarValue::TimestampMillisecond(Some(ms), None)),
        ),
        udf(
            "timestamptostring",
            any_of(&[2, 3]),
            string(),
            format_millis,
        ),
        udf("format_timestamp", any_of(&[2, 3]), string(), format_millis),
        udf(
            "stringtodate",
            any_of(&[2]),
            Ret::Fixed(DataType::Int32),
            |a, t| parse_days(a, t, |d| ScalarValue::Int32(Some(d))),
        ),
        udf(
            "parse_date",
            any_of(&[2]),
            Ret::Fixed(DataType::Date32),
            |a, t| parse_days(a, t, |d| ScalarValue::Date32(Some(d))),
        ),
        udf("datetostring", any_of(&[2]), string(), format_days),
        udf("format_date", any_of(&[2]), string(), format_days),
        udf(
            "parse_time",
            any_of(&[2]),
            Ret::Fixed(DataType::Time32(TimeUnit::Millisecond)),
            |a, t| {
                let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
                    return null_of(t);
                };
                let ms = with_pattern(p, |p| p.parse_time_millis(s))?;
                Ok(ScalarValue::Time32Millisecond(Some(ms)))
            },
        ),
        udf("format_time", any_of(&[2]), string(), |a, t| {
            let (Some(ms), Some(p)) = (millis_like(&a[0]), text(&a[1])) else {
                return null_of(t);
            };
            Ok(ScalarValue::Utf8(Some(with_pattern(p, |p| {
                p.format_time_millis(ms as i32)
            })?)))
        }),
        udf(
            "unix_date",
            any_of(&[0, 1]),
            Ret::Fixed(DataType::Int32),
            |a, t| match a.first() {
                None => Ok(ScalarValue::Int32(Some(
                    (now_millis().div_euclid(MILLIS_PER_DAY)) as i32,
                ))),
                Some(v) => match millis_like(v) {
                    Some(d) => Ok(ScalarValue::Int32(Some(d as i32))),
                    None => null_of(t),
                },
            },
        ),
        udf(
            "unix_timestamp",
            any_of(&[0, 1]),
            Ret::Fixed(DataType::Int64),
            |a, t| match a.first() {
                None => Ok(ScalarValue::Int64(Some(now_millis()))),
                Some(v) => match millis_like(v) {
                    Some(ms) => Ok(ScalarValue::Int64(Some(ms))),
                    None => null_of(t),
                },
            },
        ),
        udf(
            "from_days",
            any_of(&[1]),
            Ret::Fixed(DataType::Date32),
            |a, t| match integer(&a[0]) {
                Some(d) => Ok(ScalarValue::Date32(Some(d as i32))),
                None => null_of(t),
            },
        ),
        udf(
            "from_unixtime",
            any_of(&[1]),
            Ret::Fixed(ts_type()),
            |a, t| match integer(&a[0]) {
                Some(ms) => Ok(ScalarValue::TimestampMillisecond(Some(ms), None)),
                None => null_of(t),
            },
        ),
        udf("convert_tz", any_of(&[3]), Ret::Fixed(ts_type()), |a, t| {
            let (Some(ms), Some(from), Some(to)) = (millis_like(&a[0]), text(&a[1]), text(&a[2]))
            else {
                return null_of(t);
            };
            let from = Zone::parse(from).map_err(row_error)?;
            let to = Zone::parse(to).map_err(row_error)?;
            // The wall-clock time in `from`, read as a wall-clock time in `to`.
            let local = from
                .local_of(ms)
                .ok_or_else(|| row_error("timestamp out of range"))?;
            let utc_local = Zone::utc()
                .local_of(ms)
                .ok_or_else(|| row_error("timestamp out of range"))?;
            let shift = (local - utc_local).num_milliseconds();
            let to_local = to
                .local_of(ms)
                .ok_or_else(|| row_error("timestamp out of range"))?;
            let to_shift = (to_local - utc_local).num_milliseconds();
            Ok(ScalarValue::TimestampMillisecond(
                Some(ms + to_shift - shift),
                None,
            ))
        }),
        udf(
            "dateadd",
            any_of(&[3]),
            Ret::From(unit_first_date),
            |a, t| shift_date(a, t, 1),
        ),
        udf(
            "datesub",
            any_of(&[3]),
            Ret::From(unit_first_date),
            |a, t| shift_date(a, t, -1),
        ),
        udf(
            "timeadd",
            any_of(&[3]),
            Ret::From(unit_first_time),
            |a, t| shift_time(a, t, 1),
        ),
        udf(
            "timesub",
            any_of(&[3]),
            Ret::From(unit_first_time),
            |a, t| shift_time(a, t, -1),
        ),
        udf(
            "timestampadd",
            any_of(&[3]),
            Ret::From(unit_first_timestamp),
            |a, t| shift_timestamp(a, t, 1),
        ),
        udf(
            "timestampsub",
            any_of(&[3]),
            Ret::From(unit_first_timestamp),
            |a, t| shift_timestamp(a, t, -1),
        ),
    ]
}

/// The names whose first argument is a time unit written as a bare word (`DAYS`).
pub const UNIT_FIRST: &[&str] = &[
    "DATEADD",
    "DATESUB",
    "TIMEADD",
    "TIMESUB",
    "TIMESTAMPADD",
    "TIMESTAMPSUB",
];

/// `…ADD/…SUB(unit, n, x)`: the unit is a word (made a string by the planner) and `x` the
/// function's own kind; anything else is refused while planning, in ksqlDB's words.
fn unit_first(name: &str, args: &[DataType], kind: DataType) -> Result<DataType> {
    let accepted = args.len() == 3
        && matches!(
            args[0],
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        )
        && (args[2] == kind || args[2] == DataType::Null);
    if accepted {
        Ok(kind)
    } else {
        Err(not_accepted(name, args))
    }
}

fn unit_first_date(name: &str, args: &[DataType]) -> Result<DataType> {
    unit_first(name, args, DataType::Date32)
}
fn unit_first_time(name: &str, args: &[DataType]) -> Result<DataType> {
    unit_first(name, args, DataType::Time32(TimeUnit::Millisecond))
}
fn unit_first_timestamp(name: &str, args: &[DataType]) -> Result<DataType> {
    unit_first(name, args, ts_type())
}

/// Milliseconds in one `unit` (ksqlDB's TimeUnit names, singular or plural).
pub fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit.to_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => MILLIS_PER_DAY,
        _ => return None,
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A timestamp, date, time or integer argument as its number (millis, days or millis of day).
fn millis_like(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMillisecond(x, _) => *x,
        ScalarValue::TimestampSecond(x, _) => x.map(|s| s * 1000),
        ScalarValue::TimestampMicrosecond(x, _) => x.map(|us| us.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(x, _) => x.map(|ns| ns.div_euclid(1_000_000)),
        ScalarValue::Date32(x) => x.map(i64::from),
        ScalarValue::Time32Millisecond(x) => x.map(i64::from),
        other => integer(other),
    }
}

thread_local! {
    /// The last pattern compiled on this thread: queries use one or two patterns each.
    static LAST_PATTERN: RefCell<Option<(String, Pattern)>> = const { RefCell::new(None) };
}

/// Runs `f` with the compiled `pattern`, compiling it once per change.
fn with_pattern<T>(pattern: &str, f: impl FnOnce(&Pattern) -> Result<T, String>) -> Result<T> {
    LAST_PATTERN.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.as_ref().is_none_or(|(p, _)| p != pattern) {
            let compiled = Pattern::new(pattern).map_err(row_error)?;
            *cached = Some((pattern.to_string(), compiled));
        }
        let (_, compiled) = cached.as_ref().expect("just set");
        f(compiled).map_err(row_error)
    })
}

fn zone_arg(args: &[ScalarValue]) -> Result<Zone> {
    match args.get(2).and_then(text) {
        Some(z) => Zone::parse(z).map_err(row_error),
        None => Ok(Zone::utc()),
    }
}

fn parse_millis(
    a: &[ScalarValue],
    t: &DataType,
    wrap: fn(i64) -> ScalarValue,
) -> Result<ScalarValue> {
    let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
        return null_of(t);
    };
    let zone = zone_arg(a)?;
    Ok(wrap(with_pattern(p, |p| p.parse_millis(s, &zone))?))
}

fn format_millis(a: &[ScalarValue], t: &DataType) -> Result<ScalarValue> {
    let (Some(ms), Some(p)) = (millis_like(&a[0]), text(&a[1])) else {
        return null_of(t);
    };
    let zone = zone_arg(a)?;
    Ok(ScalarValue::Utf8(Some(with_pattern(p, |p| {
        p.format_millis(ms, &zone)
    })?)))
}

fn parse_days(
    a: &[ScalarValue],
    t: &DataType,
    wrap: fn(i32) -> ScalarValue,
) -> Result<ScalarValue> {
    let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
        return null_of(t);
    };
    Ok(wrap(with_pattern(p, |p| p.parse_days(s))?))
}

fn format_days(a: &[ScalarValue], t: &DataType) -> Result<ScalarValue> {
    let (Some(d), Some(p)) = (millis_like(&a[0]), text(&a[1])) else {
        return null_of(t);
    };
    Ok(ScalarValue::Utf8(Some(with_pattern(p, |p| {
        p.format_days(d as i32)
    })?)))
}

/// The unit's milliseconds and the signed amount of a `…ADD/…SUB(unit, n, x)` call.
/// `…ADD/…SUB(unit, n, x)`: `apply(x, shift in milliseconds)`, null when `n` or `x` is.
fn shift(
    a: &[ScalarValue],
    t: &DataType,
    sign: i64,
    apply: fn(i64, i64) -> Result<ScalarValue>,
) -> Result<ScalarValue> {
    let unit = text(&a[0]).ok_or_else(|| row_error("the first argument must be a time unit"))?;
    let unit = unit_millis(unit).ok_or_else(|| row_error(format!("Unknown time unit: {unit}")))?;
    let (Some(n), Some(x)) = (integer(&a[1]), millis_like(&a[2])) else {
        return null_of(t);
    };
    let millis = n
        .checked_mul(unit * sign)
        .ok_or_else(|| row_error("the shift is out of range"))?;
    apply(x, millis)
}

fn shift_date(a: &[ScalarValue], t: &DataType, sign: i64) -> Result<ScalarValue> {
    shift(a, t, sign, |days, millis| {
        let shifted = date_from_days(days as i32)
            .and_then(|d| d.checked_add_signed(chrono::Duration::try_milliseconds(millis)?))
            .ok_or_else(|| row_error("date out of range"))?;
        Ok(ScalarValue::Date32(Some(days_of(shifted))))
    })
}

fn shift_time(a: &[ScalarValue], t: &DataType, sign: i64) -> Result<ScalarValue> {
    // A time of day wraps around midnight.
    shift(a, t, sign, |ms, millis| {
        let shifted = (ms + millis % MILLIS_PER_DAY).rem_euclid(MILLIS_PER_DAY);
        Ok(ScalarValue::Time32Millisecond(Some(shifted as i32)))
    })
}

fn shift_timestamp(a: &[ScalarValue], t: &DataType, sign: i64) -> Result<ScalarValue> {
    shift(a, t, sign, |ms, millis| {
        let shifted = ms
            .checked_add(millis)
            .ok_or_else(|| row_error("timestamp out of range"))?;
        Ok(ScalarValue::TimestampMillisecond(Some(shifted), None))
    })
}
