//! Keeping a batch's rows where a mask is true (WHERE), without copying what a filter
//! cannot change: a column that is nulls throughout (a join's columns the query never
//! reads) is cut to the kept length instead of being filtered row by row.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::FilterBuilder;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::engine::EngineError;

/// The rows of `batch` where `mask` is true (null counts as false), as
/// `filter_record_batch` keeps them.
pub(crate) fn keep_rows(
    batch: &RecordBatch,
    mask: &BooleanArray,
) -> Result<RecordBatch, EngineError> {
    let predicate = FilterBuilder::new(mask).optimize().build();
    let kept = predicate.count();
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if !c.is_empty() && c.null_count() == c.len() {
                Ok(c.slice(0, kept))
            } else {
                predicate.filter(c.as_ref())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(kept));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(&batch.schema()),
        columns,
        &options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray, new_null_array};
    use datafusion::arrow::compute::filter_record_batch;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn keeps_what_filter_record_batch_keeps() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("unread", DataType::Utf8, true),
            Field::new("empty_ints", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    None,
                    Some(3),
                    Some(4),
                    Some(5),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    None,
                    Some("d"),
                    None,
                ])),
                new_null_array(&DataType::Utf8, 5),
                new_null_array(&DataType::Int64, 5),
            ],
        )
        .unwrap();
        let masks = [
            BooleanArray::from(vec![true, false, true, false, true]),
            BooleanArray::from(vec![Some(true), None, Some(false), Some(true), None]),
            BooleanArray::from(vec![false; 5]),
            BooleanArray::from(vec![true; 5]),
        ];
        for mask in &masks {
            let ours = keep_rows(&batch, mask).unwrap();
            let theirs = filter_record_batch(&batch, mask).unwrap();
            assert_eq!(ours, theirs, "mask {mask:?}");
        }
        let empty = batch.slice(0, 0);
        let none = BooleanArray::from(Vec::<bool>::new());
        assert_eq!(
            keep_rows(&empty, &none).unwrap(),
            filter_record_batch(&empty, &none).unwrap()
        );
    }
}
