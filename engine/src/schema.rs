//! ksqlDB types as Arrow types. Each ksqlDB type has exactly one Arrow representation, so a
//! value keeps its ksqlDB meaning through every batch: INT -> Int32, BIGINT -> Int64,
//! DOUBLE -> Float64, DECIMAL(p, s) -> Decimal128(p, s), STRING -> Utf8, BYTES -> Binary,
//! DATE -> Date32 (days), TIME -> Time32(ms), TIMESTAMP -> Timestamp(ms), ARRAY -> List,
//! MAP -> Map (string keys in practice), STRUCT -> Struct. Custom types are resolved before.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use sluice_sql::SqlType;

/// The Arrow type that carries values of `ty`; `None` for an unresolved custom type.
pub fn arrow_type(ty: &SqlType) -> Option<DataType> {
    Some(match ty {
        SqlType::Boolean => DataType::Boolean,
        SqlType::Int => DataType::Int32,
        SqlType::Bigint => DataType::Int64,
        SqlType::Double => DataType::Float64,
        SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        SqlType::String => DataType::Utf8,
        SqlType::Bytes => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
        SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        SqlType::Array(t) => DataType::List(Arc::new(Field::new("item", arrow_type(t)?, true))),
        SqlType::Map(k, v) => {
            let entries = Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", arrow_type(k)?, false),
                    Field::new("value", arrow_type(v)?, true),
                ])),
                false,
            );
            DataType::Map(Arc::new(entries), false)
        }
        SqlType::Struct(fields) => {
            let mut fs = Vec::with_capacity(fields.len());
            for (n, t) in fields {
                fs.push(Field::new(n, arrow_type(t)?, true));
            }
            DataType::Struct(Fields::from(fs))
        }
        SqlType::Custom(_) => return None,
    })
}

/// ksqlDB's name for the outermost kind of a type, as its error messages print it.
pub fn type_kind_name(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "BOOLEAN",
        SqlType::Int => "INTEGER",
        SqlType::Bigint => "BIGINT",
        SqlType::Double => "DOUBLE",
        SqlType::Decimal { .. } => "DECIMAL",
        SqlType::String => "STRING",
        SqlType::Bytes => "BYTES",
        SqlType::Date => "DATE",
        SqlType::Time => "TIME",
        SqlType::Timestamp => "TIMESTAMP",
        SqlType::Array(_) => "ARRAY",
        SqlType::Map(..) => "MAP",
        SqlType::Struct(_) => "STRUCT",
        SqlType::Custom(_) => "CUSTOM",
    }
}

/// The ksqlDB type of an Arrow type (the inverse of `arrow_type`, plus the integer and float
/// widths expressions may produce).
pub fn sql_type(dt: &DataType) -> Option<SqlType> {
    Some(match dt {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            SqlType::Int
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Decimal {
            precision: *p,
            scale: (*s).max(0) as u8,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytes,
        DataType::Date32 => SqlType::Date,
        DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
        DataType::Timestamp(_, _) => SqlType::Timestamp,
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            SqlType::Array(Box::new(sql_type(f.data_type())?))
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => SqlType::Map(
                Box::new(sql_type(kv[0].data_type())?),
                Box::new(sql_type(kv[1].data_type())?),
            ),
            _ => return None,
        },
        DataType::Struct(fs) => SqlType::Struct(
            fs.iter()
                .map(|f| Some((f.name().clone(), sql_type(f.data_type())?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// The ksqlDB name of the type an expression has (`INTEGER`, `ARRAY<STRING>`), `null` for
/// an untyped null, as ksqlDB's error messages name types.
pub fn type_name(t: &DataType) -> String {
    match sql_type(t) {
        Some(s) => s.to_string(),
        None if *t == DataType::Null => "null".into(),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_map_one_to_one() {
        let t = sluice_sql::parser::parse_statement("CREATE STREAM s (x MAP<STRING, ARRAY<STRUCT<A DECIMAL(4, 2)>>>) WITH (kafka_topic='t');")
            .unwrap();
        let sluice_sql::Statement::CreateSource(c) = t else {
            panic!()
        };
        let dt = arrow_type(&c.columns[0].ty).unwrap();
        assert_eq!(
            dt.to_string(),
            "Map(\"entries\": non-null Struct(\"key\": non-null Utf8, \"value\": List(Struct(\"A\": Decimal128(4, 2)))), unsorted)"
        );
        assert_eq!(arrow_type(&SqlType::Custom("X".into())), None);
    }
}
