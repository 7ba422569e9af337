//! `ELT(n, s1, s2, …)`: the n-th string (1-based), null when n is out of range or null.
//! `FIELD(s, s1, s2, …)`: the 1-based position of s among the others, 0 when absent or s is
//! null. They undo each other, as in ksqlDB.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The arguments as arrays: the first cast to `first`, the rest to strings.
fn arrays(args: ScalarFunctionArgs, first: &DataType) -> Result<(ArrayRef, Vec<ArrayRef>, usize)> {
    let rows = args.number_rows;
    let mut all = args
        .args
        .into_iter()
        .map(|a| a.into_array(rows))
        .collect::<Result<Vec<_>>>()?;
    if all.is_empty() {
        return Err(DataFusionError::Plan(
            "expects at least one argument".into(),
        ));
    }
    let head = cast(&all.remove(0), first)?;
    let rest = all
        .iter()
        .map(|a| cast(a, &DataType::Utf8))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((head, rest, rows))
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Elt {
    signature: Signature,
}

impl Elt {
    pub fn new() -> Self {
        Elt {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Elt {
    fn name(&self) -> &str {
        "elt"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (n, strings, rows) = arrays(args, &DataType::Int32)?;
        let n = n.as_primitive::<Int32Type>();
        let out: StringArray = (0..rows)
            .map(|r| {
                if n.is_null(r) || n.value(r) < 1 {
                    return None;
                }
                let s = strings.get(n.value(r) as usize - 1)?.as_string::<i32>();
                (!s.is_null(r)).then(|| s.value(r).to_string())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Field {
    signature: Signature,
}

impl Field {
    pub fn new() -> Self {
        Field {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Field {
    fn name(&self) -> &str {
        "field"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (wanted, strings, rows) = arrays(args, &DataType::Utf8)?;
        let wanted = wanted.as_string::<i32>();
        let out: Int32Array = (0..rows)
            .map(|r| {
                if wanted.is_null(r) {
                    return Some(0);
                }
                let pos = strings.iter().position(|s| {
                    let s = s.as_string::<i32>();
                    !s.is_null(r) && s.value(r) == wanted.value(r)
                });
                Some(pos.map_or(0, |p| p as i32 + 1))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
