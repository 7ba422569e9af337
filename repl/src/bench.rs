//! `sluice bench`: the Nexmark generator over the data directory, and the Nexmark harness
//! (which makes its own data directories and runs this binary's `sluice sql` on them).

use anyhow::{Context, Result};
use sluice_bench::generate::{self, GenOptions};
use sluice_bench::harness::{self, HarnessOptions};
use sluice_bench::queries::{self, NexmarkQuery};
use sluice_bench::report::{self, Report};
use sluice_storage::LogStore;

use crate::cli::{NexmarkArgs, NexmarkGenArgs};

pub fn nexmark_gen(store: &LogStore, args: NexmarkGenArgs) -> Result<()> {
    let opts = GenOptions {
        events: args.events,
        rate: args.rate,
        topic_prefix: args.topic_prefix,
        partitions: args.partitions,
        export: args.export,
        base_time_ms: args.base_time,
        progress: true,
    };
    let stats = generate::run(store, &opts)?;
    println!("{}", stats.summary());
    Ok(())
}

/// `sluice bench nexmark`: generates the events in a work directory of its own, runs each
/// query in a child `sluice sql` (this binary) and reports; `--all` writes the tables.
pub fn nexmark(args: NexmarkArgs) -> Result<()> {
    let selected: Vec<&NexmarkQuery> = match &args.query {
        Some(name) if !args.all => vec![queries::find(name).with_context(|| {
            let names: Vec<&str> = queries::QUERIES.iter().map(|q| q.name).collect();
            format!("no Nexmark query {name}; there are {}", names.join(", "))
        })?],
        _ => queries::QUERIES.iter().collect(),
    };
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = WorkDir::create(&base)?;
    let opts = HarnessOptions {
        sluice: std::env::current_exe().context("finding the sluice binary")?,
        events: args.events,
        cores: args.cores,
        work_dir: work.0.clone(),
        export: args.export.clone(),
        latency_rate: args.rate,
        latency_seconds: args.latency_seconds,
    };
    let generated = harness::generate_source(&opts)?;
    eprintln!("generated {}", generated.summary());
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for q in selected {
        match harness::run_query(&opts, q) {
            Ok(run) => {
                println!("{}", run.line());
                runs.push(run);
            }
            Err(e) => {
                println!("{}: FAILED: {e:#}", q.name);
                failed.push(q.name);
            }
        }
    }
    let report = Report {
        events: args.events,
        cores: args.cores,
        generated: &generated,
        runs: &runs,
    };
    if args.all {
        let (md, json) = report.write(&args.results_dir)?;
        println!("wrote {} and {}", md.display(), json.display());
    }
    if let Some(path) = &args.json {
        report::write_json(path, &report.to_json())?;
    }
    if !failed.is_empty() {
        anyhow::bail!("{} failed", failed.join(", "));
    }
    Ok(())
}

/// A run's own directory under the work dir, removed when the run ends (also on error).
struct WorkDir(std::path::PathBuf);

impl WorkDir {
    fn create(base: &std::path::Path) -> Result<Self> {
        let dir = base.join(format!("sluice-nexmark-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).ok();
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
