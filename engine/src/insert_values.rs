//! `INSERT INTO target [(columns)] VALUES (…)`: one record, its values planned and
//! evaluated by DataFusion, cast to the columns' types, encoded in the target's formats and
//! appended where Kafka's partitioner puts its key.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::DFSchema;
use sluice_sql::ast::Expr;
use sluice_storage::{BatchBuilder, Compression};

use crate::codec::Serde;
use crate::engine::{Engine, EngineError, err};
use crate::query::{evaluate, now_ms};
use crate::schema::arrow_type;

impl Engine {
    pub(crate) fn insert_values(
        &mut self,
        target: &str,
        columns: &[String],
        values: &[Expr],
    ) -> Result<String, EngineError> {
        let Some(sink) = self.catalog.get(target).cloned() else {
            return err(format!(
                "Cannot insert values into an unknown stream/table: `{target}`"
            ));
        };
        if sink.read_only {
            return err(format!(
                "Cannot insert values into read-only {}: {target}",
                crate::engine::kind_name(sink.kind)
            ));
        }
        // Key columns first, then the rest (header columns included) as declared.
        let all: Vec<String> = sink
            .key_columns()
            .chain(sink.columns.iter().filter(|c| !c.key))
            .map(|c| c.name.clone())
            .collect();
        let names: Vec<String> = if columns.is_empty() {
            all.clone()
        } else {
            columns.to_vec()
        };
        let headers: Vec<&str> = names
            .iter()
            .filter(|n| sink.headers.iter().any(|h| &h.column == *n))
            .map(String::as_str)
            .collect();
        if !headers.is_empty() {
            return err(format!(
                "Cannot insert into HEADER columns: {}",
                headers.join(", ")
            ));
        }
        if let Some(pseudo) = names
            .iter()
            .find(|n| n.as_str() == "ROWPARTITION" || n.as_str() == "ROWOFFSET")
        {
            return err(format!("Inserting into column `{pseudo}` is not allowed."));
        }
        if !columns.is_empty() && names.len() != values.len() {
            return err(format!(
                "Failed to prepare statement: Expected number columns and values to match: {}, {}",
                names.len(),
                values.len()
            ));
        }
        if names.len() != values.len() {
            return err(format!(
                "Expected a value for each column. Expected Columns: [{}]. Got [{}]",
                names.join(", "),
                values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let empty = DFSchema::empty();
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let mut timestamp = None;
        let mut given: Vec<(String, ArrayRef)> = Vec::new();
        for (name, expr) in names.iter().zip(values) {
            let logical = self.plan_expr(expr, &empty, "VALUES")?;
            let physical = self.ctx.create_physical_expr(logical, &empty)?;
            let value = evaluate(physical.as_ref(), &one_row)?;
            if name == "ROWTIME" {
                let v = cast(&value, &datafusion::arrow::datatypes::DataType::Int64)?;
                let v = v
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .and_then(|a| (!a.is_null(0)).then(|| a.value(0)));
                timestamp = v;
                continue;
            }
            let Some(col) = sink.columns.iter().find(|c| &c.name == name) else {
                return err(format!("Column name {name} does not exist."));
            };
            let ty = arrow_type(&col.ty)
                .ok_or_else(|| EngineError(format!("unsupported type {}", col.ty)))?;
            // Strict: a value that does not convert is an error, never a silent null.
            let strict = datafusion::arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            let cast_value = datafusion::arrow::compute::cast_with_options(&value, &ty, &strict)
                .map_err(|_| {
                    EngineError(format!(
                        "Expected type {} for field {name} but got {expr}",
                        col.ty
                    ))
                })?;
            given.push((name.clone(), cast_value));
        }
        let column_of = |name: &str, ty: &sluice_sql::SqlType| -> Result<ArrayRef, EngineError> {
            match given.iter().find(|(n, _)| n == name) {
                Some((_, a)) => Ok(a.clone()),
                None => Ok(new_null_array(
                    &arrow_type(ty).ok_or_else(|| EngineError(format!("unsupported type {ty}")))?,
                    1,
                )),
            }
        };
        let keys = sink
            .key_columns()
            .map(|c| column_of(&c.name, &c.ty))
            .collect::<Result<Vec<_>, _>>()?;
        let vals = sink
            .value_columns()
            .map(|c| column_of(&c.name, &c.ty))
            .collect::<Result<Vec<_>, _>>()?;
        let key = if keys.iter().all(|a| a.is_null(0)) {
            None
        } else {
            Serde::key(&sink).encode(&keys, 0)?
        };
        let value = Serde::value(&sink).encode(&vals, 0)?;
        let partition = self.log.partition_for(&sink.topic, key.as_deref())?;
        let mut b = BatchBuilder::new(Compression::None);
        b.push(
            timestamp.unwrap_or_else(now_ms),
            key.as_deref(),
            value.as_deref(),
            &[],
        );
        let mut bytes = b.finish()?;
        self.log.append(&sink.topic, partition, &mut bytes)?;
        Ok(String::new())
    }
}
