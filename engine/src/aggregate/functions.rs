//! ksqlDB's aggregate functions (COUNT, SUM, AVG, MIN, MAX, COLLECT_LIST, TOPK, …) as
//! accumulators the streaming aggregation updates one input row at a time. Each function
//! resolves against its argument types to a `Aggregate`: the result type, the types of the
//! state it checkpoints, and a factory for fresh accumulators. Accumulators that can take a
//! row back (`undo`) may aggregate a table's changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;

/// One group's running aggregate of one function.
pub(crate) trait Accumulator: Send {
    /// Adds row `row` of the argument arrays.
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String>;
    /// Takes back a row added earlier (a table row that changed or went away).
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String>;
    /// `undo` of one row given as values (a table row's stored arguments). By default they
    /// become one-row arrays; the common accumulators read the values as they are.
    fn undo_values(&mut self, args: &[ScalarValue]) -> Result<(), String> {
        let arrays = args
            .iter()
            .map(|v| v.to_array().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        self.undo(&arrays, 0)
    }
    /// The aggregate's current result.
    fn value(&self) -> ScalarValue;
    /// The state to checkpoint, one value per `Aggregate::state_types`.
    fn state(&self) -> Vec<ScalarValue>;
    /// Folds a checkpointed (or another window's) state into this one.
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String>;
}

use super::accumulators::*;

type Factory = Arc<dyn Fn() -> Box<dyn Accumulator> + Send + Sync>;

/// A resolved aggregate function: what it returns and how to make its accumulators.
#[derive(Clone)]
pub(crate) struct Aggregate {
    pub return_type: DataType,
    pub state_types: Vec<DataType>,
    /// Whether its accumulators can `undo` (aggregating a table needs it).
    pub undoable: bool,
    make: Factory,
}

impl Aggregate {
    pub fn accumulator(&self) -> Box<dyn Accumulator> {
        (self.make)()
    }
}

/// Whether `name` is an aggregate function.
pub(crate) fn is_aggregate(name: &str) -> bool {
    NAMES.contains(&name.to_uppercase().as_str())
}

const NAMES: &[&str] = &[
    "COUNT",
    "COUNT_DISTINCT",
    "SUM",
    "SUM_LIST",
    "AVG",
    "MIN",
    "MAX",
    "COLLECT_LIST",
    "COLLECT_SET",
    "TOPK",
    "TOPKDISTINCT",
    "EARLIEST_BY_OFFSET",
    "LATEST_BY_OFFSET",
    "HISTOGRAM",
    "STDDEV_SAMP",
    "STDDEV_SAMPLE",
    "CORRELATION",
    "ATTR",
];

/// Limits the session's properties set on collecting aggregates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub collect_list: usize,
    pub collect_set: usize,
}

impl Default for Limits {
    /// ksqlDB's defaults (`ksql.functions.collect_list.limit`, `….collect_set.limit`).
    fn default() -> Self {
        Limits {
            collect_list: COLLECT_LIMIT,
            collect_set: COLLECT_LIMIT,
        }
    }
}

impl Limits {
    fn collect(self, distinct: bool) -> usize {
        if distinct {
            self.collect_set
        } else {
            self.collect_list
        }
    }
}

