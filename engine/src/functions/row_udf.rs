//! A scalar function defined one row at a time over `ScalarValue`s: how ksqlDB's many small
//! functions (date parsing, JSON, URL, bytes) are written here. Each row's arguments are read
//! from the argument arrays and the results collected into one array of the declared type.
//! Made for functions whose own work (parsing a date, a URL, a JSON text) outweighs the
//! per-row value handling; hot arithmetic belongs in vectorised kernels instead.

use std::hash::{Hash, Hasher};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The result type: fixed, or computed from the function's name and argument types.
#[derive(Debug, Clone)]
pub enum Ret {
    Fixed(DataType),
    From(fn(&str, &[DataType]) -> Result<DataType>),
}
/// One row: the arguments and the declared result type; a null result must be of that type.
pub type Eval = fn(&[ScalarValue], &DataType) -> Result<ScalarValue>;

#[derive(Debug)]
pub struct RowUdf {
    name: &'static str,
    signature: Signature,
    return_type: Ret,
    eval: Eval,
}

impl PartialEq for RowUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowUdf {}
impl Hash for RowUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

/// A row-at-a-time function `name` taking `signature`.
pub fn udf(name: &'static str, signature: Signature, return_type: Ret, eval: Eval) -> ScalarUDF {
    ScalarUDF::from(RowUdf {
        name,
        signature,
        return_type,
        eval,
    })
}

/// A signature accepting any of `arities` arguments of any type (the function checks them).
pub fn any_of(arities: &[usize]) -> Signature {
    Signature::one_of(
        arities
            .iter()
            .map(|&n| match n {
                0 => datafusion::logical_expr::TypeSignature::Nullary,
                n => datafusion::logical_expr::TypeSignature::Any(n),
            })
            .collect(),
        Volatility::Immutable,
    )
}

/// ksqlDB's error for arguments a function does not take: `Function 'f' does not accept
/// parameters (TIME, INTEGER, TIME).`
pub fn not_accepted(name: &str, args: &[DataType]) -> DataFusionError {
    let types: Vec<String> = args.iter().map(crate::schema::type_name).collect();
    DataFusionError::Plan(format!(
        "Function '{name}' does not accept parameters ({}).",
        types.join(", ")
    ))
}

/// An error for a row: the query logs the record and goes on.
pub fn row_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Execution(message.into())
}

/// The text of a string argument, `None` when null or not a string.
pub fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.as_deref(),
        _ => None,
    }
}

/// An integer argument, `None` when null or not an integer.
pub fn integer(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(x) => x.map(i64::from),
        ScalarValue::Int16(x) => x.map(i64::from),
        ScalarValue::Int32(x) => x.map(i64::from),
        ScalarValue::Int64(x) => *x,
        ScalarValue::UInt8(x) => x.map(i64::from),
        ScalarValue::UInt16(x) => x.map(i64::from),
        ScalarValue::UInt32(x) => x.map(i64::from),
        ScalarValue::UInt64(x) => x.and_then(|x| i64::try_from(x).ok()),
        _ => None,
    }
}

/// The null of `ty`.
pub fn null_of(ty: &DataType) -> Result<ScalarValue> {
    ScalarValue::try_from(ty)
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &self.return_type {
            Ret::Fixed(t) => Ok(t.clone()),
            Ret::From(f) => f(self.name, args),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ty = args.return_field.data_type().clone();
        let rows = args.number_rows;
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            let values: Vec<ScalarValue> = args
                .args
                .into_iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s,
                    ColumnarValue::Array(_) => unreachable!("checked above"),
                })
                .collect();
            return Ok(ColumnarValue::Scalar((self.eval)(&values, &ty)?));
        }
        let arrays = args
            .args
            .into_iter()
            .map(|a| a.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut row = Vec::with_capacity(arrays.len());
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            row.clear();
            for a in &arrays {
                row.push(ScalarValue::try_from_array(a, r)?);
            }
            out.push((self.eval)(&row, &ty)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&ty),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}
