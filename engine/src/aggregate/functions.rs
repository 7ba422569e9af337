//! ksqlDB's aggregate functions (COUNT, SUM, AVG, MIN, MAX, COLLECT_LIST, TOPK, …) as
//! accumulators the streaming aggregation updates one input row at a time. Each function
//! resolves against its argument types to a `Aggregate`: the result type, the types of the
//! state it checkpoints, and a factory for fresh accumulators. Accumulators that can take a
//! row back (`undo`) may aggregate a table's changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::ScalarValue;

/// One group's running aggregate of one function.
pub(crate) trait Accumulator: Send {
    /// Adds row `row` of the argument arrays.
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String>;
    /// Takes back a row added earlier (a table row that changed or went away).
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String>;
    /// The aggregate's current result.
    fn value(&self) -> ScalarValue;
    /// The state to checkpoint, one value per `Aggregate::state_types`.
    fn state(&self) -> Vec<ScalarValue>;
    /// Folds a checkpointed (or another window's) state into this one.
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String>;
}

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

/// Resolves `name` over columns of `args` types, with `params` the literal arguments that
/// follow them (TOPK's k, EARLIEST_BY_OFFSET's n and ignore-nulls flag).
pub(crate) fn resolve(
    name: &str,
    args: &[DataType],
    params: &[ScalarValue],
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
            let t2 = t.clone();
            agg(
                list.clone(),
                vec![list],
                true,
                Arc::new(move || {
                    Box::new(Collect {
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
                        sum_sq: 0.0,
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

/// The numeric argument types ksqlDB's arithmetic aggregates take.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumKind {
    Int,
    BigInt,
    Double,
    Decimal(u8, i8),
}

impl NumKind {
    fn of(t: &DataType) -> Option<NumKind> {
        Some(match t {
            DataType::Int32 => NumKind::Int,
            DataType::Int64 => NumKind::BigInt,
            DataType::Float64 => NumKind::Double,
            DataType::Decimal128(p, s) => NumKind::Decimal(*p, *s),
            _ => return None,
        })
    }

    /// The value at `row` as f64 (None when null).
    fn f64_at(self, a: &ArrayRef, row: usize) -> Option<f64> {
        if a.is_null(row) {
            return None;
        }
        Some(match self {
            NumKind::Int => a.as_any().downcast_ref::<Int32Array>()?.value(row) as f64,
            NumKind::BigInt => a.as_any().downcast_ref::<Int64Array>()?.value(row) as f64,
            NumKind::Double => a.as_any().downcast_ref::<Float64Array>()?.value(row),
            NumKind::Decimal(_, s) => {
                let v = a
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Decimal128Array>()?
                    .value(row);
                v as f64 / 10f64.powi(s as i32)
            }
        })
    }
}

struct Count {
    n: i64,
    counts_rows: bool,
}

impl Accumulator for Count {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if self.counts_rows || args.first().is_none_or(|a| a.is_valid(row)) {
            self.n += 1;
        }
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if self.counts_rows || args.first().is_none_or(|a| a.is_valid(row)) {
            self.n -= 1;
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        ScalarValue::Int64(Some(self.n))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        self.n += int_state(state, 0)?;
        Ok(())
    }
}

fn int_state(state: &[ScalarValue], i: usize) -> Result<i64, String> {
    match state.get(i) {
        Some(ScalarValue::Int64(v)) => Ok(v.unwrap_or(0)),
        other => Err(format!("unexpected aggregate state {other:?}")),
    }
}

fn float_state(state: &[ScalarValue], i: usize) -> Result<f64, String> {
    match state.get(i) {
        Some(ScalarValue::Float64(v)) => Ok(v.unwrap_or(0.0)),
        other => Err(format!("unexpected aggregate state {other:?}")),
    }
}

/// SUM in the argument's type: INT and BIGINT wrap as Java does, DECIMAL fails past its
/// precision ("Numeric field overflow", as ksqlDB).
struct Sum {
    kind: NumKind,
    int: i64,
    float: f64,
    decimal: i128,
    ty: DataType,
}

impl Sum {
    fn new(kind: NumKind, ty: DataType) -> Sum {
        Sum {
            kind,
            int: 0,
            float: 0.0,
            decimal: 0,
            ty,
        }
    }

    fn apply(&mut self, args: &[ArrayRef], row: usize, sign: i64) -> Result<(), String> {
        let a = &args[0];
        if a.is_null(row) {
            return Ok(());
        }
        match self.kind {
            NumKind::Int => {
                let v = a
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .map_or(0, |x| x.value(row));
                self.int = (self.int as i32).wrapping_add(v.wrapping_mul(sign as i32)) as i64;
            }
            NumKind::BigInt => {
                let v = a
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map_or(0, |x| x.value(row));
                self.int = self.int.wrapping_add(v.wrapping_mul(sign));
            }
            NumKind::Double => {
                let v = a
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .map_or(0.0, |x| x.value(row));
                self.float += v * sign as f64;
            }
            NumKind::Decimal(p, _) => {
                let v = a
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Decimal128Array>()
                    .map_or(0, |x| x.value(row));
                let next = self
                    .decimal
                    .checked_add(v * sign as i128)
                    .ok_or("Numeric field overflow")?;
                if next.unsigned_abs() >= 10u128.pow(u32::from(p.min(38))) {
                    return Err("Numeric field overflow".into());
                }
                self.decimal = next;
            }
        }
        Ok(())
    }
}

impl Accumulator for Sum {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.apply(args, row, 1)
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.apply(args, row, -1)
    }
    fn value(&self) -> ScalarValue {
        match (self.kind, &self.ty) {
            (NumKind::Int, _) => ScalarValue::Int32(Some(self.int as i32)),
            (NumKind::BigInt, _) => ScalarValue::Int64(Some(self.int)),
            (NumKind::Double, _) => ScalarValue::Float64(Some(self.float)),
            (NumKind::Decimal(p, s), _) => ScalarValue::Decimal128(Some(self.decimal), p, s),
        }
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        match state.first() {
            Some(ScalarValue::Int32(v)) => {
                self.int = (self.int as i32).wrapping_add(v.unwrap_or(0)) as i64
            }
            Some(ScalarValue::Int64(v)) => self.int = self.int.wrapping_add(v.unwrap_or(0)),
            Some(ScalarValue::Float64(v)) => self.float += v.unwrap_or(0.0),
            Some(ScalarValue::Decimal128(v, ..)) => {
                self.decimal = self
                    .decimal
                    .checked_add(v.unwrap_or(0))
                    .ok_or("Numeric field overflow")?
            }
            other => return Err(format!("unexpected SUM state {other:?}")),
        }
        Ok(())
    }
}

struct Avg {
    kind: NumKind,
    sum: f64,
    count: i64,
}

impl Accumulator for Avg {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            self.sum += v;
            self.count += 1;
        }
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            self.sum -= v;
            self.count -= 1;
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        if self.count == 0 {
            return ScalarValue::Float64(Some(0.0));
        }
        ScalarValue::Float64(Some(self.sum / self.count as f64))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![
            ScalarValue::Float64(Some(self.sum)),
            ScalarValue::Int64(Some(self.count)),
        ]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        self.sum += float_state(state, 0)?;
        self.count += int_state(state, 1)?;
        Ok(())
    }
}

/// MIN or MAX: nulls ignored, null until a value arrives.
struct Extreme {
    best: Option<ScalarValue>,
    want_max: bool,
    null: ScalarValue,
}

impl Extreme {
    fn offer(&mut self, v: ScalarValue) {
        if v.is_null() {
            return;
        }
        let better = match &self.best {
            None => true,
            Some(b) => match v.partial_cmp(b) {
                Some(std::cmp::Ordering::Greater) => self.want_max,
                Some(std::cmp::Ordering::Less) => !self.want_max,
                _ => false,
            },
        };
        if better {
            self.best = Some(v);
        }
    }
}

impl Accumulator for Extreme {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let a = &args[0];
        if a.is_null(row) {
            return Ok(());
        }
        // The common numeric cases without building a ScalarValue for a loser.
        if let (Some(ScalarValue::Int64(Some(b))), Some(x)) =
            (&self.best, a.as_any().downcast_ref::<Int64Array>())
        {
            let v = x.value(row);
            if (self.want_max && v > *b) || (!self.want_max && v < *b) {
                self.best = Some(ScalarValue::Int64(Some(v)));
            }
            return Ok(());
        }
        let v = ScalarValue::try_from_array(a, row).map_err(|e| e.to_string())?;
        self.offer(v);
        Ok(())
    }
    fn undo(&mut self, _: &[ArrayRef], _: usize) -> Result<(), String> {
        Err("MIN and MAX cannot take a row back".into())
    }
    fn value(&self) -> ScalarValue {
        self.best.clone().unwrap_or_else(|| self.null.clone())
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        if let Some(v) = state.first() {
            self.offer(v.clone());
        }
        Ok(())
    }
}

fn list_value(items: &[ScalarValue], item_type: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(items, item_type))
}

