//! `LOG(x)` (natural logarithm, as ksqlDB; DataFusion's one-argument `log` is base 10) and
//! `LOG(base, x)` computed as Java's `Math.log(x) / Math.log(base)`, so NaN and infinities
//! come out where ksqlDB's do; `SQRT` as Java's.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use super::row_udf::{Ret, any_of, null_of, udf};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "log",
            any_of(&[1, 2]),
            Ret::Fixed(DataType::Float64),
            |a, t| {
                let values: Option<Vec<f64>> = a.iter().map(float).collect();
                let Some(v) = values else {
                    return null_of(t);
                };
                let result = match v.as_slice() {
                    [x] => x.ln(),
                    // ksqlDB answers NaN for a base that is not positive, or is 1.
                    [base, _] if *base <= 0.0 || *base == 1.0 => f64::NAN,
                    [base, x] => x.ln() / base.ln(),
                    _ => return null_of(t),
                };
                Ok(ScalarValue::Float64(Some(result)))
            },
        ),
        // Java's Math.sqrt: NaN below zero, where DataFusion's answers null.
        udf(
            "sqrt",
            any_of(&[1]),
            Ret::Fixed(DataType::Float64),
            |a, t| match float(&a[0]) {
                Some(x) => Ok(ScalarValue::Float64(Some(x.sqrt()))),
                None => null_of(t),
            },
        ),
    ]
}

/// A numeric argument as a double; `None` when null.
pub(crate) fn float(v: &ScalarValue) -> Option<f64> {
    match v.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(x) => x,
        _ => None,
    }
}
