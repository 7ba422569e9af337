//! ksqlDB's lambda functions: `TRANSFORM(c, x => e)`, `FILTER(c, x => cond)` and
//! `REDUCE(c, init, (s, x) => e)` over arrays, and over maps with `(k, v)` parameters
//! (`TRANSFORM(m, (k, v) => key, (k, v) => value)`). Each call is planned when its query is:
//! the lambda bodies become physical expressions over their parameters, held by a scalar
//! function made for that call, which the call is rewritten to. TRANSFORM and FILTER run
//! vectorised over all elements of a batch at once; REDUCE folds row by row.
//! A body sees its own parameters (and those of lambdas around it through nested calls'
//! arguments), not the query's other columns.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast as sqlast;

use crate::engine::{Engine, EngineError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Transform,
    Filter,
    Reduce,
}

/// A lambda call's function: its bodies planned over its parameters.
#[derive(Debug)]
struct LambdaUdf {
    name: String,
    kind: Kind,
    signature: Signature,
    /// One body (two for TRANSFORM over a map: new key, new value).
    bodies: Vec<Arc<dyn PhysicalExpr>>,
    /// The parameters' schema: for REDUCE the state first, then the element (or key, value).
    params: SchemaRef,
    return_type: DataType,
}

impl PartialEq for LambdaUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for LambdaUdf {}
impl Hash for LambdaUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn lambda_of(arg: &sqlast::FunctionArg) -> Option<&sqlast::LambdaFunction> {
    match arg {
        sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(sqlast::Expr::Lambda(l))) => {
            Some(l)
        }
        _ => None,
    }
}