fn list_items(state: &[ScalarValue], i: usize) -> Result<Vec<ScalarValue>, String> {
    match state.get(i) {
        Some(ScalarValue::List(l)) => {
            let values = l.value(0);
            (0..values.len())
                .map(|r| ScalarValue::try_from_array(&values, r).map_err(|e| e.to_string()))
                .collect()
        }
        Some(v) if v.is_null() => Ok(Vec::new()),
        other => Err(format!("unexpected list state {other:?}")),
    }
}

/// ksqlDB's default `ksql.functions.collect_list.limit` / `collect_set.limit`.
const COLLECT_LIMIT: usize = 1000;

/// COLLECT_LIST (every value, nulls too, in arrival order) or COLLECT_SET (distinct values).
struct Collect {
    items: Vec<ScalarValue>,
    distinct: bool,
    item_type: DataType,
}

impl Accumulator for Collect {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        if self.items.len() >= COLLECT_LIMIT || (self.distinct && self.items.contains(&v)) {
            return Ok(());
        }
        self.items.push(v);
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        if let Some(i) = self.items.iter().position(|x| x == &v) {
            self.items.remove(i);
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        list_value(&self.items, &self.item_type)
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        for v in list_items(state, 0)? {
            if self.items.len() < COLLECT_LIMIT && !(self.distinct && self.items.contains(&v)) {
                self.items.push(v);
            }
        }
        Ok(())
    }
}

