//! The `sluice` binary: parses the command line, opens the data directory and runs the
//! command. Errors end as one line on stderr and a non-zero exit, never a panic.

mod cli;
mod consume;
mod cpu;
mod groups;
mod perf;
mod produce;
mod test_cmd;
mod text;
mod topics;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use sluice_storage::LogStore;

use cli::{Cli, Command};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open(cli: &Cli) -> Result<LogStore> {
    LogStore::open(&cli.data_dir)
        .with_context(|| format!("cannot open the data directory {}", cli.data_dir.display()))
}

fn run(cli: Cli) -> Result<()> {
    // `sluice test` runs every case in its own temporary log, not in the data directory.
    if let Some(Command::Test(args)) = &cli.command {
        return test_cmd::run(args);
    }
    let store = open(&cli)?;
    let result = match cli.command {
        None => welcome(&store),
        Some(Command::Topics(c)) => topics::run(&store, c),
        Some(Command::Produce(a)) => produce::run(&store, a),
        Some(Command::Consume(a)) => consume::run(&store, a),
        Some(Command::Groups(c)) => groups::run(&store, c),
        Some(Command::Perf(c)) => perf::run(&store, c),
        Some(Command::Test(_)) => Ok(()),
    };
    let closed = store.close().context("closing the log");
    result.and(closed)
}

/// `sluice` without a command: until the SQL REPL lands, a short status and what to run.
fn welcome(store: &LogStore) -> Result<()> {
    let topics = store.describe_topics();
    println!(
        "Sluice {} — data directory {}",
        env!("CARGO_PKG_VERSION"),
        store.data_dir().display()
    );
    let user: Vec<_> = topics.iter().filter(|t| !t.internal).collect();
    println!(
        "{} topic(s), {} consumer group(s)",
        user.len(),
        store.group_names().len()
    );
    for t in user {
        let records: u64 = t
            .partitions
            .iter()
            .map(|p| p.high_watermark - p.log_start_offset)
            .sum();
        println!(
            "  {:<30} {} partition(s), {} record(s)",
            t.name,
            t.partitions.len(),
            records
        );
    }
    println!();
    println!("The SQL REPL is not here yet. Commands: topics, produce, consume, groups, perf");
    println!("(`sluice --help`, `sluice <command> --help`).");
    Ok(())
}
