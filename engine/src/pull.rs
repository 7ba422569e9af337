//! Pull queries: `SELECT … FROM table [WHERE …]` without `EMIT CHANGES` answers once from
//! the table as it stands. A table an aggregation materializes is read from that query's
//! state (each window with `WINDOWSTART` and `WINDOWEND` after the key, as ksqlDB shows
//! them); any other table from its topic, the latest row of each key (tombstones delete).
//! The rows become an Arrow batch that the query's WHERE and projection, planned by
//! DataFusion with ksqlDB's functions, run over — so key lookups, ranges, window bounds and
//! whole-table scans all work (as `ksql.query.pull.table.scan.enabled`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::row::{RowConverter, SortField};
use sluice_sql::SqlType;
use sluice_sql::ast::{Query, SelectItem};

use crate::catalog::{Column, Source};
use crate::engine::{Engine, EngineError, StatementResult};
use crate::planner::QueryUse;
use crate::query::{PushQuery, Waiter};
use crate::schema::arrow_type;

impl Engine {
    /// Answers `q` from `table`'s current rows.
    pub(crate) fn pull(
        &mut self,
        q: &Query,
        table: &Source,
    ) -> Result<StatementResult, EngineError> {
        let (columns, rows) = self.table_rows(table)?;
        let source = Source {
            columns,
            window: None,
            headers: Vec::new(),
            timestamp: None,
            ..table.clone()
        };
        let planned = self.plan_over(q, source, "", QueryUse::Push)?;
        let mut pipeline = planned.pipeline;
        let mut rejected = Vec::new();
        let (_, outputs) = pipeline.filter_and_project(&rows, &mut rejected)?;
        let schema = pipeline.output_schema()?;
        let mut batch = RecordBatch::try_new(schema.clone(), outputs)?;
        if let Some(limit) = q.limit {
            batch = batch.slice(0, batch.num_rows().min(limit as usize));
        }
        pipeline.positions = Vec::new();
        let id = format!("transient_{}_{}", table.name, self.query_counter);
        Ok(StatementResult::Query(Box::new(PushQuery {
            pipeline,
            log: self.log.clone(),
            processing_log: self.processing_log,
            id,
            remaining: None,
            limit: None,
            until: Some(Vec::new()),
            schema,
            waiter: Waiter::new(),
            pending: vec![batch],
            join: None,
        })))
    }

    /// A table's current rows as a pipeline input batch (`ROWTIME, ROWPARTITION,
    /// ROWOFFSET`, then the columns), with the columns.
    fn table_rows(&self, table: &Source) -> Result<(Vec<Column>, RecordBatch), EngineError> {
        let materialized = self
            .queries
            .iter()
            .find(|h| h.sink_name == table.name)
            .and_then(|h| h.materialized());
        if let Some(m) = materialized {
            let (output, aggregated, outputs) = m?;
            let nkeys = output.iter().filter(|c| c.key).count();
            let mut columns: Vec<Column> = output[..nkeys].to_vec();
            let mut arrays: Vec<ArrayRef> = (0..3).map(|i| aggregated.column(i).clone()).collect();
            arrays.extend(outputs[..nkeys].iter().cloned());
            if table.window.is_some() {
                for (i, name) in [(3, "WINDOWSTART"), (4, "WINDOWEND")] {
                    columns.push(Column {
                        name: name.into(),
                        ty: SqlType::Bigint,
                        key: true,
                    });
                    arrays.push(aggregated.column(i).clone());
                }
            }
            columns.extend(output[nkeys..].iter().cloned());
            arrays.extend(outputs[nkeys..].iter().cloned());
            return Ok((columns.clone(), input_batch(&columns, arrays)?));
        }
        self.scan_table(table)
    }