fn plain_arg(arg: &mut sqlast::FunctionArg) -> Option<&mut sqlast::Expr> {
    match arg {
        sqlast::FunctionArg::Unnamed(sqlast::FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

fn param_names(l: &sqlast::LambdaFunction) -> Vec<String> {
    let ps: Vec<&sqlast::LambdaFunctionParameter> = match &l.params {
        sqlast::OneOrManyWithParens::One(p) => vec![p],
        sqlast::OneOrManyWithParens::Many(ps) => ps.iter().collect(),
    };
    ps.iter()
        .map(|p| match p.name.quote_style {
            Some(_) => p.name.value.clone(),
            None => p.name.value.to_uppercase(),
        })
        .collect()
}

fn plan_err<T>(msg: impl Into<String>) -> Result<T, EngineError> {
    Err(EngineError(msg.into()))
}

impl Engine {
    /// Rewrites every lambda call in `expr` (identifiers already normalised) into a call of
    /// a function made for it, planning the bodies against their parameters.
    pub(crate) fn plan_lambdas(
        &self,
        expr: &mut sqlast::Expr,
        schema: &DFSchema,
    ) -> Result<(), EngineError> {
        // Outermost calls first: a nested call's collection may be an outer lambda's
        // parameter, which only the outer body's planning knows.
        struct Calls<'a> {
            engine: &'a Engine,
            schema: &'a DFSchema,
            failure: Option<EngineError>,
        }
        impl sqlast::VisitorMut for Calls<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
                if let Err(err) = self.engine.plan_lambda_call(e, self.schema) {
                    self.failure = Some(err);
                    return std::ops::ControlFlow::Break(());
                }
                std::ops::ControlFlow::Continue(())
            }
        }
        let mut calls = Calls {
            engine: self,
            schema,
            failure: None,
        };
        let _ = sqlast::VisitMut::visit(expr, &mut calls);
        calls.failure.map_or(Ok(()), Err)
    }

    fn plan_lambda_call(&self, e: &mut sqlast::Expr, schema: &DFSchema) -> Result<(), EngineError> {
        let sqlast::Expr::Function(f) = e else {
            return Ok(());
        };
        let sqlast::FunctionArguments::List(list) = &mut f.args else {
            return Ok(());
        };
        if !list.args.iter().any(|a| lambda_of(a).is_some()) {
            return Ok(());
        }
        let name = f.name.to_string().to_uppercase();
        let kind = match name.as_str() {
            "TRANSFORM" => Kind::Transform,
            "FILTER" => Kind::Filter,
            "REDUCE" => Kind::Reduce,
            other => return plan_err(format!("Function '{other}' does not take a lambda")),
        };
        // The plain arguments: the collection (and REDUCE's initial state), lambdas inside
        // them planned first.
        let mut plain_types = Vec::new();
        let mut lambdas = Vec::new();
        for a in list.args.iter_mut() {
            if let Some(l) = lambda_of(a) {
                lambdas.push(l.clone());
                continue;
            }
            let Some(arg) = plain_arg(a) else {
                return plan_err(format!("{name}: unsupported argument {a}"));
            };
            self.plan_lambdas(arg, schema)?;
            let logical = self.ctx.state().create_logical_expr_from_sql_expr(
                sqlast::ExprWithAlias {
                    expr: arg.clone(),
                    alias: None,
                },
                schema,
            )?;
            plain_types.push({
                use datafusion::logical_expr::ExprSchemable;
                logical.get_type(schema)?
            });
        }
        let expected_plain = if kind == Kind::Reduce { 2 } else { 1 };
        if plain_types.len() != expected_plain {
            return plan_err(format!(
                "Function '{name}' takes {expected_plain} argument(s) before its lambda"
            ));
        }
        // The element parameters: an array's items, or a map's keys and values.
        let element_types: Vec<DataType> = match &plain_types[0] {
            DataType::List(item) => vec![item.data_type().clone()],
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    vec![kv[0].data_type().clone(), kv[1].data_type().clone()]
                }
                _ => return plan_err(format!("{name}: unsupported map layout")),
            },
            DataType::Null => vec![DataType::Null],
            other => return plan_err(format!("Function '{name}' does not accept a {other}")),
        };
        let is_map = element_types.len() == 2;
        let wanted_lambdas = if kind == Kind::Transform && is_map {
            2
        } else {
            1
        };
        if lambdas.len() != wanted_lambdas {
            return plan_err(format!(
                "Function '{name}' takes {wanted_lambdas} lambda(s) here"
            ));
        }
        let mut param_types = element_types.clone();
        if kind == Kind::Reduce {
            param_types.insert(0, plain_types[1].clone());
        }
        let mut bodies = Vec::new();
        let mut body_types = Vec::new();
        let mut params: Option<SchemaRef> = None;
        for l in &lambdas {
            let names = param_names(l);
            if names.len() != param_types.len() {
                return plan_err(format!(
                    "Function '{name}': its lambda takes {} parameter(s), expected {}",
                    names.len(),
                    param_types.len()
                ));
            }
            let fields: Vec<Field> = names
                .iter()
                .zip(&param_types)
                .map(|(n, t)| Field::new(n, t.clone(), true))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let df = DFSchema::try_from(schema.as_ref().clone())?;
            let body = self.plan_expr(&l.body, &df, "lambda")?;
            let body_type = {
                use datafusion::logical_expr::ExprSchemable;
                body.get_type(&df)?
            };
            if kind == Kind::Filter && !matches!(body_type, DataType::Boolean | DataType::Null) {
                return plan_err(format!(
                    "Function 'FILTER' needs a lambda that returns BOOLEAN, not {}",
                    crate::schema::type_name(&body_type)
                ));
            }
            bodies.push(self.ctx.create_physical_expr(body, &df)?);
            body_types.push(body_type);
            params = Some(schema);
        }
        let return_type = match (kind, is_map) {
            (Kind::Transform, false) => DataType::new_list(body_types[0].clone(), true),
            (Kind::Transform, true) => crate::schema::arrow_type(&sluice_sql::SqlType::Map(
                Box::new(sql_type_of(&body_types[0])?),
                Box::new(sql_type_of(&body_types[1])?),
            ))
            .ok_or_else(|| EngineError("unsupported map type".into()))?,
            (Kind::Filter, _) => plain_types[0].clone(),
            (Kind::Reduce, _) => plain_types[1].clone(),
        };
        let udf_name = format!("__lambda_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let udf = LambdaUdf {
            name: udf_name.clone(),
            kind,
            signature: Signature::any(expected_plain, Volatility::Immutable),
            bodies,
            params: params.expect("a lambda was planned"),
            return_type,
        };
        self.ctx.register_udf(ScalarUDF::from(udf));
        list.args.retain(|a| lambda_of(a).is_none());
        f.name = sqlast::ObjectName::from(vec![sqlast::Ident::new(udf_name)]);
        Ok(())
    }
}

