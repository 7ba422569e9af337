//! `sluice test`: ksqlDB's query-validation test files through the real engine, like
//! ksqlDB's `ksql-test-runner`: a line per file, a total, and optionally a JSON report.
//! REST cases (`rest-query-validation-tests`: cases with `responses`) run against a REST
//! server over HTTP.

use anyhow::{Context, Result, bail};
use sluice_engine::conformance::model::{TestFile, Variant};
use sluice_engine::conformance::runner::{self, Counts, Status, run_path_with};

use crate::cli::TestArgs;

pub fn run(args: &TestArgs) -> Result<()> {
    let run = |file: &TestFile, v: &Variant<'_>| {
        if file.is_rest() {
            sluice_server::rest::rqtt::run_variant(v)
        } else {
            runner::run_variant(v)
        }
    };
    let results =
        run_path_with(&args.path, args.filter.as_deref(), &run).map_err(anyhow::Error::msg)?;
    let mut total = Counts::default();
    let mut cases = Vec::new();
    for (file, rs) in &results {
        let counts = Counts::of(rs);
        println!("{file}: {counts}");
        total.add(counts);
        for c in rs {
            let (status, reason) = match &c.status {
                Status::Pass => ("pass", None),
                Status::Fail(why) => ("fail", Some(why.clone())),
                Status::Skip(why) => ("skip", Some(why.clone())),
            };
            cases.push(serde_json::json!({
                "file": format!("{}.json", c.file), "index": c.index, "name": c.name,
                "status": status, "reason": reason,
            }));
        }
    }
    println!("total: {total}");
    if let Some(path) = &args.report {
        let report = serde_json::json!({"passed": total.passed, "failed": total.failed, "skipped": total.skipped, "cases": cases});
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if total.failed > 0 {
        bail!("{} case(s) failed", total.failed);
    }
    Ok(())
}
