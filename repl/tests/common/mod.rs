//! Helpers for tests that run the `sluice` binary.
#![allow(dead_code)]

pub mod server;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub fn sluice(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("--data-dir").arg(data).args(args);
    run(command, stdin)
}

/// Runs `command` with `stdin` (if any) as its input; its output once it exits.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn ok(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = sluice(data, args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn err(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = sluice(data, args, stdin);
    assert!(!out.status.success(), "sluice {args:?} should fail");
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(!e.contains("panicked"), "{e}");
    e
}

pub fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}
