//! Running SQL text against an engine and printing what each statement answers: the part
//! the REPL and `sluice sql` share. `RUN SCRIPT` is expanded here; push queries and PRINT
//! stream until their LIMIT, their end, or Ctrl-C.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sluice_engine::{Engine, Printer, PushQuery, StatementResult};
use sluice_sql::ast::Statement;

use crate::{interrupt, render};

/// How long a streaming loop waits for data before it looks for Ctrl-C again.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Runs every statement of `sql`, printing results to `out`. Stops at the first statement
/// that fails and returns its error.
pub fn run_text(engine: &mut Engine, sql: &str, out: &mut dyn Write) -> Result<()> {
    let statements = sluice_sql::parse_with_text(sql).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (stmt, text) in statements {
        if let Statement::RunScript(path) = &stmt {
            let script = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the script {path}"))?;
            run_text(engine, &script, out)?;
            continue;
        }
        let result = engine
            .execute(&stmt, &text)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        show(result, out)?;
    }
    Ok(())
}

fn show(result: StatementResult, out: &mut dyn Write) -> Result<()> {
    match result {
        StatementResult::Message(m) => {
            if !m.is_empty() {
                writeln!(out, " {m}")?;
            }
        }
        StatementResult::Table {
            title,
            header,
            rows,
        } => render::table(out, title.as_deref(), &header, &rows)?,
        StatementResult::Query(q) => stream_query(*q, out)?,
        StatementResult::Print(p) => stream_print(*p, out)?,
    }
    out.flush()?;
    Ok(())
}

/// Streams a push query's rows until its LIMIT, its end, or Ctrl-C.
fn stream_query(mut q: PushQuery, out: &mut dyn Write) -> Result<()> {
    let names: Vec<String> = q.columns().into_iter().map(|(n, _)| n).collect();
    let widths = render::widths(&names);
    render::stream_header(out, &names, &widths)?;
    out.flush()?;
    // (Re)installed each time: the line editor may have put its own handler in place.
    interrupt::install();
    interrupt::clear();
    let mut interrupted = false;
    loop {
        for batch in q.poll().map_err(|e| anyhow::anyhow!("{e}"))? {
            render::stream_rows(out, &batch, &widths)?;
        }
        out.flush()?;
        if q.is_done() {
            break;
        }
        if interrupt::pending() {
            interrupted = true;
            break;
        }
        q.wait(Instant::now() + WAIT_SLICE);
    }
    render::stream_footer(out, &widths)?;
    if interrupted {
        writeln!(out, "Query terminated")?;
    } else if let Some(limit) = q.limit() {
        writeln!(out, "Limit Reached ({limit} rows)")?;
    }
    interrupt::clear();
    Ok(())
}

fn stream_print(mut p: Printer, out: &mut dyn Write) -> Result<()> {
    interrupt::install();
    interrupt::clear();
    loop {
        for line in p.poll().map_err(|e| anyhow::anyhow!("{e}"))? {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if p.is_done() {
            break;
        }
        if interrupt::pending() {
            writeln!(out, "Topic printing ceased")?;
            break;
        }
        p.wait(Instant::now() + WAIT_SLICE);
    }
    interrupt::clear();
    Ok(())
}

/// `sluice sql`: statements from a flag or a file, then (unless `no_wait`) wait until every
/// persistent query has consumed its input.
pub fn run_sql(engine: &mut Engine, sql: &str, no_wait: bool) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_text(engine, sql, &mut out)?;
    if !no_wait {
        engine
            .run_until_idle()
            .map_err(|e| anyhow::anyhow!("waiting for queries: {e}"))?;
    }
    Ok(())
}

pub fn fail_if_empty(sql: &str) -> Result<()> {
    if sluice_sql::parse(sql)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_empty()
    {
        bail!("no statements to run");
    }
    Ok(())
}
