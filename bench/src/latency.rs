//! End-to-end latency at a fixed offered rate: events are appended to the source topics in
//! 1 ms ticks by the wall clock, one query runs in this process as it would in a host, and a
//! reader waits on the sink's tail. An output record's latency is the time from the append
//! of the input event its timestamp comes from (ksqlDB carries the input's time to the
//! output) to the moment the reader sees it. The first second is warm-up and not counted.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use sluice_engine::{Engine, EngineOptions};
use sluice_storage::LogStore;
use sluice_storage::batch::{Batches, for_each_record};

use crate::generate::{self, EventWriter, GenOptions};
use crate::queries::{self, NexmarkQuery};

const WARM_UP: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(1);

#[derive(Clone, Debug)]
pub struct LatencyFigures {
    pub rate: u64,
    pub seconds: u64,
    pub events: u64,
    pub samples: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LatencyFigures {
    pub fn describe(&self) -> String {
        format!(
            "latency at {} events/s offered for {} s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} outputs timed)",
            self.rate,
            self.seconds,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.samples
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rate": self.rate, "seconds": self.seconds, "events": self.events,
            "samples": self.samples, "p50_ms": ms(self.p50), "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// When each event time was appended: (largest event time of an append, when it finished).
type Appends = Mutex<Vec<(i64, Instant)>>;

pub fn measure(dir: &Path, q: &NexmarkQuery, rate: u64, seconds: u64) -> Result<LatencyFigures> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let store =
        Arc::new(LogStore::open(dir).with_context(|| format!("opening {}", dir.display()))?);
    let result = run(&store, q, rate, seconds);
    let closed = store.close().context("closing the latency run's log");
    std::fs::remove_dir_all(dir).ok();
    let figures = result?;
    closed?;
    Ok(figures)
}

fn run(store: &Arc<LogStore>, q: &NexmarkQuery, rate: u64, seconds: u64) -> Result<LatencyFigures> {
    let mut opts = GenOptions::new(u64::MAX);
    opts.rate = Some(rate);
    let mut writer = EventWriter::create(store, &opts)?;
    let mut engine = Engine::open(store.clone(), EngineOptions::default())
        .map_err(|e| anyhow!("opening the engine: {e}"))?;
    engine.start();
    if let Err(e) = engine.execute_sql(&queries::script(q)) {
        engine.stop();
        return Err(anyhow!("{}: {e}", q.name));
    }
    let sink = store.topic(q.sink)?;
    let appends: Arc<Appends> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reader = {
        let (appends, stop, sink) = (appends.clone(), stop.clone(), sink.clone());
        std::thread::spawn(move || read_sink(&sink, &appends, &stop, start + WARM_UP))
    };
    let produced = produce(
        &mut writer,
        &appends,
        rate,
        start,
        Duration::from_secs(seconds),
    );
    // Let the query drain what was offered, then stop the reader.
    let drained = wait_until_quiet(&sink, Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let read = reader
        .join()
        .map_err(|_| anyhow!("the sink reader panicked"));
    engine.stop();
    let events = produced?;
    drained?;
    let mut samples = read??;
    samples.sort_unstable();
    let pick = |p: f64| {
        samples
            .get(((samples.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(LatencyFigures {
        rate,
        seconds,
        events,
        samples: samples.len() as u64,
        p50: pick(0.5),
        p99: pick(0.99),
        max: samples.last().copied().unwrap_or_default(),
    })
}

/// Offers `rate` events/s for `duration`, appending every 1 ms tick's events together.
fn produce(
    writer: &mut EventWriter<'_>,
    appends: &Appends,
    rate: u64,
    start: Instant,
    duration: Duration,
) -> Result<u64> {
    let mut events = generate::generator(Some(rate), None);
    let mut sent = 0u64;
    let mut tick = start;
    while tick - start < duration {
        let due = ((tick - start).as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let Some(event) = events.next() else { break };
            writer.push(&event)?;
            sent += 1;
        }
        writer.flush()?;
        let appended = Instant::now();
        appends
            .lock()
            .map_err(|_| anyhow!("append times poisoned"))?
            .push((writer.stats.max_time_ms, appended));
        tick += TICK;
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
    }
    Ok(sent)
}

/// Reads the sink as it grows and times every record whose input was appended after
/// `count_from`.
fn read_sink(
    sink: &sluice_storage::store::Topic,
    appends: &Appends,
    stop: &AtomicBool,
    count_from: Instant,
) -> Result<Vec<Duration>> {
    let mut next: Vec<u64> = sink
        .partitions
        .iter()
        .map(|p| p.log_start_offset())
        .collect();
    let mut samples = Vec::new();
    let mut times = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        for (i, p) in sink.partitions.iter().enumerate() {
            if p.high_watermark() <= next[i] {
                p.wait_for_blocking(next[i], Instant::now() + Duration::from_millis(50));
            }
            let r = p.read(next[i], 1 << 20)?;
            let seen = Instant::now();
            times.clear();
            for batch in Batches::new(&r.data) {
                for_each_record(batch, |rec| {
                    next[i] = rec.offset as u64 + 1;
                    times.push(rec.timestamp);
                    Ok(())
                })?;
            }
            let appends = appends
                .lock()
                .map_err(|_| anyhow!("append times poisoned"))?;
            for &ts in &times {
                let at = appends.partition_point(|(t, _)| *t < ts);
                if let Some((_, appended)) = appends.get(at)
                    && *appended >= count_from
                {
                    samples.push(seen.saturating_duration_since(*appended));
                }
            }
        }
    }
    Ok(samples)
}

/// Waits until the sink has not grown for 200 ms (the query caught up), or `limit` passed.
fn wait_until_quiet(sink: &sluice_storage::store::Topic, limit: Duration) -> Result<()> {
    let end = |sink: &sluice_storage::store::Topic| -> u64 {
        sink.partitions.iter().map(|p| p.high_watermark()).sum()
    };
    let deadline = Instant::now() + limit;
    let mut last = end(sink);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        if let Some(p) = sink.partitions.first() {
            p.wait_for_blocking(
                p.high_watermark(),
                Instant::now() + Duration::from_millis(50),
            );
        }
        let now = end(sink);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_millis(200) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_run_times_the_outputs_it_sees() {
        let dir = tempfile::tempdir().unwrap();
        let q0 = queries::find("q0").unwrap();
        let l = measure(&dir.path().join("run"), q0, 2_000, 2).unwrap();
        // 2 s at 2,000 events/s, 46 of every 50 a bid; the first second is warm-up.
        assert!((3_900..=4_100).contains(&l.events), "{l:?}");
        assert!(l.samples > 500 && l.samples <= l.events, "{l:?}");
        assert!(l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
        assert!(!dir.path().join("run").exists());
    }
}