    /// Reads a table's topic from the start: the latest row of each key.
    fn scan_table(&self, table: &Source) -> Result<(Vec<Column>, RecordBatch), EngineError> {
        let everything = Query::projection(vec![SelectItem::Wildcard], &table.name, None);
        let mut pipeline = self
            .plan_over(&everything, table.clone(), "", QueryUse::Push)?
            .pipeline;
        let columns = pipeline.output.clone();
        let nkeys = columns.iter().filter(|c| c.key).count();
        let key_types = columns[..nkeys]
            .iter()
            .map(|c| {
                arrow_type(&c.ty)
                    .map(SortField::new)
                    .ok_or_else(|| EngineError(format!("unsupported type {}", c.ty)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let converter = RowConverter::new(key_types)?;
        let partitions = self.log.describe_topic(&table.topic)?.partitions.len() as u32;
        pipeline.positions = (0..partitions)
            .map(|p| self.log.offsets(&table.topic, p).map(|(start, _)| start))
            .collect::<Result<_, _>>()?;
        // Each batch read: its input rows and output columns; the latest row of each key.
        let mut reads: Vec<(RecordBatch, Vec<ArrayRef>)> = Vec::new();
        let mut latest: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
        for p in 0..partitions {
            let (_, end) = self.log.offsets(&table.topic, p)?;
            while pipeline.positions[p as usize] < end {
                let Some(ev) = pipeline.poll_partition(self.log.as_ref(), p, "pull")? else {
                    break;
                };
                pipeline.positions[p as usize] = ev.next;
                // Rows and tombstones in offset order.
                let mut changes: Vec<Change> = Vec::new();
                for (batch, outputs) in ev.rows {
                    let keys = converter.convert_columns(&outputs[..nkeys])?;
                    let offsets = batch.column(2).clone();
                    let offsets = offsets
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::Int64Array>()
                        .ok_or_else(|| EngineError("ROWOFFSET is not BIGINT".into()))?;
                    for r in 0..batch.num_rows() {
                        changes.push((
                            offsets.value(r),
                            Some((reads.len(), r)),
                            keys.row(r).as_ref().to_vec(),
                        ));
                    }
                    reads.push((batch, outputs));
                }
                for (offset, _, key) in &ev.tombstones {
                    let (arrays, errors) = pipeline.source_key.decode(&[key.as_deref()])?;
                    if errors.is_empty() {
                        let keys = converter.convert_columns(&arrays)?;
                        changes.push((*offset, None, keys.row(0).as_ref().to_vec()));
                    }
                }
                changes.sort_by_key(|c| c.0);
                for (_, row, key) in changes {
                    match row {
                        Some(at) => latest.insert(key, at),
                        None => latest.remove(&key),
                    };
                }
            }
        }
        let picks: Vec<(usize, usize)> = latest.into_values().collect();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        let pick = |column: &dyn Fn(usize) -> ArrayRef| -> Result<ArrayRef, EngineError> {
            let sources: Vec<ArrayRef> = (0..reads.len()).map(column).collect();
            let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
            if refs.is_empty() {
                return Err(EngineError("empty".into()));
            }
            Ok(datafusion::arrow::compute::interleave(&refs, &picks)?)
        };
        if reads.is_empty() {
            return Ok((columns.clone(), input_batch(&columns, Vec::new())?));
        }
        for i in 0..3 {
            arrays.push(pick(&|b| reads[b].0.column(i).clone())?);
        }
        for c in 0..columns.len() {
            arrays.push(pick(&|b| reads[b].1[c].clone())?);
        }
        Ok((columns.clone(), input_batch(&columns, arrays)?))
    }
}

/// A change to a table in offset order: (offset, the new row as (read, row) or None for a
/// tombstone, the key).
type Change = (i64, Option<(usize, usize)>, Vec<u8>);

/// A batch of the pipeline input schema of `columns` (empty when `arrays` is).
fn input_batch(columns: &[Column], arrays: Vec<ArrayRef>) -> Result<RecordBatch, EngineError> {
    let source = Source {
        name: String::new(),
        kind: sluice_sql::ast::SourceKind::Table,
        topic: String::new(),
        columns: columns.to_vec(),
        key_format: crate::catalog::Format::Kafka,
        value_format: crate::catalog::Format::Json,
        wrap_single_value: true,
        key_delimiter: ',',
        value_delimiter: ',',
        timestamp: None,
        read_only: false,
        headers: Vec::new(),
        window: None,
    };
    let schema = Engine::input_schema(&source)?;
    if arrays.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let batch = RecordBatch::try_new(Arc::new(schema.as_ref().clone()), arrays)?;
    in_key_order(columns, batch)
}

/// The rows in key order, as ksqlDB's state stores answer a scan (and so a LIMIT takes the
/// first keys, not arbitrary ones).
fn in_key_order(columns: &[Column], batch: RecordBatch) -> Result<RecordBatch, EngineError> {
    // The input batch: ROWTIME, ROWPARTITION, ROWOFFSET, then the columns.
    let keys: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| batch.column(3 + i).clone())
        .collect();
    if keys.is_empty() || batch.num_rows() < 2 {
        return Ok(batch);
    }
    let fields = keys
        .iter()
        .map(|a| SortField::new(a.data_type().clone()))
        .collect();
    let rows = RowConverter::new(fields)?.convert_columns(&keys)?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
    let indices = datafusion::arrow::array::UInt32Array::from(order);
    Ok(datafusion::arrow::compute::take_record_batch(
        &batch, &indices,
    )?)
}