/// Resolves `name` over columns of `args` types, with `params` the literal arguments that
/// follow them (TOPK's k, EARLIEST_BY_OFFSET's n and ignore-nulls flag).
pub(crate) fn resolve(
    name: &str,
    args: &[DataType],
    params: &[ScalarValue],
    limits: Limits,
) -> Result<Aggregate, String> {
    let upper = name.to_uppercase();
    let first = args.first().cloned();
    let agg = |ret: DataType, state: Vec<DataType>, undoable: bool, make: Factory| Aggregate {
        return_type: ret,
        state_types: state,
        undoable,
        make,
    };
    let param_int = |i: usize, default: i64| -> Result<i64, String> {
        match params.get(i) {
            None => Ok(default),
            Some(ScalarValue::Int64(Some(v))) => Ok(*v),
            Some(ScalarValue::Int32(Some(v))) => Ok(*v as i64),
            Some(other) => Err(format!("{upper}: expected an integer literal, got {other}")),
        }
    };
    let param_bool = |i: usize, default: bool| -> Result<bool, String> {
        match params.get(i) {
            None => Ok(default),
            Some(ScalarValue::Boolean(Some(v))) => Ok(*v),
            Some(other) => Err(format!("{upper}: expected a boolean literal, got {other}")),
        }
    };
    let no_args = || format!("Function '{upper}' does not accept parameters ().");
    Ok(match upper.as_str() {
        "COUNT" => {
            let counts_rows = args.is_empty();
            agg(
                DataType::Int64,
                vec![DataType::Int64],
                true,
                Arc::new(move || Box::new(Count { n: 0, counts_rows })),
            )
        }
        "SUM" => {
            let t = first.ok_or_else(no_args)?;
            let kind = NumKind::of(&t).ok_or_else(|| unsupported(&upper, &t))?;
            let ret = t.clone();
            agg(
                ret.clone(),
                vec![ret.clone()],
                true,
                Arc::new(move || Box::new(Sum::new(kind, ret.clone()))),
            )
        }
        "SUM_LIST" => {
            let t = first.ok_or_else(no_args)?;
            let element = match &t {
                DataType::List(f)
                    if matches!(
                        f.data_type(),
                        DataType::Int32 | DataType::Int64 | DataType::Float64
                    ) =>
                {
                    f.data_type().clone()
                }
                _ => return Err(unsupported(&upper, &t)),
            };
            agg(
                element.clone(),
                vec![element.clone()],
                true,
                Arc::new(move || {
                    Box::new(SumList {
                        int: 0,
                        float: 0.0,
                        element: element.clone(),
                    })
                }),
            )
        }
        "AVG" => {
            let t = first.ok_or_else(no_args)?;
            let kind = NumKind::of(&t).ok_or_else(|| unsupported(&upper, &t))?;
            agg(
                DataType::Float64,
                vec![DataType::Float64, DataType::Int64],
                true,
                Arc::new(move || {
                    Box::new(Avg {
                        kind,
                        sum: 0.0,
                        count: 0,
                    })
                }),
            )
        }
        "MIN" | "MAX" => {
            let t = first.ok_or_else(no_args)?;
            if !orderable(&t) {
                return Err(unsupported(&upper, &t));
            }
            let want_max = upper == "MAX";
            let t2 = t.clone();
            agg(
                t.clone(),
                vec![t],
                false,
                Arc::new(move || {
                    Box::new(Extreme {
                        best: None,
                        want_max,
                        null: ScalarValue::try_from(&t2).unwrap_or(ScalarValue::Null),
                    })
                }),
            )
        }
        "COLLECT_LIST" | "COLLECT_SET" => {
            let t = first.ok_or_else(no_args)?;
            let list = DataType::List(Arc::new(Field::new("item", t.clone(), true)));
            let distinct = upper == "COLLECT_SET";
            let limit = limits.collect(distinct);
            let t2 = t.clone();
            agg(
                list.clone(),
                vec![list],
                true,
                Arc::new(move || {
                    Box::new(Collect {
                        limit,
                        items: Vec::new(),
                        distinct,
                        item_type: t2.clone(),
                    })
                }),
            )
        }
        "COUNT_DISTINCT" => {
            let t = first.ok_or_else(no_args)?;
            let list = DataType::List(Arc::new(Field::new("item", t.clone(), true)));
            let t2 = t.clone();
            agg(
                DataType::Int64,
                vec![list],
                false,
                Arc::new(move || {
                    Box::new(CountDistinct {
                        seen: Vec::new(),
                        item_type: t2.clone(),
                    })
                }),
            )
        }
        "TOPK" | "TOPKDISTINCT" => {
            let t = first.ok_or_else(no_args)?;
            if !orderable(&t) {
                return Err(unsupported(&upper, &t));
            }
            let k = param_int(0, 1)?;
            if k < 1 {
                return Err(format!("{upper}: k must be positive, got {k}"));
            }
            if upper == "TOPK" && args.len() > 1 {
                // `TOPK(sort, a, b, k)`: rows as structs `{sort_col, col0, col1, …}`.
                let fields: datafusion::arrow::datatypes::Fields =
                    std::iter::once(Field::new("sort_col", t.clone(), true))
                        .chain(
                            args[1..]
                                .iter()
                                .enumerate()
                                .map(|(i, a)| Field::new(format!("col{i}"), a.clone(), true)),
                        )
                        .collect();
                let list = DataType::List(Arc::new(Field::new(
                    "item",
                    DataType::Struct(fields.clone()),
                    true,
                )));
                return Ok(agg(
                    list.clone(),
                    vec![list],
                    false,
                    Arc::new(move || {
                        Box::new(TopKRows {
                            rows: Vec::new(),
                            k: k as usize,
                            fields: fields.clone(),
                        })
                    }),
                ));
            }
            let list = DataType::List(Arc::new(Field::new("item", t.clone(), true)));
            let distinct = upper == "TOPKDISTINCT";
            let t2 = t.clone();
            agg(
                list.clone(),
                vec![list],
                false,
                Arc::new(move || {
                    Box::new(TopK {
                        items: Vec::new(),
                        k: k as usize,
                        distinct,
                        item_type: t2.clone(),
                    })
                }),
            )
        }
        "EARLIEST_BY_OFFSET" | "LATEST_BY_OFFSET" => {
            let t = first.ok_or_else(no_args)?;
            // (col), (col, ignoreNulls), (col, n), (col, n, ignoreNulls)
            let (n, ignore_nulls, many) = match params {
                [] => (1, true, false),
                [ScalarValue::Boolean(_)] => (1, param_bool(0, true)?, false),
                [_] => (param_int(0, 1)?, true, true),
                _ => (param_int(0, 1)?, param_bool(1, true)?, true),
            };
            if n < 1 {
                return Err(format!(
                    "{upper} must be called with a positive number of elements to collect"
                ));
            }
            let ret = if many {
                DataType::List(Arc::new(Field::new("item", t.clone(), true)))
            } else {
                t.clone()
            };
            let list = DataType::List(Arc::new(Field::new("item", t.clone(), true)));
            let latest = upper == "LATEST_BY_OFFSET";
            let t2 = t.clone();
            agg(
                ret,
                vec![list],
                false,
                Arc::new(move || {
                    Box::new(ByOffset {
                        items: Vec::new(),
                        n: n as usize,
                        latest,
                        ignore_nulls,
                        many,
                        item_type: t2.clone(),
                    })
                }),
            )
        }
        "HISTOGRAM" => {
            let t = first.ok_or_else(no_args)?;
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                return Err(unsupported(&upper, &t));
            }
            let map = histogram_type();
            agg(
                map.clone(),
                vec![map],
                true,
                Arc::new(|| {
                    Box::new(Histogram {
                        counts: BTreeMap::new(),
                    })
                }),
            )
        }
        "STDDEV_SAMP" | "STDDEV_SAMPLE" => {
            let t = first.ok_or_else(no_args)?;
            let kind = NumKind::of(&t).ok_or_else(|| unsupported(&upper, &t))?;
            agg(
                DataType::Float64,
                vec![DataType::Int64, DataType::Float64, DataType::Float64],
                true,
                Arc::new(move || {
                    Box::new(StdDev {
                        kind,
                        n: 0,
                        sum: 0.0,
                        m2: 0.0,
                    })
                }),
            )
        }
        "CORRELATION" => {
            if args.len() != 2 {
                return Err(format!(
                    "Function 'CORRELATION' takes two DOUBLE arguments, got {}",
                    args.len()
                ));
            }
            let kx = NumKind::of(&args[0]).ok_or_else(|| unsupported(&upper, &args[0]))?;
            let ky = NumKind::of(&args[1]).ok_or_else(|| unsupported(&upper, &args[1]))?;
            agg(
                DataType::Float64,
                vec![DataType::Float64; 6],
                true,
                Arc::new(move || Box::new(Correlation::new(kx, ky))),
            )
        }
        "ATTR" => {
            let t = first.ok_or_else(no_args)?;
            let list = DataType::List(Arc::new(Field::new("item", t.clone(), true)));
            let counts = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
            let t2 = t.clone();
            agg(
                t,
                vec![list, counts],
                true,
                Arc::new(move || {
                    Box::new(Attr {
                        values: Vec::new(),
                        item_type: t2.clone(),
                    })
                }),
            )
        }
        _ => return Err(format!("Can't find any functions with the name '{upper}'")),
    })
}

