//! Query results in ksqlDB's REST shapes: the header's schema text (`` `ID` BIGINT KEY, … ``),
//! rows as JSON arrays of column values, and column types as DESCRIBE's schema objects.

use serde_json::{Value, json};
use sluice_engine::arrow::record_batch::RecordBatch;
use sluice_engine::catalog::Column;
use sluice_engine::format::json::value_json;
use sluice_sql::types::SqlType;

/// `` `ID` BIGINT KEY, `NAME` STRING `` — key columns marked when `mark_keys` (pull queries
/// over tables, as ksqlDB writes them).
pub(crate) fn schema_text(columns: &[Column], mark_keys: bool) -> String {
    columns
        .iter()
        .map(|c| {
            let key = if mark_keys && c.key { " KEY" } else { "" };
            format!("`{}` {}{key}", c.name, c.ty)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each row of `batch` as a JSON array text (`[1,"a",null]`), appended to `out` one by one
/// through `each`.
pub(crate) fn rows_json(
    columns: &[Column],
    batch: &RecordBatch,
    mut each: impl FnMut(&str),
) -> Result<(), String> {
    let mut row_text = String::new();
    for row in 0..batch.num_rows() {
        row_text.clear();
        row_text.push('[');
        for (i, (column, array)) in columns.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                row_text.push(',');
            }
            value_json(&mut row_text, &column.ty, array.as_ref(), row)
                .map_err(|e| e.to_string())?;
        }
        row_text.push(']');
        each(&row_text);
    }
    Ok(())
}

/// A column type as ksqlDB's `SchemaInfo`: `{"type", "fields", "memberSchema"}`.
pub(crate) fn schema_json(ty: &SqlType) -> Value {
    match ty {
        SqlType::Array(member) => {
            json!({"type": "ARRAY", "fields": null, "memberSchema": schema_json(member)})
        }
        SqlType::Map(_, value) => {
            json!({"type": "MAP", "fields": null, "memberSchema": schema_json(value)})
        }
        SqlType::Struct(fields) => json!({
            "type": "STRUCT",
            "fields": fields
                .iter()
                .map(|(name, t)| json!({"name": name, "schema": schema_json(t)}))
                .collect::<Vec<_>>(),
            "memberSchema": null,
        }),
        SqlType::Decimal { precision, scale } => json!({
            "type": "DECIMAL", "fields": null, "memberSchema": null,
            "parameters": {"precision": precision, "scale": scale},
        }),
        other => {
            let name = other.to_string();
            json!({"type": name, "fields": null, "memberSchema": null})
        }
    }
}
