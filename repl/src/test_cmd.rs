//! `sluice test`: ksqlDB's query-validation test files through the real engine, like
//! ksqlDB's `ksql-test-runner`: a line per file, a total, and optionally a JSON report.

use anyhow::{Context, Result, bail};
use sluice_engine::conformance::runner::{Status, run_path};

use crate::cli::TestArgs;

pub fn run(args: &TestArgs) -> Result<()> {
    let results = run_path(&args.path, args.filter.as_deref()).map_err(anyhow::Error::msg)?;
    let (mut pass, mut fail, mut skip) = (0usize, 0usize, 0usize);
    let mut cases = Vec::new();
    for (file, rs) in &results {
        let p = rs.iter().filter(|c| c.status == Status::Pass).count();
        let s = rs
            .iter()
            .filter(|c| matches!(c.status, Status::Skip(_)))
            .count();
        let f = rs.len() - p - s;
        println!("{file}: {p} passed / {f} failed / {s} skipped");
        pass += p;
        fail += f;
        skip += s;
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
    println!("total: {pass} passed / {fail} failed / {skip} skipped");
    if let Some(path) = &args.report {
        let report =
            serde_json::json!({"passed": pass, "failed": fail, "skipped": skip, "cases": cases});
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if fail > 0 {
        bail!("{fail} case(s) failed");
    }
    Ok(())
}