struct CountDistinct {
    seen: Vec<ScalarValue>,
    item_type: DataType,
}

impl Accumulator for CountDistinct {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if args[0].is_null(row) {
            return Ok(());
        }
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        if !self.seen.contains(&v) {
            self.seen.push(v);
        }
        Ok(())
    }
    fn undo(&mut self, _: &[ArrayRef], _: usize) -> Result<(), String> {
        Err("COUNT_DISTINCT cannot take a row back".into())
    }
    fn value(&self) -> ScalarValue {
        ScalarValue::Int64(Some(self.seen.len() as i64))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![list_value(&self.seen, &self.item_type)]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        for v in list_items(state, 0)? {
            if !self.seen.contains(&v) {
                self.seen.push(v);
            }
        }
        Ok(())
    }
}

/// TOPK / TOPKDISTINCT: the k largest values, largest first.
struct TopK {
    items: Vec<ScalarValue>,
    k: usize,
    distinct: bool,
    item_type: DataType,
}

impl TopK {
    fn offer(&mut self, v: ScalarValue) {
        if v.is_null() || (self.distinct && self.items.contains(&v)) {
            return;
        }
        let at = self
            .items
            .iter()
            .position(|x| v.partial_cmp(x) == Some(std::cmp::Ordering::Greater))
            .unwrap_or(self.items.len());
        if at < self.k {
            self.items.insert(at, v);
            self.items.truncate(self.k);
        }
    }
}

impl Accumulator for TopK {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        self.offer(v);
        Ok(())
    }
    fn undo(&mut self, _: &[ArrayRef], _: usize) -> Result<(), String> {
        Err("TOPK cannot take a row back".into())
    }
    fn value(&self) -> ScalarValue {
        list_value(&self.items, &self.item_type)
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        for v in list_items(state, 0)? {
            self.offer(v);
        }
        Ok(())
    }
}

/// EARLIEST_BY_OFFSET / LATEST_BY_OFFSET: the first or last value(s) by arrival.
struct ByOffset {
    items: Vec<ScalarValue>,
    n: usize,
    latest: bool,
    ignore_nulls: bool,
    /// Whether the result is a list (an `n` was given).
    many: bool,
    item_type: DataType,
}

