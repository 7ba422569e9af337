//! `ROUND(x [, places])` as ksqlDB computes it: without places a DOUBLE rounds to a BIGINT
//! the way Java's `Math.round` does (half up, towards positive infinity), integers stay as
//! they are and a DECIMAL keeps its type at scale 0 of its digits; with places, halves
//! round away from zero (`RoundingMode.HALF_UP`) on the decimal text of a DOUBLE (as
//! `BigDecimal.valueOf` sees it), and a DECIMAL keeps its scale. `TRUNC` has the same
//! types and drops the digits instead of rounding them (`RoundingMode.DOWN`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Round {
    signature: Signature,
    /// TRUNC rather than ROUND.
    truncate: bool,
}

impl Round {
    pub fn new() -> Self {
        Round {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
            truncate: false,
        }
    }

    pub fn trunc() -> Self {
        Round {
            truncate: true,
            ..Round::new()
        }
    }

    /// How the dropped digits move what is kept, for a value of this sign.
    fn mode(&self, negative: bool) -> Rounding {
        match (self.truncate, negative) {
            (true, _) => Rounding::Down,
            (false, false) => Rounding::HalfAway,
            (false, true) => Rounding::HalfTowardZero,
        }
    }
}

/// How dropped digits move the kept ones.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rounding {
    HalfAway,
    HalfTowardZero,
    Down,
}

fn plan_error<T>(msg: &str) -> Result<T> {
    Err(DataFusionError::Plan(msg.to_string()))
}

