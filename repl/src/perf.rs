//! `sluice perf`: throughput of the local log, like Kafka's producer/consumer perf tools.
//! Figures are wall-clock rates and, the project's yardstick, rates per CPU-second of this
//! process (user + system). A produce run ends with an fsync of every partition inside the
//! measured time, so its wall-clock rate is a rate of durable records under any policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sluice_storage::batch::{self, BatchHeader, Batches};
use sluice_storage::{BatchBuilder, Compression, LogStore};

use crate::cli::PerfCommand;
use crate::cpu::process_cpu_time;

pub fn run(store: &LogStore, cmd: PerfCommand) -> Result<()> {
    match cmd {
        PerfCommand::Produce {
            topic,
            records,
            record_size,
            batch_size,
            threads,
        } => produce(store, &topic, records, record_size, batch_size, threads),
        PerfCommand::Consume { topic, records } => consume(store, &topic, records),
    }
}

fn template(records: usize, size: usize) -> Result<Vec<u8>> {
    let value: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut b = BatchBuilder::with_capacity(Compression::None, records * (size + 16));
    for _ in 0..records {
        b.push(ts, None, Some(&value), &[]);
    }
    Ok(b.finish()?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn produce(
    store: &LogStore,
    topic: &str,
    records: u64,
    size: usize,
    batch: usize,
    threads: usize,
) -> Result<()> {
    if batch == 0 || threads == 0 {
        bail!("--batch-size and --threads must be at least 1");
    }
    let t = store.topic(topic)?;
    let parts = t.partitions.len() as u32;
    let tpl = Arc::new(template(batch, size)?);
    let batches = records.div_ceil(batch as u64);
    let cpu0 = process_cpu_time();
    let start = Instant::now();
    let per_thread = batches.div_ceil(threads as u64);
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|th| {
                let tpl = tpl.clone();
                let t = t.clone();
                s.spawn(move || -> Result<Vec<Duration>> {
                    let mut lat = Vec::with_capacity(per_thread as usize);
                    let mut buf = Vec::with_capacity(tpl.len());
                    let first = th * per_thread;
                    for i in first..(first + per_thread).min(batches) {
                        buf.clear();
                        buf.extend_from_slice(&tpl);
                        let p = (i % u64::from(parts)) as usize;
                        let t0 = Instant::now();
                        t.partitions[p].append(&mut buf)?;
                        lat.push(t0.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(_) => bail!("an appender thread panicked"),
            }
        }
        Ok(all)
    })?;
    // Make everything durable inside the measurement, so every policy is timed to the disk.
    for p in &t.partitions {
        p.flush()?;
    }
    let wall = start.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu0);
    latencies.sort_unstable();
    let sent = batches * batch as u64;
    let bytes = sent * size as u64;
    let config = t
        .config
        .read()
        .map(|c| c.flush_policy.name())
        .unwrap_or("?");
    println!(
        "{sent} records sent, {:.0} records/sec ({:.2} MB/sec), {:.0} records/sec per core (cpu {:.2}s, wall {:.2}s), flush.policy={config}",
        sent as f64 / wall.as_secs_f64(),
        bytes as f64 / wall.as_secs_f64() / 1e6,
        sent as f64 / cpu.as_secs_f64().max(1e-9),
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
    );
    println!(
        "batch append latency: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} batches of {batch})",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        latencies.len()
    );
    Ok(())
}

fn consume(store: &LogStore, topic: &str, records: u64) -> Result<()> {
    let t = store.topic(topic)?;
    let cpu0 = process_cpu_time();
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    'parts: for p in &t.partitions {
        let mut offset = p.log_start_offset();
        loop {
            let r = p.read(offset, 1 << 20)?;
            if r.data.is_empty() {
                break;
            }
            for b in Batches::new(&r.data) {
                let h = BatchHeader::parse(b)?;
                batch::for_each_record(b, |rec| {
                    if (rec.offset as u64) >= offset && count < records {
                        count += 1;
                        bytes += rec.value.map_or(0, <[u8]>::len) as u64;
                    }
                    Ok(())
                })?;
                offset = h.next_offset();
                if count >= records {
                    break 'parts;
                }
            }
        }
    }
    let wall = start.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu0);
    if count < records {
        eprintln!("note: the topic held only {count} records");
    }
    println!(
        "{count} records read, {:.0} records/sec ({:.2} MB/sec), {:.0} records/sec per core (cpu {:.2}s, wall {:.2}s)",
        count as f64 / wall.as_secs_f64(),
        bytes as f64 / wall.as_secs_f64() / 1e6,
        count as f64 / cpu.as_secs_f64().max(1e-9),
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
    );
    Ok(())
}