impl ByOffset {
    fn offer(&mut self, v: ScalarValue) {
        if self.ignore_nulls && v.is_null() {
            return;
        }
        if self.latest {
            self.items.push(v);
            if self.items.len() > self.n {
                self.items.remove(0);
            }
        } else if self.items.len() < self.n {
            self.items.push(v);
        }
    }
}

impl Accumulator for ByOffset {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        self.offer(v);
        Ok(())
    }
    fn undo(&mut self, _: &[ArrayRef], _: usize) -> Result<(), String> {
        Err("EARLIEST_BY_OFFSET and LATEST_BY_OFFSET cannot take a row back".into())
    }
    fn value(&self) -> ScalarValue {
        if self.many {
            return list_value(&self.items, &self.item_type);
        }
        match self.items.first() {
            Some(v) => v.clone(),
            None => ScalarValue::try_from(&self.item_type).unwrap_or(ScalarValue::Null),
        }
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![list_value(&self.items, &self.item_type)]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        for v in list_items(state, 0)? {
            self.offer(v);
        }
        Ok(())
    }
}

struct Histogram {
    counts: BTreeMap<String, i64>,
}

impl Histogram {
    fn text(args: &[ArrayRef], row: usize) -> Option<String> {
        if args[0].is_null(row) {
            return None;
        }
        datafusion::arrow::util::display::array_value_to_string(&args[0], row).ok()
    }
}

/// ksqlDB's HISTOGRAM counts at most this many distinct values.
const HISTOGRAM_LIMIT: usize = 1000;

impl Accumulator for Histogram {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(s) = Self::text(args, row)
            && (self.counts.len() < HISTOGRAM_LIMIT || self.counts.contains_key(&s))
        {
            *self.counts.entry(s).or_insert(0) += 1;
        }
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(s) = Self::text(args, row)
            && let Some(c) = self.counts.get_mut(&s)
        {
            *c -= 1;
            if *c <= 0 {
                self.counts.remove(&s);
            }
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        use datafusion::arrow::array::{MapBuilder, StringBuilder};
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int64Array::builder(0));
        for (k, v) in &self.counts {
            b.keys().append_value(k);
            b.values().append_value(*v);
        }
        if b.append(true).is_err() {
            return ScalarValue::Null;
        }
        let map = b.finish();
        ScalarValue::try_from_array(&map, 0).unwrap_or(ScalarValue::Null)
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        if let Some(ScalarValue::Map(m)) = state.first() {
            let entries = m.value(0);
            let keys = entries.column(0);
            let values = entries.column(1);
            for r in 0..entries.len() {
                let k = datafusion::arrow::util::display::array_value_to_string(keys, r)
                    .map_err(|e| e.to_string())?;
                let v = values
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map_or(0, |a| a.value(r));
                *self.counts.entry(k).or_insert(0) += v;
            }
        }
        Ok(())
    }
}

/// STDDEV_SAMP: the sample standard deviation (0 for fewer than two values, as ksqlDB).
struct StdDev {
    kind: NumKind,
    n: i64,
    sum: f64,
    sum_sq: f64,
}

impl Accumulator for StdDev {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            self.n += 1;
            self.sum += v;
            self.sum_sq += v * v;
        }
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            self.n -= 1;
            self.sum -= v;
            self.sum_sq -= v * v;
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        if self.n < 2 {
            return ScalarValue::Float64(Some(0.0));
        }
        let n = self.n as f64;
        let variance = (self.sum_sq - self.sum * self.sum / n) / (n - 1.0);
        ScalarValue::Float64(Some(variance.max(0.0).sqrt()))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![
            ScalarValue::Int64(Some(self.n)),
            ScalarValue::Float64(Some(self.sum)),
            ScalarValue::Float64(Some(self.sum_sq)),
        ]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        self.n += int_state(state, 0)?;
        self.sum += float_state(state, 1)?;
        self.sum_sq += float_state(state, 2)?;
        Ok(())
    }
}