/// Calls `f` on each expression in `expr` that lies outside lambda bodies (a body is planned
/// over its own parameters, where the lambda is planned), outermost first, stopping at the
/// first error.
pub(crate) fn for_each_outside_lambdas(
    expr: &mut sqlast::Expr,
    f: &mut dyn FnMut(&mut sqlast::Expr) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    struct Outside<'a> {
        f: &'a mut dyn FnMut(&mut sqlast::Expr) -> Result<(), EngineError>,
        in_lambda: usize,
        failure: Option<EngineError>,
    }
    impl sqlast::VisitorMut for Outside<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
            if matches!(e, sqlast::Expr::Lambda(_)) {
                self.in_lambda += 1;
            }
            if self.in_lambda == 0
                && let Err(err) = (self.f)(e)
            {
                self.failure = Some(err);
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut sqlast::Expr) -> std::ops::ControlFlow<()> {
            if matches!(e, sqlast::Expr::Lambda(_)) {
                self.in_lambda -= 1;
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut outside = Outside {
        f,
        in_lambda: 0,
        failure: None,
    };
    let _ = sqlast::VisitMut::visit(expr, &mut outside);
    outside.failure.map_or(Ok(()), Err)
}

fn sql_type_of(t: &DataType) -> Result<sluice_sql::SqlType, EngineError> {
    crate::schema::sql_type(t).ok_or_else(|| EngineError(format!("unsupported type {t}")))
}

impl ScalarUDFImpl for LambdaUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .into_iter()
            .map(|a| a.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let out = match self.kind {
            Kind::Transform | Kind::Filter => self.map_elements(&arrays[0])?,
            Kind::Reduce => self.reduce(&arrays[0], &arrays[1])?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// A collection column taken apart: per-row offsets into element columns.
struct Elements {
    offsets: OffsetBuffer<i32>,
    nulls: Option<datafusion::arrow::buffer::NullBuffer>,
    columns: Vec<ArrayRef>,
}

fn elements(a: &ArrayRef) -> Result<Elements> {
    match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            Ok(Elements {
                offsets: l.offsets().clone(),
                nulls: l.nulls().cloned(),
                columns: vec![l.values().clone()],
            })
        }
        DataType::Map(..) => {
            let m = a.as_map();
            Ok(Elements {
                offsets: m.offsets().clone(),
                nulls: m.nulls().cloned(),
                columns: vec![m.keys().clone(), m.values().clone()],
            })
        }
        DataType::Null => Ok(Elements {
            offsets: OffsetBuffer::new_zeroed(a.len()),
            nulls: Some(datafusion::arrow::buffer::NullBuffer::new_null(a.len())),
            columns: vec![a.slice(0, 0)],
        }),
        other => Err(DataFusionError::Execution(format!(
            "a lambda function cannot read a {other}"
        ))),
    }
}

impl LambdaUdf {
    fn evaluate(&self, body: usize, columns: Vec<ArrayRef>, n: usize) -> Result<ArrayRef> {
        let columns = columns
            .into_iter()
            .zip(self.params.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    cast(&c, f.data_type()).map_err(DataFusionError::from)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new_with_options(
            self.params.clone(),
            columns,
            &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        self.bodies[body].evaluate(&batch)?.into_array(n)
    }

    /// TRANSFORM and FILTER: every element of the batch through the body at once.
    fn map_elements(&self, collection: &ArrayRef) -> Result<ArrayRef> {
        let el = elements(collection)?;
        let n = el.columns[0].len();
        if self.kind == Kind::Filter {
            let keep = self.evaluate(0, el.columns.clone(), n)?;
            let keep = keep.as_boolean_opt().ok_or_else(|| {
                DataFusionError::Execution("FILTER's lambda did not return BOOLEAN".into())
            })?;
            let mut indices = Vec::new();
            let mut lengths = Vec::with_capacity(el.offsets.len() - 1);
            for w in el.offsets.windows(2) {
                let before = indices.len();
                for i in w[0] as usize..w[1] as usize {
                    if keep.is_valid(i) && keep.value(i) {
                        indices.push(i as u32);
                    }
                }
                lengths.push(indices.len() - before);
            }
            let indices = UInt32Array::from(indices);
            let kept = el
                .columns
                .iter()
                .map(|c| take(c.as_ref(), &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            return rebuild(
                &el,
                OffsetBuffer::from_lengths(lengths),
                kept,
                &self.return_type,
            );
        }
        let new_columns = (0..self.bodies.len())
            .map(|b| self.evaluate(b, el.columns.clone(), n))
            .collect::<Result<Vec<_>>>()?;
        rebuild(&el, el.offsets.clone(), new_columns, &self.return_type)
    }

    /// REDUCE: the state folded through each row's elements in order.
    fn reduce(&self, collection: &ArrayRef, init: &ArrayRef) -> Result<ArrayRef> {
        let el = elements(collection)?;
        let state_type = self.params.field(0).data_type().clone();
        let mut out = Vec::with_capacity(init.len());
        for (row, w) in el.offsets.windows(2).enumerate() {
            let mut state = cast(&init.slice(row, 1), &state_type)?;
            let null_collection = el.nulls.as_ref().is_some_and(|nb| nb.is_null(row));
            if !null_collection {
                for i in w[0] as usize..w[1] as usize {
                    let mut columns = vec![state.clone()];
                    columns.extend(el.columns.iter().map(|c| c.slice(i, 1)));
                    state = cast(&self.evaluate(0, columns, 1)?, &state_type)?;
                }
            }
            out.push(ScalarValue::try_from_array(&state, 0)?);
        }
        if out.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&self.return_type));
        }
        let a = ScalarValue::iter_to_array(out)?;
        Ok(cast(&a, &self.return_type)?)
    }
}

/// A list or map again, from offsets and element columns.
fn rebuild(
    el: &Elements,
    offsets: OffsetBuffer<i32>,
    columns: Vec<ArrayRef>,
    return_type: &DataType,
) -> Result<ArrayRef> {
    match return_type {
        DataType::List(item) => {
            let values = cast(&columns[0], item.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                item.clone(),
                offsets,
                values,
                el.nulls.clone(),
            )?))
        }
        DataType::Map(entry, sorted) => {
            let DataType::Struct(fields) = entry.data_type() else {
                return Err(DataFusionError::Execution(
                    "map entries are not structs".into(),
                ));
            };
            let kv = columns
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| cast(c, f.data_type()).map_err(DataFusionError::from))
                .collect::<Result<Vec<_>>>()?;
            let entries = StructArray::try_new(fields.clone(), kv, None)?;
            Ok(Arc::new(MapArray::try_new(
                entry.clone(),
                offsets,
                entries,
                el.nulls.clone(),
                *sorted,
            )?))
        }
        other => Err(DataFusionError::Execution(format!(
            "a lambda cannot build a {other}"
        ))),
    }
}
