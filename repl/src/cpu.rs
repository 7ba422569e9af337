//! CPU time this process used (user + system), the denominator of every "per core" figure.

use std::time::Duration;

pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The peak resident memory of this program (`VmHWM`, kB): unlike `ru_maxrss`, it does not
/// carry the memory of the process this one was forked from.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// When `SLUICE_USAGE_FILE` names a file (the benchmark harness sets it for the processes it
/// measures), writes this process's peak memory there as it ends.
pub fn write_usage_file() {
    let Ok(path) = std::env::var("SLUICE_USAGE_FILE") else {
        return;
    };
    if let Some(kb) = peak_rss_kb()
        && let Err(e) = std::fs::write(&path, format!("{{\"peak_rss_kb\":{kb}}}\n"))
    {
        eprintln!("warning: cannot write {path}: {e}");
    }
}