/// CORRELATION(x, y): Pearson's coefficient over pairs where both are present.
struct Correlation {
    kx: NumKind,
    ky: NumKind,
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl Correlation {
    fn new(kx: NumKind, ky: NumKind) -> Self {
        Correlation {
            kx,
            ky,
            n: 0.0,
            sx: 0.0,
            sy: 0.0,
            sxx: 0.0,
            syy: 0.0,
            sxy: 0.0,
        }
    }

    fn apply(&mut self, args: &[ArrayRef], row: usize, sign: f64) {
        if let (Some(x), Some(y)) = (self.kx.f64_at(&args[0], row), self.ky.f64_at(&args[1], row)) {
            self.n += sign;
            self.sx += sign * x;
            self.sy += sign * y;
            self.sxx += sign * x * x;
            self.syy += sign * y * y;
            self.sxy += sign * x * y;
        }
    }
}

impl Accumulator for Correlation {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.apply(args, row, 1.0);
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.apply(args, row, -1.0);
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        // ksqlDB's formula, term for term (so the last bit agrees).
        let n = self.n;
        let numerator = n * self.sxy - self.sx * self.sy;
        let denominator =
            (n * self.sxx - self.sx * self.sx).sqrt() * (n * self.syy - self.sy * self.sy).sqrt();
        ScalarValue::Float64(Some(numerator / denominator))
    }
    fn state(&self) -> Vec<ScalarValue> {
        [self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy]
            .iter()
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect()
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        self.n += float_state(state, 0)?;
        self.sx += float_state(state, 1)?;
        self.sy += float_state(state, 2)?;
        self.sxx += float_state(state, 3)?;
        self.syy += float_state(state, 4)?;
        self.sxy += float_state(state, 5)?;
        Ok(())
    }
}

/// ATTR: the value when every row has the same one, else null.
struct Attr {
    /// Distinct values with how many rows hold each.
    values: Vec<(ScalarValue, i64)>,
    item_type: DataType,
}

impl Attr {
    fn apply(&mut self, v: ScalarValue, by: i64) {
        match self.values.iter().position(|(x, _)| x == &v) {
            Some(i) => {
                self.values[i].1 += by;
                if self.values[i].1 <= 0 {
                    self.values.remove(i);
                }
            }
            None if by > 0 => self.values.push((v, by)),
            None => {}
        }
    }
}

impl Accumulator for Attr {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        self.apply(v, 1);
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())?;
        self.apply(v, -1);
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        match self.values.as_slice() {
            [(v, _)] => v.clone(),
            _ => ScalarValue::try_from(&self.item_type).unwrap_or(ScalarValue::Null),
        }
    }
    fn state(&self) -> Vec<ScalarValue> {
        let values: Vec<ScalarValue> = self.values.iter().map(|(v, _)| v.clone()).collect();
        let counts: Vec<ScalarValue> = self
            .values
            .iter()
            .map(|(_, c)| ScalarValue::Int64(Some(*c)))
            .collect();
        vec![
            list_value(&values, &self.item_type),
            list_value(&counts, &DataType::Int64),
        ]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        let values = list_items(state, 0)?;
        let counts = list_items(state, 1)?;
        for (v, c) in values.into_iter().zip(counts) {
            if let ScalarValue::Int64(Some(c)) = c {
                self.apply(v, c);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let f = resolve(name, &[DataType::Int64], &[]).unwrap();
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
        let f = resolve("AVG", &[DataType::Int64], &[]).unwrap();
        let mut acc = f.accumulator();
        acc.add(&args, 0).unwrap();
        acc.add(&args, 1).unwrap();
        acc.undo(&args, 0).unwrap();
        assert_eq!(acc.value(), ScalarValue::Float64(Some(4.0)));
    }

    #[test]
    fn topk_keeps_the_largest_first() {
        let args = ints(&[Some(3), Some(9), Some(1), Some(5)]);
        let f = resolve("TOPK", &[DataType::Int64], &[ScalarValue::Int64(Some(2))]).unwrap();
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
        let f = resolve("SUM", &[DataType::Decimal128(3, 1)], &[]).unwrap();
        let mut acc = f.accumulator();
        acc.add(std::slice::from_ref(&a), 0).unwrap();
        assert!(acc.add(std::slice::from_ref(&a), 1).is_err());
    }
}
