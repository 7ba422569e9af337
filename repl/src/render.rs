//! Statement results as text, like the ksqlDB CLI prints them: tables for SHOW and DESCRIBE,
//! a header and then one `|`-separated row per result as a push query streams.

use std::io::Write;

use anyhow::Result;
use sluice_engine::arrow::array::RecordBatch;
use sluice_engine::arrow::util::display::{ArrayFormatter, FormatOptions};

/// A table as the ksqlDB CLI prints SHOW and DESCRIBE results: ` a | b ` cells, a rule
/// under the header and after the last row.
pub fn table(
    out: &mut dyn Write,
    title: Option<&str>,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<()> {
    if let Some(t) = title {
        writeln!(out, "{t}")?;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        parts.join("|").trim_end().to_string()
    };
    let rule = "-".repeat(
        widths
            .iter()
            .map(|w| w + 3)
            .sum::<usize>()
            .saturating_sub(1),
    );
    writeln!(out, "{}", line(header))?;
    writeln!(out, "{rule}")?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(out, "{rule}")?;
    Ok(())
}

/// Column widths for a streamed result: wide enough for the header and typical values.
pub fn widths(names: &[String]) -> Vec<usize> {
    names.iter().map(|n| n.len().max(12)).collect()
}

fn rule(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(*w + 2));
        s.push('+');
    }
    s
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::from("|");
    for (c, w) in cells.iter().zip(widths) {
        s.push_str(&format!(" {c:<w$} |"));
    }
    s
}

/// The header of a streamed result.
pub fn stream_header(out: &mut dyn Write, names: &[String], widths: &[usize]) -> Result<()> {
    writeln!(out, "{}", rule(widths))?;
    writeln!(out, "{}", line(names, widths))?;
    writeln!(out, "{}", rule(widths))?;
    Ok(())
}

pub fn stream_footer(out: &mut dyn Write, widths: &[usize]) -> Result<()> {
    writeln!(out, "{}", rule(widths))?;
    Ok(())
}

/// One streamed row of cells already as text.
pub fn stream_line(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> Result<()> {
    writeln!(out, "{}", line(cells, widths))?;
    Ok(())
}

/// The rows of a batch, one line each.
pub fn stream_rows(out: &mut dyn Write, batch: &RecordBatch, widths: &[usize]) -> Result<()> {
    let options = FormatOptions::default().with_null("null");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = formatters
            .iter()
            .map(|f| f.value(row).to_string())
            .collect();
        writeln!(out, "{}", line(&cells, widths))?;
    }
    Ok(())
}
