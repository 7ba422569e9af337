//! ksqlDB's functions where DataFusion's differ or are missing, one per file, registered with
//! ksqlDB's names in every engine session. `register` also adds ksqlDB's names for DataFusion
//! functions whose semantics already match.

mod as_value;
pub(crate) mod dates;
mod elt_field;
mod geo;
pub(crate) mod java_time;
mod json;
mod math;
mod round;
mod row_udf;
mod strings;
mod to_json_string;

use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::ScalarUDF;

/// ksqlDB name -> DataFusion function with the same meaning.
const ALIASES: &[(&str, &str)] = &[
    ("len", "character_length"),
    ("ucase", "upper"),
    ("lcase", "lower"),
    ("slice", "array_slice"),
    ("ifnull", "coalesce"),
    // ksqlDB's ARRAY_REMOVE removes every occurrence.
    ("array_remove", "array_remove_all"),
];

/// Registers Sluice's ksqlDB functions in `ctx`.
pub fn register(ctx: &SessionContext) -> Result<()> {
    ctx.register_udf(ScalarUDF::from(as_value::AsValue::new()));
    ctx.register_udf(ScalarUDF::from(to_json_string::ToJsonString::new()));
    ctx.register_udf(ScalarUDF::from(round::Round::new()));
    ctx.register_udf(ScalarUDF::from(round::Round::trunc()));
    ctx.register_udf(ScalarUDF::from(elt_field::Elt::new()));
    ctx.register_udf(ScalarUDF::from(elt_field::Field::new()));
    for f in dates::all()
        .into_iter()
        .chain(json::all())
        .chain(geo::all())
        .chain(math::all())
        .chain(strings::all())
    {
        ctx.register_udf(f);
    }
    for (ksql, df) in ALIASES {
        // One missing DataFusion function must not cost the others their names.
        match ctx.udf(df) {
            Ok(f) => ctx.register_udf(f.as_ref().clone().with_aliases([*ksql])),
            Err(e) => {
                tracing::error!(function = %ksql, error = %e, "no DataFusion function for this ksqlDB name")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_resolve() {
        let ctx = SessionContext::new();
        register(&ctx).unwrap();
        for name in [
            "as_value", "len", "ucase", "lcase", "upper", "slice", "round",
        ] {
            assert!(ctx.udf(name).is_ok(), "{name}");
        }
    }
}
