//! Record time taken from a column (`WITH (TIMESTAMP='col' [, TIMESTAMP_FORMAT='…'])`): on a
//! source it becomes ROWTIME of each record read, on a sink the timestamp of each record
//! written. A BIGINT column holds epoch milliseconds, a TIMESTAMP column its instant, a
//! STRING column text in the given Java pattern. A record whose time is null, negative or
//! unreadable has no valid time: ksqlDB skips it and logs it, and so does Sluice.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use sluice_sql::SqlType;

use crate::EngineError;
use crate::catalog::{Column, TimestampColumn};
use crate::functions::java_time::{Pattern, Zone};

/// Checks a TIMESTAMP property against the columns it names, in ksqlDB's words.
pub fn check(spec: &TimestampColumn, columns: &[Column]) -> Result<(), EngineError> {
    let Some(column) = columns.iter().find(|c| c.name == spec.column) else {
        return Err(EngineError(format!(
            "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{}'",
            spec.column
        )));
    };
    let fits = match column.ty {
        SqlType::Bigint | SqlType::Timestamp => true,
        SqlType::String => spec.format.is_some(),
        _ => false,
    };
    if !fits {
        return Err(EngineError(format!(
            "Timestamp column, `{}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified",
            spec.column
        )));
    }
    if let Some(f) = &spec.format {
        Pattern::new(f).map_err(|e| EngineError(format!("Invalid timestamp format: {e}")))?;
    }
    Ok(())
}

/// Per row of `array` (the timestamp column), its time in epoch milliseconds or why it has
/// none.
pub fn extract(array: &ArrayRef, spec: &TimestampColumn) -> Vec<Result<i64, String>> {
    let invalid = |row: usize| {
        Err(format!(
            "Invalid timestamp in column {} (row {row}): must be a non-negative time",
            spec.column
        ))
    };
    let check = |row: usize, ms: i64| if ms < 0 { invalid(row) } else { Ok(ms) };
    let n = array.len();
    match array.data_type() {
        // Epoch milliseconds, as a BIGINT or a TIMESTAMP holds them.
        DataType::Int64 | DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let millis = match cast(array, &DataType::Int64) {
                Ok(m) => m,
                Err(e) => return (0..n).map(|_| Err(e.to_string())).collect(),
            };
            let a = millis.as_primitive::<Int64Type>();
            (0..n)
                .map(|r| {
                    if a.is_null(r) {
                        invalid(r)
                    } else {
                        check(r, a.value(r))
                    }
                })
                .collect()
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let pattern = spec.format.as_deref().map(Pattern::new);
            let zone = Zone::utc();
            (0..n)
                .map(|r| {
                    if a.is_null(r) {
                        return invalid(r);
                    }
                    match &pattern {
                        Some(Ok(p)) => p
                            .parse_millis(a.value(r), &zone)
                            .and_then(|ms| check(r, ms)),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err("a STRING timestamp column needs TIMESTAMP_FORMAT".into()),
                    }
                })
                .collect()
        }
        other => (0..n)
            .map(|_| Err(format!("a {other} column cannot hold timestamps")))
            .collect(),
    }
}