impl ScalarUDFImpl for Round {
    fn name(&self) -> &str {
        if self.truncate { "trunc" } else { "round" }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (args.first(), args.len()) {
            (Some(DataType::Float64 | DataType::Float32), 1) => Ok(DataType::Int64),
            (Some(DataType::Float64 | DataType::Float32), 2) => Ok(DataType::Float64),
            (Some(DataType::Decimal128(p, s)), 1) => Ok(DataType::Decimal128(
                (*p as i16 - *s as i16 + 1).clamp(1, 38) as u8,
                0,
            )),
            (Some(t @ (DataType::Int32 | DataType::Int64 | DataType::Decimal128(..))), _) => {
                Ok(t.clone())
            }
            (Some(DataType::Int8 | DataType::Int16), _) => Ok(DataType::Int32),
            (Some(DataType::Null), _) => Ok(DataType::Int64),
            _ => plan_error("Function 'ROUND' does not accept these parameters"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut it = args.args.into_iter();
        let x = it
            .next()
            .ok_or_else(|| DataFusionError::Plan("ROUND takes an argument".into()))?
            .into_array(rows)?;
        let places: Option<Vec<Option<i32>>> = match it.next() {
            None => None,
            Some(p) => {
                let p = datafusion::arrow::compute::cast(&p.into_array(rows)?, &DataType::Int32)?;
                let p = p.as_primitive::<Int32Type>();
                Some(
                    (0..rows)
                        .map(|r| (!p.is_null(r)).then(|| p.value(r)))
                        .collect(),
                )
            }
        };
        let place = |r: usize| places.as_ref().map(|p| p[r]);
        let out: ArrayRef = match x.data_type() {
            DataType::Float64 | DataType::Float32 => {
                let x = datafusion::arrow::compute::cast(&x, &DataType::Float64)?;
                let x = x.as_primitive::<Float64Type>();
                if places.is_none() {
                    Arc::new(
                        (0..rows)
                            .map(|r| {
                                (!x.is_null(r)).then(|| {
                                    if self.truncate {
                                        x.value(r).trunc() as i64
                                    } else {
                                        java_math_round(x.value(r))
                                    }
                                })
                            })
                            .collect::<Int64Array>(),
                    )
                } else {
                    Arc::new(
                        (0..rows)
                            .map(|r| match (x.is_null(r), place(r).flatten()) {
                                (false, Some(n)) => {
                                    let v = x.value(r);
                                    Some(round_double(v, n, self.mode(v < 0.0)))
                                }
                                _ => None,
                            })
                            .collect::<Float64Array>(),
                    )
                }
            }
            t @ (DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => {
                let out_type = if *t == DataType::Int64 {
                    DataType::Int64
                } else {
                    DataType::Int32
                };
                let x = datafusion::arrow::compute::cast(&x, &DataType::Int64)?;
                let x = x.as_primitive::<Int64Type>();
                let rounded: Int64Array = (0..rows)
                    .map(|r| match (x.is_null(r), place(r)) {
                        (true, _) | (false, Some(None)) => None,
                        (false, p) => Some(round_to(
                            x.value(r) as i128,
                            p.flatten().unwrap_or(0),
                            self.mode(false).away_if_unsigned(),
                        ) as i64),
                    })
                    .collect();
                datafusion::arrow::compute::cast(&rounded, &out_type)?
            }
            DataType::Decimal128(precision, scale) => {
                let x = x.as_primitive::<Decimal128Type>();
                let scale = *scale as i32;
                let a: Decimal128Array = (0..rows)
                    .map(|r| match (x.is_null(r), place(r)) {
                        (true, _) | (false, Some(None)) => None,
                        // No places: to a whole number, at scale 0.
                        (false, None) => Some(
                            round_to(x.value(r), -scale, self.mode(false).away_if_unsigned())
                                / 10i128.pow(scale.max(0) as u32),
                        ),
                        (false, Some(Some(n))) => Some(round_to(
                            x.value(r),
                            n - scale,
                            self.mode(false).away_if_unsigned(),
                        )),
                    })
                    .collect();
                if places.is_none() {
                    let p = (*precision as i32 - scale + 1).clamp(1, 38) as u8;
                    Arc::new(a.with_precision_and_scale(p, 0)?)
                } else {
                    Arc::new(a.with_precision_and_scale(*precision, scale as i8)?)
                }
            }
            DataType::Null => Arc::new(Int64Array::new_null(rows)),
            other => {
                return plan_error(&format!("Function 'ROUND' does not accept {other}"));
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Java's `Math.round(double)`: the nearest long, halves towards positive infinity; NaN is 0.
fn java_math_round(x: f64) -> i64 {
    if x.is_nan() {
        0
    } else {
        (x + 0.5).floor() as i64
    }
}

impl Rounding {
    /// For signed integers and decimals, where ROUND's halves always go away from zero.
    fn away_if_unsigned(self) -> Rounding {
        match self {
            Rounding::Down => Rounding::Down,
            _ => Rounding::HalfAway,
        }
    }
}

/// `v` (an unscaled integer) rounded half away from zero to `places` digits after the
/// point, kept at its own scale: `places` >= 0 leaves it; -1 rounds to tens, and so on.
#[cfg(test)]
fn round_integer(v: i128, places: i32) -> i128 {
    round_to(v, places, Rounding::HalfAway)
}

/// `v` rounded to `places` digits after the point, kept at its own scale.
fn round_to(v: i128, places: i32, mode: Rounding) -> i128 {
    if places >= 0 {
        return v;
    }
    let Some(unit) = 10i128.checked_pow((-places) as u32) else {
        return 0;
    };
    let q = v / unit;
    let r = (v % unit).abs() * 2;
    let up = match mode {
        Rounding::HalfAway => r >= unit,
        Rounding::HalfTowardZero => r > unit,
        Rounding::Down => false,
    };
    let q = if up { q + v.signum() } else { q };
    q.saturating_mul(unit)
}

/// A DOUBLE rounded to `places` on its shortest decimal text as `mode` says (ROUND's halves
/// go towards positive infinity as in ksqlDB: `ROUND(-1.5, 0)` is -1).
fn round_double(x: f64, places: i32, mode: Rounding) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Shortest text that reads back as x (what BigDecimal.valueOf uses), without exponent.
    let text = format!("{x}");
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.as_str()),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all: String = format!("{int_part}{frac_part}");
    let Ok(unscaled) = all.parse::<i128>() else {
        return x;
    };
    let scale = frac_part.len() as i32;
    // The digits are unsigned here: the mode already says where a negative's halves go.
    let rounded = round_to(unscaled, places - scale, mode);
    let value = rounded as f64 / 10f64.powi(scale);
    let value = format!("{value:.prec$}", prec = places.max(0) as usize)
        .parse::<f64>()
        .unwrap_or(value);
    if neg { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_as_ksqldb() {
        assert_eq!(java_math_round(1.5), 2);
        assert_eq!(java_math_round(-2.5), -2);
        assert_eq!(java_math_round(-2.6), -3);
        assert_eq!(round_double(1.005, 2, Rounding::HalfAway), 1.01);
        assert_eq!(round_double(-2.345, 2, Rounding::HalfTowardZero), -2.34);
        assert_eq!(round_double(-1.5, 0, Rounding::HalfTowardZero), -1.0);
        assert_eq!(round_double(-1.51, 0, Rounding::HalfTowardZero), -2.0);
        assert_eq!(round_double(1234.5, -2, Rounding::HalfAway), 1200.0);
        assert_eq!(round_double(0.5, 0, Rounding::HalfAway), 1.0);
        assert_eq!(round_integer(125, -1), 130);
        assert_eq!(round_integer(-125, -1), -130);
        assert_eq!(round_integer(124, -1), 120);
        assert_eq!(round_double(1.234567, 2, Rounding::Down), 1.23);
        assert_eq!(round_to(-129, -1, Rounding::Down), -120);
    }
}
