//! Table functions: `EXPLODE(array)` in a projection turns one input row into one output row
//! per element. Several table functions in one projection advance together (ksqlDB zips
//! them): a row yields as many rows as its longest array, shorter ones padded with null.
//! Other columns, and the input columns the row came from, are repeated.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;

use crate::engine::EngineError;

/// Applies the table functions: `exploded[i]` says output column `i` holds the arrays to
/// explode. Returns the input rows and the output columns, one row per element.
pub(crate) fn explode(
    batch: &RecordBatch,
    outputs: Vec<ArrayRef>,
    exploded: &[bool],
) -> Result<(RecordBatch, Vec<ArrayRef>), EngineError> {
    let rows = batch.num_rows();
    // Per exploded column: (start offset, length) of each row's array.
    let mut spans: Vec<Vec<(usize, usize)>> = Vec::new();
    for (a, _) in outputs.iter().zip(exploded).filter(|(_, e)| **e) {
        let list = match a.data_type() {
            DataType::List(_) => a.as_list::<i32>(),
            other => {
                return Err(EngineError(format!("EXPLODE needs an ARRAY, got {other}")));
            }
        };
        let offsets = list.value_offsets();
        spans.push(
            (0..rows)
                .map(|r| {
                    if list.is_null(r) {
                        (0, 0)
                    } else {
                        let start = offsets[r] as usize;
                        (start, offsets[r + 1] as usize - start)
                    }
                })
                .collect(),
        );
    }
    let counts: Vec<usize> = (0..rows)
        .map(|r| spans.iter().map(|s| s[r].1).max().unwrap_or(0))
        .collect();
    let repeat: UInt32Array = counts
        .iter()
        .enumerate()
        .flat_map(|(r, &n)| std::iter::repeat_n(r as u32, n))
        .collect();
    let batch = take_batch(batch, &repeat)?;
    let mut next_span = spans.iter();
    let mut out = Vec::with_capacity(outputs.len());
    for (a, is_exploded) in outputs.iter().zip(exploded) {
        if !is_exploded {
            out.push(take(a.as_ref(), &repeat, None)?);
            continue;
        }
        let span = next_span
            .next()
            .ok_or_else(|| EngineError("table function columns out of step".into()))?;
        let elements: UInt32Array = counts
            .iter()
            .enumerate()
            .flat_map(|(r, &n)| {
                let (start, len) = span[r];
                (0..n).map(move |j| (j < len).then_some((start + j) as u32))
            })
            .collect();
        let values = a.as_list::<i32>().values();
        out.push(take(values.as_ref(), &elements, None)?);
    }
    Ok((batch, out))
}

fn take_batch(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch, EngineError> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array, ListArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;

    #[test]
    fn zips_arrays_and_repeats_the_rest() {
        let schema = Arc::new(Schema::new(vec![Field::new("ID", DataType::Int32, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2, 3]))]).unwrap();
        let a = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(10), Some(11)]),
            None,
            Some(vec![Some(30)]),
        ]);
        let b = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(7)]),
            Some(vec![]),
            Some(vec![Some(8), Some(9)]),
        ]);
        let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let (rows, out) = explode(
            &batch,
            vec![ids, Arc::new(a), Arc::new(b)],
            &[false, true, true],
        )
        .unwrap();
        assert_eq!(rows.num_rows(), 4);
        assert_eq!(
            out[0].as_ref(),
            &Int32Array::from(vec![1, 1, 3, 3]) as &dyn Array
        );
        assert_eq!(
            out[1].as_ref(),
            &Int64Array::from(vec![Some(10), Some(11), Some(30), None]) as &dyn Array
        );
        assert_eq!(
            out[2].as_ref(),
            &Int64Array::from(vec![Some(7), None, Some(8), Some(9)]) as &dyn Array
        );
    }
}
