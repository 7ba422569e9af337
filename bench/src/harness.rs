//! `sluice bench nexmark`: generates the events once, then runs each query as a persistent
//! query in a separate `sluice sql` process over its own copy of the data (the segment files
//! hard-linked, never written), measures that process, and summarises the query's output.
//! Per core = events / CPU-seconds (user + system) of the whole process: start-up, catalog,
//! every query of the script, checkpoints and the sink's writes included, as a user pays it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use sluice_storage::LogStore;

use crate::generate::{self, GenOptions, GenStats};
use crate::latency::{self, LatencyFigures};
use crate::measure::{self, Usage};
use crate::outputs::{self, OutputSummary};
use crate::queries::{self, NexmarkQuery};

#[derive(Clone, Debug)]
pub struct HarnessOptions {
    /// The `sluice` binary that runs the queries.
    pub sluice: PathBuf,
    pub events: u64,
    pub cores: Option<usize>,
    /// A fresh directory for this run's data (removed by the caller).
    pub work_dir: PathBuf,
    pub export: Option<PathBuf>,
    /// Measure latency at this offered rate too.
    pub latency_rate: Option<u64>,
    pub latency_seconds: u64,
}

/// One query's measured run.
#[derive(Clone, Debug)]
pub struct QueryRun {
    pub query: String,
    pub events: u64,
    pub usage: Usage,
    pub output: OutputSummary,
    pub latency: Option<LatencyFigures>,
}

impl QueryRun {
    pub fn per_core(&self) -> f64 {
        self.events as f64 / self.usage.cpu().as_secs_f64().max(1e-9)
    }

    pub fn wall_rate(&self) -> f64 {
        self.events as f64 / self.usage.wall.as_secs_f64().max(1e-9)
    }

    /// The report line: `<query>: N events/s per core (…)`.
    pub fn line(&self) -> String {
        let u = &self.usage;
        let mut line = format!(
            "{}: {:.0} events/s per core (CPU {:.2} s = {:.2} user + {:.2} sys; wall {:.2} s, {:.0} events/s; peak RSS {:.0} MB; {} rows out)",
            self.query,
            self.per_core(),
            u.cpu().as_secs_f64(),
            u.user.as_secs_f64(),
            u.sys.as_secs_f64(),
            u.wall.as_secs_f64(),
            self.wall_rate(),
            u.max_rss_kb as f64 / 1024.0,
            self.output.rows,
        );
        if let Some(l) = &self.latency {
            line.push_str(&format!("\n{}: {}", self.query, l.describe()));
        }
        line
    }

    pub fn to_json(&self) -> serde_json::Value {
        let u = &self.usage;
        serde_json::json!({
            "query": self.query,
            "events": self.events,
            "events_per_cpu_s": self.per_core().round(),
            "events_per_wall_s": self.wall_rate().round(),
            "cpu_s": u.cpu().as_secs_f64(),
            "user_s": u.user.as_secs_f64(),
            "sys_s": u.sys.as_secs_f64(),
            "wall_s": u.wall.as_secs_f64(),
            "peak_rss_mb": u.max_rss_kb as f64 / 1024.0,
            "output": {
                "topic": self.output.topic,
                "rows": self.output.rows,
                "sums": self.output.sums,
            },
            "latency": self.latency.as_ref().map(LatencyFigures::to_json),
        })
    }
}

/// Generates the events into `<work>/source` (and the export file).
pub fn generate_source(opts: &HarnessOptions) -> Result<GenStats> {
    let dir = opts.work_dir.join("source");
    let store = LogStore::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut gen_opts = GenOptions::new(opts.events);
    gen_opts.export = opts.export.clone();
    gen_opts.progress = true;
    let stats = generate::run(&store, &gen_opts);
    store.close().context("closing the generated log")?;
    stats
}

/// Runs one query over a copy of the generated events.
pub fn run_query(opts: &HarnessOptions, q: &NexmarkQuery) -> Result<QueryRun> {
    let run_dir = opts.work_dir.join(format!("run-{}", q.name));
    if run_dir.exists() {
        fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
    }
    clone_data_dir(&opts.work_dir.join("source"), &run_dir)?;
    let script = opts.work_dir.join(format!("{}.sql", q.name));
    fs::write(&script, queries::script(q))
        .with_context(|| format!("writing {}", script.display()))?;
    let stderr_path = opts.work_dir.join(format!("{}.stderr", q.name));
    let stderr = fs::File::create(&stderr_path)?;
    let usage_path = opts.work_dir.join(format!("{}.usage.json", q.name));
    let mut cmd = Command::new(&opts.sluice);
    cmd.env("SLUICE_USAGE_FILE", &usage_path)
        .arg("--data-dir")
        .arg(&run_dir)
        .args(["sql", "--file"])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // Measure the query, not the write-back of what came before it (the generated log, the
    // export, the last query's output): the kernel's flusher would run beside it.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let mut usage = measure::run(&mut cmd, opts.cores, &format!("sluice sql ({})", q.name))
        .map_err(|e| {
            let tail = fs::read_to_string(&stderr_path).unwrap_or_default();
            let lines: Vec<&str> = tail.lines().collect();
            e.context(lines[lines.len().saturating_sub(5)..].join("\n"))
        })?;
    // The child's own peak: wait4's figure also counts the memory of this process, which
    // the child was forked from.
    if let Some(kb) = own_peak_rss_kb(&usage_path) {
        usage.max_rss_kb = kb;
    }
    let store = LogStore::open(&run_dir)?;
    let output = outputs::summarize(&store, q.sink, q.table);
    store.close()?;
    fs::remove_dir_all(&run_dir).ok();
    let latency = match opts.latency_rate {
        Some(rate) => Some(latency::measure(
            &opts.work_dir.join(format!("latency-{}", q.name)),
            q,
            rate,
            opts.latency_seconds,
        )?),
        None => None,
    };
    Ok(QueryRun {
        query: q.name.to_string(),
        events: opts.events,
        usage,
        output: output?,
        latency,
    })
}

fn own_peak_rss_kb(path: &Path) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["peak_rss_kb"].as_u64()
}

/// A copy of a closed data directory: segment files hard-linked (a query only reads its
/// sources, and the log never rewrites a closed segment in place), everything else copied.
fn clone_data_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".lock" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            clone_data_dir(&src, &dst)?;
        } else if src.extension().is_some_and(|e| e == "log") {
            fs::hard_link(&src, &dst)
                .or_else(|_| fs::copy(&src, &dst).map(|_| ()))
                .with_context(|| format!("linking {}", src.display()))?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}
