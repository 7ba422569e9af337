//! The table `sluice bench nexmark --all` leaves in bench/results/: markdown for people,
//! JSON for scripts (bench/peers/ reads it to set Sluice beside the peers).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::generate::GenStats;
use crate::harness::QueryRun;
use crate::outputs::format_sum;

pub struct Report<'a> {
    pub events: u64,
    pub cores: Option<usize>,
    pub generated: &'a GenStats,
    pub runs: &'a [QueryRun],
}

impl Report<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "date": utc_now(),
            "events": self.events,
            "cores": self.cores,
            "cpus_online": cpus_online(),
            "generated": {
                "persons": self.generated.per_kind[0],
                "auctions": self.generated.per_kind[1],
                "bids": self.generated.per_kind[2],
                "max_event_time_ms": self.generated.max_time_ms,
            },
            "queries": self.runs.iter().map(QueryRun::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Nexmark, {} events ({})\n\n`sluice bench nexmark --all --events {}{}`; per core = events / CPU-seconds (user + sys) of the whole `sluice sql` process. The system share is shown apart: on a VM it also holds what the host charges for memory the guest touches afresh, which can swing from run to run.\n\n",
            self.events,
            utc_now(),
            self.events,
            self.cores
                .map(|c| format!(" --cores {c}"))
                .unwrap_or_default(),
        );
        md.push_str("| query | events/s per core | CPU s (user + sys) | wall s | events/s wall | peak RSS MB | rows out | latency p50 / p99 ms |\n");
        md.push_str("|---|---|---|---|---|---|---|---|\n");
        for r in self.runs {
            let latency = r
                .latency
                .as_ref()
                .map(|l| {
                    format!(
                        "{:.2} / {:.2} at {}/s",
                        l.p50.as_secs_f64() * 1e3,
                        l.p99.as_secs_f64() * 1e3,
                        l.rate
                    )
                })
                .unwrap_or_else(|| "-".into());
            md.push_str(&format!(
                "| {} | {:.0} | {:.2} ({:.2} + {:.2}) | {:.2} | {:.0} | {:.0} | {} | {} |\n",
                r.query,
                r.per_core(),
                r.usage.cpu().as_secs_f64(),
                r.usage.user.as_secs_f64(),
                r.usage.sys.as_secs_f64(),
                r.usage.wall.as_secs_f64(),
                r.wall_rate(),
                r.usage.max_rss_kb as f64 / 1024.0,
                r.output.rows,
                latency
            ));
        }
        md.push_str("\nOutputs (row counts and column sums, for checking against a peer):\n\n");
        for r in self.runs {
            let sums: Vec<String> = r
                .output
                .sums
                .iter()
                .map(|(k, v)| format!("{k} {}", format_sum(*v)))
                .collect();
            md.push_str(&format!(
                "- {} ({}): {} rows; sums: {}\n",
                r.query,
                r.output.topic,
                r.output.rows,
                sums.join(", ")
            ));
        }
        md
    }

    /// Writes `nexmark-<date>.md` and `.json` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stamp: String = utc_now()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let md = dir.join(format!("nexmark-{stamp}.md"));
        let json = dir.join(format!("nexmark-{stamp}.json"));
        std::fs::write(&md, self.to_markdown())
            .with_context(|| format!("writing {}", md.display()))?;
        write_json(&json, &self.to_json())?;
        Ok((md, json))
    }
}

pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn cpus_online() -> i64 {
    // SAFETY: sysconf only reads a system value.
    i64::from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as i32)
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
