//! A `sluice server` child process for tests that talk to it over the network.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `sluice server` and the address it listens on.
pub struct Server {
    child: Child,
    pub addr: String,
    /// The REST API's base URL (`http://127.0.0.1:PORT`).
    pub http: Option<String>,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(
            data,
            &["server", "--kafka", "127.0.0.1:0", "--num-partitions", "3"],
        )
    }

    /// Starts `sluice server ARGS`; the REST API on a free port unless ARGS name one.
    pub fn start_with(data: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("--data-dir").arg(data).args(args);
        if !args.contains(&"--http") {
            command.args(["--http", "127.0.0.1:0"]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.as_mut().unwrap();
        let line = read_line(stdout);
        let addr = line
            .strip_prefix("Kafka protocol listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let http = if args.windows(2).any(|w| w == ["--http", "off"]) {
            None
        } else {
            let line = read_line(stdout);
            let url = line
                .strip_prefix("ksqlDB REST API listening on ")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"));
            Some(url.to_string())
        };
        Server { child, addr, http }
    }

    /// SIGTERM, then the exit status and what it printed after the address line.
    pub fn terminate(mut self) -> (bool, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let mut printed = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut printed).unwrap();
        }
        let status = self.child.wait().unwrap();
        (status.success(), printed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of the child's output, read byte by byte so nothing after it is consumed.
fn read_line(stdout: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim().to_string()
}
