//! `TO_JSON_STRING(x)`: any value as JSON text, written as the JSON format writes it
//! (strings quoted, structs as objects, doubles as Java prints them); null as `null`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, Date32Array, StringBuilder, Time32MillisecondArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::format::json::value_json;
use crate::schema::sql_type;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToJsonString {
    signature: Signature,
}

impl ToJsonString {
    pub fn new() -> Self {
        ToJsonString {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToJsonString {
    fn name(&self) -> &str {
        "to_json_string"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arg = args
            .args
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Plan("TO_JSON_STRING takes one argument".into()))?;
        let array = arg.into_array(rows)?;
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let mut text = String::new();
        if array.data_type() == &DataType::Null {
            for _ in 0..rows {
                out.append_value("null");
            }
            return Ok(ColumnarValue::Array(Arc::new(out.finish())));
        }
        let ty = sql_type(array.data_type()).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "TO_JSON_STRING does not support {}",
                array.data_type()
            ))
        })?;
        for row in 0..rows {
            text.clear();
            if let Some(t) = temporal_text(array.as_ref(), row) {
                text.push('"');
                text.push_str(&t);
                text.push('"');
            } else {
                value_json(&mut text, &ty, array.as_ref(), row)
                    .map_err(|e| DataFusionError::Execution(e.to_string()))?;
            }
            out.append_value(&text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// DATE, TIME and TIMESTAMP as ksqlDB's TO_JSON_STRING writes them: ISO-8601 text.
fn temporal_text(array: &dyn Array, row: usize) -> Option<String> {
    use datafusion::arrow::temporal_conversions as tc;
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Date32Array>() {
        return tc::date32_to_datetime(a.value(row)).map(|d| d.format("%Y-%m-%d").to_string());
    }
    if let Some(a) = any.downcast_ref::<Time32MillisecondArray>() {
        return tc::time32ms_to_time(a.value(row)).map(|t| t.format("%H:%M:%S%.f").to_string());
    }
    if let Some(a) = any.downcast_ref::<TimestampMillisecondArray>() {
        return tc::timestamp_ms_to_datetime(a.value(row))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string());
    }
    None
}
