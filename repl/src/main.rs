//! The `sluice` binary: parses the command line, opens the data directory and runs the
//! command. Errors end as one line on stderr and a non-zero exit, never a panic.

mod allocator;
mod bench;
mod cli;
mod consume;
mod cpu;
mod groups;
mod interrupt;
mod perf;
mod produce;
mod remote;
mod render;
mod serve;
mod session;
mod shell;
mod test_cmd;
mod text;
mod topics;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use sluice_engine::{Engine, EngineOptions};
use sluice_storage::LogStore;

use cli::{BenchCommand, Cli, Command, ServerArgs};

fn main() -> ExitCode {
    allocator::tune();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Some(Command::Server(_))) {
        // `sluice consume … | head` ends quietly, as Unix tools do, instead of panicking on
        // a closed stdout. Not for the server: its sockets must not raise SIGPIPE.
        // SAFETY: setting a signal's disposition to its default, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = run(cli);
    cpu::write_usage_file();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open(data_dir: &std::path::Path) -> Result<LogStore> {
    LogStore::open(data_dir)
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))
}

fn run(cli: Cli) -> Result<()> {
    // `sluice test` runs every case in its own temporary log, not in the data directory.
    if let Some(Command::Test(args)) = &cli.command {
        return test_cmd::run(args);
    }
    if let Some(Command::Bench(BenchCommand::Nexmark(args))) = cli.command {
        return bench::nexmark(args);
    }
    if let Some(url) = &cli.server {
        return remote(url, &cli.command);
    }
    if let Some(bootstrap) = &cli.bootstrap_server {
        return over_kafka(bootstrap, cli.command);
    }
    // `sluice server --config server.properties` may name the data directory.
    let properties = match &cli.command {
        Some(Command::Server(ServerArgs {
            config: Some(path), ..
        })) => Some(sluice_server::properties::load(path).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let data_dir = cli.data_dir_or(properties.as_ref().and_then(|p| p.log_dir.as_deref()));
    let store = Arc::new(open(&data_dir)?);
    let result = match cli.command {
        None => repl(&store, &data_dir),
        Some(Command::Sql(a)) => sql(&store, &a),
        Some(Command::Topics(c)) => topics::run(store.as_ref(), c),
        Some(Command::Produce(a)) => produce::run(store.as_ref(), a),
        Some(Command::Consume(a)) => consume::run(store.as_ref(), a),
        Some(Command::Groups(c)) => groups::run(store.as_ref(), c),
        Some(Command::Perf(c)) => perf::run(&store, c),
        Some(Command::Server(a)) => {
            engine(&store).and_then(|e| serve::run(&store, e, &a, properties))
        }
        Some(Command::Bench(BenchCommand::NexmarkGen(a))) => bench::nexmark_gen(&store, a),
        Some(Command::Bench(BenchCommand::Nexmark(_))) | Some(Command::Test(_)) => Ok(()),
    };
    let closed = store.close().context("closing the log");
    result.and(closed)
}

/// An engine over the data directory: its catalog and queries come back from the command
/// topic.
fn engine(store: &Arc<LogStore>) -> Result<Engine> {
    Engine::open(store.clone(), EngineOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("opening the SQL engine")
}

/// `sluice` without a command: the REPL.
fn repl(store: &Arc<LogStore>, data_dir: &std::path::Path) -> Result<()> {
    let mut engine = engine(store)?;
    shell::run(shell::Backend::Local {
        engine: &mut engine,
        data_dir,
    })
}

/// `--server URL`: the REPL or `sluice sql` against a running server's REST API.
fn remote(url: &str, command: &Option<Command>) -> Result<()> {
    match command {
        None => shell::run(shell::Backend::Remote(remote::Remote::connect(url)?)),
        Some(Command::Sql(args)) => {
            let text = sql_text(args)?;
            session::fail_if_empty(&text)?;
            let mut remote = remote::Remote::connect(url)?;
            interrupt::install();
            let stdout = std::io::stdout();
            remote.run_text(&text, &mut stdout.lock())
        }
        Some(_) => anyhow::bail!(
            "--server is for the REPL and `sluice sql`; the other commands read the data directory (--data-dir)"
        ),
    }
}

/// `--bootstrap-server host:port`: the log commands against a Kafka broker.
fn over_kafka(bootstrap: &str, command: Option<Command>) -> Result<()> {
    let connect = || {
        sluice_server::kafka_client::KafkaLog::connect(bootstrap)
            .with_context(|| format!("cannot reach a Kafka broker at {bootstrap}"))
    };
    match command {
        Some(Command::Topics(c)) => topics::run(&connect()?, c),
        Some(Command::Produce(a)) => produce::run(&connect()?, a),
        Some(Command::Consume(a)) => consume::run(&connect()?, a),
        Some(Command::Groups(c)) => groups::run(&connect()?, c),
        _ => anyhow::bail!(
            "--bootstrap-server is for `topics`, `produce`, `consume` and `groups`; the REPL and `sluice sql` take --server http://…"
        ),
    }
}

fn sql_text(args: &cli::SqlArgs) -> Result<String> {
    match (&args.execute, &args.file) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))
        }
        (None, None) => anyhow::bail!("give --execute or --file"),
    }
}

/// `sluice sql --execute … | --file …`.
fn sql(store: &Arc<LogStore>, args: &cli::SqlArgs) -> Result<()> {
    let text = sql_text(args)?;
    session::fail_if_empty(&text)?;
    let mut engine = engine(store)?;
    interrupt::install();
    engine.start();
    let result = session::run_sql(&mut engine, &text, args.no_wait);
    engine.stop();
    result
}
