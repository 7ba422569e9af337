//! Runs a child process and measures what it cost: CPU time (user + system) and peak
//! resident memory from the kernel's own accounting (`wait4`), and wall time. Optionally
//! pins the child to the first N CPUs.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    pub wall: Duration,
    pub max_rss_kb: u64,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// Runs `cmd` to its end; an exit other than 0 is an error naming `what`.
pub fn run(cmd: &mut Command, cores: Option<usize>, what: &str) -> Result<Usage> {
    if let Some(n) = cores {
        if n == 0 {
            bail!("--cores must be at least 1");
        }
        // SAFETY: sched_setaffinity is async-signal-safe; the set is built before fork.
        let set = cpu_set(n);
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: wait4 writes only into the two values we hand it; the child is ours and is
    // reaped here (the `Child` handle is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let wall = start.elapsed();
    drop(child);
    if rc != pid {
        bail!("waiting for {what}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{what} failed (wait status {status})");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Usage {
        user: tv(usage.ru_utime),
        sys: tv(usage.ru_stime),
        wall,
        max_rss_kb: usage.ru_maxrss as u64,
    })
}

fn cpu_set(n: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain bits; CPU_SET only sets one of them.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in 0..n.min(libc::CPU_SETSIZE as usize) {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_and_reports_failures() {
        let mut busy = Command::new("sh");
        busy.args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]);
        let u = run(&mut busy, Some(1), "a busy shell").unwrap();
        assert!(u.cpu() > Duration::ZERO);
        assert!(u.max_rss_kb > 0);
        let err = run(&mut Command::new("false"), None, "false").unwrap_err();
        assert!(err.to_string().contains("false failed"), "{err}");
    }
}
