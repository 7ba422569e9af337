//! The REPL, Sluice's main job: `sluice` with no command opens it on an embedded engine
//! (or, with `--server`, on a running server's REST API: see `remote`). rustyline reads
//! lines (history in a file, tab completion of keywords and of the catalog's names); a
//! statement may span lines and ends with `;`. Persistent queries of an embedded engine run
//! on their own threads while the REPL is open; closing it stops them cleanly and the next
//! start resumes them from the command topic.

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use sluice_engine::Engine;

use crate::remote::Remote;
use crate::{interrupt, session};

/// What the REPL runs statements on.
pub enum Backend<'a> {
    /// An engine over the data directory, in this process.
    Local {
        engine: &'a mut Engine,
        data_dir: &'a std::path::Path,
    },
    /// A running server's REST API.
    Remote(Remote),
}

impl Backend<'_> {
    fn run_text(&mut self, text: &str, out: &mut dyn Write) -> Result<()> {
        match self {
            Backend::Local { engine, .. } => session::run_text(engine, text, out),
            Backend::Remote(remote) => remote.run_text(text, out),
        }
    }

    /// Source and topic names for tab completion.
    fn names(&self) -> Vec<String> {
        match self {
            Backend::Local { engine, .. } => {
                let mut all: Vec<String> =
                    engine.catalog().sources().map(|s| s.name.clone()).collect();
                all.extend(engine.log().list_topics().into_iter().map(|t| t.name));
                all
            }
            Backend::Remote(remote) => remote.names(),
        }
    }

    fn banner(&self) -> [String; 2] {
        let version = env!("CARGO_PKG_VERSION");
        match self {
            Backend::Local { engine, data_dir } => [
                format!(
                    "Sluice {version} — ksqlDB's SQL over the log in {}",
                    data_dir.display()
                ),
                format!(
                    "{} stream(s), {} persistent quer(ies) running. Type `help` for examples, `exit` to leave.",
                    engine.catalog().sources().count(),
                    engine.query_ids().len()
                ),
            ],
            Backend::Remote(remote) => [
                format!(
                    "Sluice {version} — ksqlDB's SQL on the server at {} (server version {})",
                    remote.url(),
                    remote.server_version()
                ),
                "Type `help` for examples, `exit` to leave (the server's queries keep running)."
                    .to_string(),
            ],
        }
    }
}

const PROMPT: &str = "sluice> ";
const CONTINUATION: &str = "     >> ";

/// Words offered by tab completion besides the catalog's names.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "EMIT",
    "CHANGES",
    "LIMIT",
    "CREATE",
    "STREAM",
    "TABLE",
    "AS",
    "WITH",
    "KAFKA_TOPIC",
    "VALUE_FORMAT",
    "KEY_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "INSERT",
    "INTO",
    "VALUES",
    "DROP",
    "DELETE",
    "TOPIC",
    "TERMINATE",
    "SHOW",
    "LIST",
    "STREAMS",
    "TABLES",
    "TOPICS",
    "QUERIES",
    "PROPERTIES",
    "FUNCTIONS",
    "DESCRIBE",
    "EXTENDED",
    "PRINT",
    "BEGINNING",
    "INTERVAL",
    "SET",
    "UNSET",
    "PARTITION",
    "BY",
    "KEY",
    "PRIMARY",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "LIKE",
    "BETWEEN",
    "IN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "RUN",
    "SCRIPT",
    "EXPLAIN",
    "INT",
    "INTEGER",
    "BIGINT",
    "DOUBLE",
    "DECIMAL",
    "STRING",
    "VARCHAR",
    "BOOLEAN",
    "BYTES",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "ARRAY",
    "MAP",
    "STRUCT",
    "JSON",
    "DELIMITED",
    "KAFKA",
    "NONE",
    "EXIT",
    "QUIT",
    "HELP",
];

struct SqlHelper {
    /// Source and topic names, refreshed after every statement.
    names: Arc<Mutex<Vec<String>>>,
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let upper = word.to_uppercase();
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        let mut out: Vec<Pair> = KEYWORDS
            .iter()
            .map(|k| k.to_string())
            .chain(names)
            .filter(|c| c.to_uppercase().starts_with(&upper))
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for SqlHelper {}
impl Helper for SqlHelper {}

/// Where the REPL keeps its history: `$SLUICE_HISTORY`, else `~/.sluice_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".sluice_history"))
}

fn refresh_names(backend: &Backend, names: &Arc<Mutex<Vec<String>>>) {
    let all = backend.names();
    if let Ok(mut n) = names.lock() {
        *n = all;
    }
}

const HELP: &str = "\
Type ksqlDB statements ended by `;` (they may span lines), for example:
  SHOW STREAMS;   SHOW TOPICS;   SHOW QUERIES;   DESCRIBE <stream>;
  CREATE STREAM s (id INT KEY, v STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
  INSERT INTO s (id, v) VALUES (1, 'hello');
  SELECT * FROM s EMIT CHANGES;          (Ctrl-C ends it; the REPL stays)
  SET 'auto.offset.reset'='earliest';
  CREATE STREAM t AS SELECT id, UCASE(v) AS v FROM s;   TERMINATE <query id>;
  RUN SCRIPT 'file.sql';   PRINT 's' FROM BEGINNING;
`exit` or Ctrl-D leaves (persistent queries stop and resume at the next start).";

/// Runs the REPL until `exit` or end of input.
pub fn run(mut backend: Backend) -> Result<()> {
    interrupt::install();
    if let Backend::Local { engine, .. } = &mut backend {
        engine.start();
    }
    let names = Arc::new(Mutex::new(Vec::new()));
    refresh_names(&backend, &names);
    let mut rl: Editor<SqlHelper, DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(SqlHelper {
        names: names.clone(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    for line in backend.banner() {
        println!("{line}");
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        match rl.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() {
                    let word = line.trim().trim_end_matches(';').to_lowercase();
                    match word.as_str() {
                        "" => continue,
                        "exit" | "quit" => {
                            let _ = rl.add_history_entry(line.trim());
                            break;
                        }
                        "help" => {
                            println!("{HELP}");
                            continue;
                        }
                        _ => {}
                    }
                }
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                if !sluice_sql::is_complete(&buffer) {
                    continue;
                }
                let text = std::mem::take(&mut buffer);
                let _ = rl.add_history_entry(text.trim());
                if let Some(h) = &history {
                    let _ = rl.save_history(h);
                }
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                if let Err(e) = backend.run_text(&text, &mut out) {
                    eprintln!("{e:#}");
                }
                refresh_names(&backend, &names);
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C at the prompt drops the statement being typed, as a shell does.
                buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    println!("Exiting Sluice.");
    if let Backend::Local { engine, .. } = &mut backend {
        engine.stop();
    }
    Ok(())
}
