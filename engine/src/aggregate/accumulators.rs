//! The accumulators behind ksqlDB's aggregate functions (see `functions::resolve`): each
//! keeps one group's running aggregate, takes rows back where the function can (a table's
//! changes), and checkpoints its state as values.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::functions::Accumulator;

/// The numeric argument types ksqlDB's arithmetic aggregates take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NumKind {
    Int,
    BigInt,
    Double,
    Decimal(u8, i8),
}

impl NumKind {
    pub(super) fn of(t: &DataType) -> Option<NumKind> {
        Some(match t {
            DataType::Int32 => NumKind::Int,
            DataType::Int64 => NumKind::BigInt,
            DataType::Float64 => NumKind::Double,
            DataType::Decimal128(p, s) => NumKind::Decimal(*p, *s),
            _ => return None,
        })
    }

    /// A value of this kind as f64, as `f64_at` reads it from an array (None when null or
    /// not of this kind).
    fn f64_of(self, v: &ScalarValue) -> Option<f64> {
        match (self, v) {
            (NumKind::Int, ScalarValue::Int32(Some(x))) => Some(*x as f64),
            (NumKind::BigInt, ScalarValue::Int64(Some(x))) => Some(*x as f64),
            (NumKind::Double, ScalarValue::Float64(Some(x))) => Some(*x),
            (NumKind::Decimal(_, s), ScalarValue::Decimal128(Some(x), ..)) => {
                Some(*x as f64 / 10f64.powi(s as i32))
            }
            _ => None,
        }
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

pub(super) struct Count {
    pub(super) n: i64,
    pub(super) counts_rows: bool,
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
    fn undo_values(&mut self, args: &[ScalarValue]) -> Result<(), String> {
        if self.counts_rows || args.first().is_none_or(|v| !v.is_null()) {
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

pub(super) fn int_state(state: &[ScalarValue], i: usize) -> Result<i64, String> {
    match state.get(i) {
        Some(ScalarValue::Int64(v)) => Ok(v.unwrap_or(0)),
        other => Err(format!("unexpected aggregate state {other:?}")),
    }
}

pub(super) fn float_state(state: &[ScalarValue], i: usize) -> Result<f64, String> {
    match state.get(i) {
        Some(ScalarValue::Float64(v)) => Ok(v.unwrap_or(0.0)),
        other => Err(format!("unexpected aggregate state {other:?}")),
    }
}

/// SUM in the argument's type: INT and BIGINT wrap as Java does, DECIMAL fails past its
/// precision ("Numeric field overflow", as ksqlDB).
pub(super) struct Sum {
    pub(super) kind: NumKind,
    pub(super) int: i64,
    pub(super) float: f64,
    pub(super) decimal: i128,
    pub(super) ty: DataType,
}

impl Sum {
    pub(super) fn new(kind: NumKind, ty: DataType) -> Sum {
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

pub(super) struct Avg {
    pub(super) kind: NumKind,
    pub(super) sum: f64,
    pub(super) count: i64,
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
    fn undo_values(&mut self, args: &[ScalarValue]) -> Result<(), String> {
        if let Some(v) = args.first().and_then(|v| self.kind.f64_of(v)) {
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
pub(super) struct Extreme {
    pub(super) best: Option<ScalarValue>,
    pub(super) want_max: bool,
    pub(super) null: ScalarValue,
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

/// Row `row` of an aggregate's first argument, as a value.
fn first_arg(args: &[ArrayRef], row: usize) -> Result<ScalarValue, String> {
    ScalarValue::try_from_array(&args[0], row).map_err(|e| e.to_string())
}

pub(super) fn list_value(items: &[ScalarValue], item_type: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(items, item_type))
}

pub(super) fn list_items(state: &[ScalarValue], i: usize) -> Result<Vec<ScalarValue>, String> {
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
pub(super) const COLLECT_LIMIT: usize = 1000;

/// COLLECT_LIST (every value, nulls too, in arrival order) or COLLECT_SET (distinct values).
pub(super) struct Collect {
    /// At most this many values (`ksql.functions.collect_list.limit`, …_set.limit).
    pub(super) limit: usize,
    pub(super) items: Vec<ScalarValue>,
    pub(super) distinct: bool,
    pub(super) item_type: DataType,
}

impl Accumulator for Collect {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = first_arg(args, row)?;
        if self.items.len() >= self.limit || (self.distinct && self.items.contains(&v)) {
            return Ok(());
        }
        self.items.push(v);
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = first_arg(args, row)?;
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
            if self.items.len() < self.limit && !(self.distinct && self.items.contains(&v)) {
                self.items.push(v);
            }
        }
        Ok(())
    }
}

pub(super) struct CountDistinct {
    pub(super) seen: Vec<ScalarValue>,
    pub(super) item_type: DataType,
}

impl Accumulator for CountDistinct {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if args[0].is_null(row) {
            return Ok(());
        }
        let v = first_arg(args, row)?;
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
pub(super) struct TopK {
    pub(super) items: Vec<ScalarValue>,
    pub(super) k: usize,
    pub(super) distinct: bool,
    pub(super) item_type: DataType,
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
        let v = first_arg(args, row)?;
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

/// SUM_LIST: the sum of the elements of every list (INT, BIGINT or DOUBLE elements; null
/// lists and elements count as nothing). Integers wrap as ksqlDB's Java arithmetic does.
pub(super) struct SumList {
    pub(super) int: i64,
    pub(super) float: f64,
    pub(super) element: DataType,
}

impl SumList {
    /// Adds (`sign` 1) or takes back (-1) the elements of row `row`'s list.
    fn fold(&mut self, args: &[ArrayRef], row: usize, sign: i64) -> Result<(), String> {
        let list = args[0]
            .as_any()
            .downcast_ref::<datafusion::arrow::array::ListArray>()
            .ok_or("SUM_LIST needs an ARRAY")?;
        if list.is_null(row) {
            return Ok(());
        }
        let values = list.value(row);
        for i in (0..values.len()).filter(|i| values.is_valid(*i)) {
            match ScalarValue::try_from_array(&values, i).map_err(|e| e.to_string())? {
                ScalarValue::Int32(Some(v)) => {
                    self.int = (self.int as i32).wrapping_add(v.wrapping_mul(sign as i32)) as i64
                }
                ScalarValue::Int64(Some(v)) => {
                    self.int = self.int.wrapping_add(v.wrapping_mul(sign))
                }
                ScalarValue::Float64(Some(v)) => self.float += v * sign as f64,
                other => return Err(format!("SUM_LIST cannot add {other}")),
            }
        }
        Ok(())
    }
}

impl Accumulator for SumList {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.fold(args, row, 1)
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        self.fold(args, row, -1)
    }
    fn value(&self) -> ScalarValue {
        match self.element {
            DataType::Int32 => ScalarValue::Int32(Some(self.int as i32)),
            DataType::Int64 => ScalarValue::Int64(Some(self.int)),
            _ => ScalarValue::Float64(Some(self.float)),
        }
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        match state.first() {
            Some(ScalarValue::Int32(Some(v))) => {
                self.int = (self.int as i32).wrapping_add(*v) as i64
            }
            Some(ScalarValue::Int64(Some(v))) => self.int = self.int.wrapping_add(*v),
            Some(ScalarValue::Float64(Some(v))) => self.float += v,
            other => return Err(format!("unexpected SUM_LIST state {other:?}")),
        }
        Ok(())
    }
}

/// TOPK over a sort column and other columns (`TOPK(sort, a, b, k)`): the k rows with the
/// largest sort values, each a struct `{sort_col, col0, col1, …}`, largest first (a row
/// with a null sort value is left out).
pub(super) struct TopKRows {
    /// (sort value, the other columns' values), largest sort value first.
    pub(super) rows: Vec<(ScalarValue, Vec<ScalarValue>)>,
    pub(super) k: usize,
    /// The struct each result item is: `sort_col`, then `col0`, `col1`, ….
    pub(super) fields: datafusion::arrow::datatypes::Fields,
}

impl TopKRows {
    fn offer(&mut self, sort: ScalarValue, others: Vec<ScalarValue>) {
        if sort.is_null() {
            return;
        }
        let at = self
            .rows
            .iter()
            .position(|(x, _)| sort.partial_cmp(x) == Some(std::cmp::Ordering::Greater))
            .unwrap_or(self.rows.len());
        if at < self.k {
            self.rows.insert(at, (sort, others));
            self.rows.truncate(self.k);
        }
    }
}

impl Accumulator for TopKRows {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let mut values = args
            .iter()
            .map(|a| ScalarValue::try_from_array(a, row).map_err(|e| e.to_string()));
        let sort = values.next().ok_or("TOPK needs a column")??;
        let others = values.collect::<Result<Vec<_>, _>>()?;
        self.offer(sort, others);
        Ok(())
    }
    fn undo(&mut self, _: &[ArrayRef], _: usize) -> Result<(), String> {
        Err("TOPK cannot take a row back".into())
    }
    fn value(&self) -> ScalarValue {
        let items: Vec<ScalarValue> = self
            .rows
            .iter()
            .map(|(sort, others)| {
                let mut b = datafusion::common::scalar::ScalarStructBuilder::new();
                for (field, v) in self.fields.iter().zip(std::iter::once(sort).chain(others)) {
                    b = b.with_scalar(field.as_ref().clone(), v.clone());
                }
                b.build().unwrap_or(ScalarValue::Null)
            })
            .collect();
        list_value(&items, &DataType::Struct(self.fields.clone()))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![self.value()]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        for item in list_items(state, 0)? {
            let ScalarValue::Struct(s) = item else {
                return Err(format!("unexpected TOPK state {item:?}"));
            };
            let mut values = (0..s.num_columns())
                .map(|c| ScalarValue::try_from_array(s.column(c), 0).map_err(|e| e.to_string()));
            let sort = values.next().ok_or("empty TOPK state")??;
            self.offer(sort, values.collect::<Result<Vec<_>, _>>()?);
        }
        Ok(())
    }
}

/// EARLIEST_BY_OFFSET / LATEST_BY_OFFSET: the first or last value(s) by arrival.
pub(super) struct ByOffset {
    pub(super) items: Vec<ScalarValue>,
    pub(super) n: usize,
    pub(super) latest: bool,
    pub(super) ignore_nulls: bool,
    /// Whether the result is a list (an `n` was given).
    pub(super) many: bool,
    pub(super) item_type: DataType,
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
        let v = first_arg(args, row)?;
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

pub(super) struct Histogram {
    pub(super) counts: BTreeMap<String, i64>,
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
pub(super) const HISTOGRAM_LIMIT: usize = 1000;

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

/// STDDEV_SAMP (and STDDEV_SAMPLE) as ksqlDB computes it, which is the *sample variance*
/// (the name notwithstanding: its tests expect 2.0 for 10 and 12), 0 for fewer than two
/// values. Kept as count, sum and the sum of squared deviations, updated term for term as
/// ksqlDB does so results agree to the last bit.
pub(super) struct StdDev {
    pub(super) kind: NumKind,
    pub(super) n: i64,
    pub(super) sum: f64,
    pub(super) m2: f64,
}

impl Accumulator for StdDev {
    fn add(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            let count = self.n;
            let n = count + 1;
            let sum = self.sum + v;
            if count > 0 {
                let t = n as f64 * v - sum;
                self.m2 += t * t / (n as f64 * count as f64);
            }
            self.n = n;
            self.sum = sum;
        }
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        if let Some(v) = self.kind.f64_at(&args[0], row) {
            let count = self.n;
            let n = count - 1;
            if n <= 0 {
                (self.n, self.sum, self.m2) = (0, 0.0, 0.0);
                return Ok(());
            }
            let t = count as f64 * v - self.sum;
            self.m2 -= t * t / (count as f64 * n as f64);
            self.n = n;
            self.sum -= v;
        }
        Ok(())
    }
    fn value(&self) -> ScalarValue {
        if self.n < 2 {
            return ScalarValue::Float64(Some(0.0));
        }
        ScalarValue::Float64(Some(self.m2 / (self.n - 1) as f64))
    }
    fn state(&self) -> Vec<ScalarValue> {
        vec![
            ScalarValue::Int64(Some(self.n)),
            ScalarValue::Float64(Some(self.sum)),
            ScalarValue::Float64(Some(self.m2)),
        ]
    }
    fn merge(&mut self, state: &[ScalarValue]) -> Result<(), String> {
        let (n2, s2, m2b) = (
            int_state(state, 0)?,
            float_state(state, 1)?,
            float_state(state, 2)?,
        );
        if n2 == 0 {
            return Ok(());
        }
        if self.n > 0 {
            // Two partial aggregates combined (Chan et al., on sums).
            let (n1, s1) = (self.n as f64, self.sum);
            let d = n1 * s2 - n2 as f64 * s1;
            self.m2 += m2b + d * d / (n1 * n2 as f64 * (n1 + n2 as f64));
        } else {
            self.m2 = m2b;
        }
        self.n += n2;
        self.sum += s2;
        Ok(())
    }
}

/// CORRELATION(x, y): Pearson's coefficient over pairs where both are present.
pub(super) struct Correlation {
    pub(super) kx: NumKind,
    pub(super) ky: NumKind,
    pub(super) n: f64,
    pub(super) sx: f64,
    pub(super) sy: f64,
    pub(super) sxx: f64,
    pub(super) syy: f64,
    pub(super) sxy: f64,
}

impl Correlation {
    pub(super) fn new(kx: NumKind, ky: NumKind) -> Self {
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
            ((n * self.sxx - self.sx * self.sx) * (n * self.syy - self.sy * self.sy)).sqrt();
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
pub(super) struct Attr {
    /// Distinct values with how many rows hold each.
    pub(super) values: Vec<(ScalarValue, i64)>,
    pub(super) item_type: DataType,
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
        let v = first_arg(args, row)?;
        self.apply(v, 1);
        Ok(())
    }
    fn undo(&mut self, args: &[ArrayRef], row: usize) -> Result<(), String> {
        let v = first_arg(args, row)?;
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