fn unsupported(name: &str, t: &DataType) -> String {
    format!(
        "Function '{name}' does not accept parameters ({}).",
        crate::schema::type_name(t)
    )
}

fn orderable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Boolean
            | DataType::Date32
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Timestamp(..)
            | DataType::Binary
    )
}

fn histogram_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array};

    fn ints(v: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(v.to_vec()))]
    }

    #[test]
    fn count_sum_max_over_rows() {
        let args = ints(&[Some(3), None, Some(7), Some(5)]);
        for (name, want) in [
            ("COUNT", ScalarValue::Int64(Some(3))),
            ("SUM", ScalarValue::Int64(Some(15))),
            ("MAX", ScalarValue::Int64(Some(7))),
            ("MIN", ScalarValue::Int64(Some(3))),
        ] {
            let f = resolve(name, &[DataType::Int64], &[], Limits::default()).unwrap();
            let mut acc = f.accumulator();
            for r in 0..4 {
                acc.add(&args, r).unwrap();
            }
            assert_eq!(acc.value(), want, "{name}");
            // A checkpointed state restores to the same result.
            let mut restored = f.accumulator();
            restored.merge(&acc.state()).unwrap();
            assert_eq!(restored.value(), want, "{name} restored");
        }
    }

    #[test]
    fn undo_takes_rows_back() {
        let args = ints(&[Some(3), Some(4)]);
        let f = resolve("AVG", &[DataType::Int64], &[], Limits::default()).unwrap();
        let mut acc = f.accumulator();
        acc.add(&args, 0).unwrap();
        acc.add(&args, 1).unwrap();
        acc.undo(&args, 0).unwrap();
        assert_eq!(acc.value(), ScalarValue::Float64(Some(4.0)));
    }

    /// Taking a row back from its stored values does what taking it back from its arrays
    /// does, for the accumulators that read values directly and for the others.
    #[test]
    fn undo_of_values_matches_undo_of_arrays() {
        let decimals: ArrayRef = Arc::new(
            datafusion::arrow::array::Decimal128Array::from(vec![Some(125), None, Some(-40)])
                .with_precision_and_scale(5, 2)
                .unwrap(),
        );
        let doubles: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.25)]));
        let cases: Vec<(&str, ArrayRef)> = vec![
            ("AVG", ints(&[Some(3), None, Some(8)])[0].clone()),
            ("AVG", doubles.clone()),
            ("AVG", decimals.clone()),
            ("COUNT", ints(&[Some(3), None, Some(8)])[0].clone()),
            ("SUM", doubles),
            ("SUM", decimals),
        ];
        for (name, column) in cases {
            let f = resolve(name, &[column.data_type().clone()], &[], Limits::default()).unwrap();
            let args = vec![column.clone()];
            for undone in 0..column.len() {
                let mut by_array = f.accumulator();
                let mut by_value = f.accumulator();
                for r in 0..column.len() {
                    by_array.add(&args, r).unwrap();
                    by_value.add(&args, r).unwrap();
                }
                by_array.undo(&args, undone).unwrap();
                let value = ScalarValue::try_from_array(&column, undone).unwrap();
                by_value.undo_values(&[value]).unwrap();
                assert_eq!(by_value.value(), by_array.value(), "{name} of {column:?}");
            }
        }
    }

    #[test]
    fn topk_keeps_the_largest_first() {
        let args = ints(&[Some(3), Some(9), Some(1), Some(5)]);
        let f = resolve(
            "TOPK",
            &[DataType::Int64],
            &[ScalarValue::Int64(Some(2))],
            Limits::default(),
        )
        .unwrap();
        let mut acc = f.accumulator();
        for r in 0..4 {
            acc.add(&args, r).unwrap();
        }
        let want = list_value(
            &[ScalarValue::Int64(Some(9)), ScalarValue::Int64(Some(5))],
            &DataType::Int64,
        );
        assert_eq!(acc.value(), want);
    }

    #[test]
    fn decimal_sum_overflows_past_its_precision() {
        let a: ArrayRef = Arc::new(
            datafusion::arrow::array::Decimal128Array::from(vec![Some(900), Some(200)])
                .with_precision_and_scale(3, 1)
                .unwrap(),
        );
        let f = resolve("SUM", &[DataType::Decimal128(3, 1)], &[], Limits::default()).unwrap();
        let mut acc = f.accumulator();
        acc.add(std::slice::from_ref(&a), 0).unwrap();
        assert!(acc.add(std::slice::from_ref(&a), 1).is_err());
    }
}
