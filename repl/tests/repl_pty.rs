//! The REPL driven through a pseudo-terminal, as a person types into it: a statement over
//! several lines, a push query cancelled with Ctrl-C while the REPL lives on, and history
//! recalled with the Up arrow after a restart; the same against a running server
//! (`--server http://…`).

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A `sluice` REPL on the slave side of a pty; everything it prints collects in `output`.
struct Repl {
    /// `None` once `exit` has waited for it.
    child: Option<Child>,
    master: File,
    output: Arc<(Mutex<String>, Condvar)>,
    /// Where the next `expect` starts looking.
    seen: usize,
}

impl Repl {
    fn start(data: &Path, history: &Path) -> Repl {
        Repl::start_with(&["--data-dir".as_ref(), data.as_os_str()], history)
    }

    /// `sluice ARGS` (the REPL) on a fresh pty.
    fn start_with(args: &[&std::ffi::OsStr], history: &Path) -> Repl {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let slave_fd = slave.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(args)
            .env("SLUICE_HISTORY", history)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; they make the pty the child's
        // controlling terminal so Ctrl-C becomes SIGINT for it.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let master = File::from(master);
        let mut reader = master.try_clone().unwrap();
        let output = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child closed the slave side.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (text, cv) = &*sink;
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                cv.notify_all();
            }
        });
        Repl {
            child: Some(child),
            master,
            output,
            seen: 0,
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits until `want` appears in the output after what earlier expectations consumed.
    fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (text, cv) = &*self.output;
        let mut guard = text.lock().unwrap();
        loop {
            if let Some(i) = guard[self.seen..].find(want) {
                let got = guard[self.seen..self.seen + i + want.len()].to_string();
                self.seen += i + want.len();
                return got;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {want:?}; output so far:\n{}",
                &guard[self.seen..]
            );
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Types a line and waits until the REPL read it and printed its next prompt: rustyline
    /// turns bracketed paste off (`ESC[?2004l`) when it hands a line over, and input typed
    /// while a statement runs is not kept. Returns what was printed in between.
    fn line(&mut self, text: &str, next_prompt: &str) -> String {
        self.send(text);
        self.send("\r");
        self.expect("\x1b[?2004l");
        self.expect(next_prompt)
    }

    fn exit(mut self) {
        self.send("exit\r");
        self.expect("Exiting Sluice.");
        // Wait for the process on a thread, and for that thread's answer with a deadline.
        let mut child = self.child.take().expect("the REPL is running");
        let pid = child.id() as libc::pid_t;
        let (done, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait());
        });
        let Ok(status) = exited.recv_timeout(Duration::from_secs(30)) else {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the REPL did not exit");
        };
        let status = status.unwrap();
        assert!(status.success(), "the REPL exited with {status}");
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn multi_line_statements_ctrl_c_and_history_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let history = dir.path().join("history");

    let mut repl = Repl::start(&data, &history);
    repl.expect("sluice> ");
    // One statement over three lines: the REPL waits for the `;`.
    repl.line("CREATE STREAM pets (id INT KEY, name STRING)", ">> ");
    repl.line("  WITH (KAFKA_TOPIC='pets', VALUE_FORMAT='JSON',", ">> ");
    let out = repl.line("        PARTITIONS=1);", "sluice> ");
    assert!(out.contains("Stream created"), "{out}");
    repl.line("INSERT INTO pets (id, name) VALUES (1, 'rex');", "sluice> ");
    let out = repl.line("SET 'auto.offset.reset'='earliest';", "sluice> ");
    assert!(out.contains("Successfully changed local property"), "{out}");
    // A push query streams the row, then keeps waiting until Ctrl-C.
    repl.send("SELECT name FROM pets EMIT CHANGES;\r");
    repl.expect("\x1b[?2004l");
    repl.expect("rex");
    repl.send("\x03");
    repl.expect("Query terminated");
    repl.expect("sluice> ");
    // The REPL is alive and answers.
    let out = repl.line("SHOW STREAMS;", "sluice> ");
    assert!(out.contains("PETS"), "{out}");
    repl.exit();

    // History survives the restart: Up twice recalls SHOW STREAMS (after `exit`).
    let mut repl = Repl::start(&data, &history);
    repl.expect("sluice> ");
    repl.send("\x1b[A");
    repl.expect("exit");
    repl.send("\x1b[A");
    repl.expect("SHOW STREAMS;");
    repl.send("\r");
    repl.expect("\x1b[?2004l");
    // The catalog came back too.
    let out = repl.expect("sluice> ");
    assert!(out.contains("PETS"), "{out}");
    repl.exit();

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("CREATE STREAM pets (id INT KEY, name STRING)"),
        "{saved}"
    );
}

#[test]
fn the_repl_works_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::server::Server::start(&dir.path().join("data"));
    let url = server.http.clone().expect("the REST API is on");
    let history = dir.path().join("history");
    let mut repl = Repl::start_with(&["--server".as_ref(), url.as_ref()], &history);
    let banner = repl.expect("sluice> ");
    assert!(
        banner.contains(&format!("on the server at {url}")),
        "{banner}"
    );
    repl.line("CREATE STREAM pets (id INT KEY, name STRING)", ">> ");
    let out = repl.line(
        "  WITH (KAFKA_TOPIC='pets', VALUE_FORMAT='JSON', PARTITIONS=1);",
        "sluice> ",
    );
    assert!(out.contains("Stream created"), "{out}");
    repl.line("INSERT INTO pets (id, name) VALUES (1, 'rex');", "sluice> ");
    let out = repl.line("SET 'auto.offset.reset'='earliest';", "sluice> ");
    assert!(out.contains("Successfully changed local property"), "{out}");
    // The push query streams from the server until Ctrl-C closes it there.
    repl.send("SELECT id, name FROM pets EMIT CHANGES;\r");
    repl.expect("\x1b[?2004l");
    repl.expect("| 1            | rex          |");
    repl.send("\x03");
    repl.expect("Query terminated");
    repl.expect("sluice> ");
    // An error is one line and the REPL goes on.
    let out = repl.line("SELECT nope FROM pets EMIT CHANGES;", "sluice> ");
    assert!(out.contains("'NOPE' cannot be resolved"), "{out}");
    let out = repl.line("DESCRIBE pets;", "sluice> ");
    assert!(out.contains("ID    | INTEGER (key)"), "{out}");
    assert!(out.contains("NAME  | VARCHAR(STRING)"), "{out}");
    let out = repl.line("PRINT 'pets' FROM BEGINNING LIMIT 1;", "sluice> ");
    assert!(out.contains(r#"key: 1, value: {"NAME":"rex"}"#), "{out}");
    repl.exit();
    // What the REPL created lives in the server.
    let (clean, _) = server.terminate();
    assert!(clean);
    let out = common::ok(
        &dir.path().join("data"),
        &["sql", "-e", "SHOW STREAMS;"],
        None,
    );
    assert!(out.contains("PETS"), "{out}");
}
