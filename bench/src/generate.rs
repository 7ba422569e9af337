//! `sluice bench nexmark-gen`: Nexmark events from the `nexmark` crate into three topics
//! (`<prefix>-person`, `<prefix>-auction`, `<prefix>-bid`), one JSON object per record, the
//! event time as the record's timestamp, and optionally the same events as JSON lines for
//! the peers. The generator is deterministic: every event is drawn from a random generator
//! seeded with its event number, so the same `--events` gives the same events; their times
//! start at the base time (by default the current minute, so windows fall alike in every
//! run and retention does not take the events for old ones; `--base-time` fixes it, for
//! byte-identical output).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use sluice_storage::{BatchBuilder, Compression, LogStore, TopicConfig};

use crate::events::{self, Kind};

/// Events per second of event time without `--rate` (the `nexmark` crate's default, and
/// Nexmark's: a 10-second window holds 100,000 events).
pub const DEFAULT_EVENT_RATE: u64 = 10_000;
/// Records per appended batch when writing as fast as possible.
const BATCH_RECORDS: usize = 1_000;

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub events: u64,
    /// Events per second offered, by the wall clock; also the event-time rate, so event
    /// times follow the clock. `None`: as fast as possible, event time at 10,000/s.
    pub rate: Option<u64>,
    pub topic_prefix: String,
    pub partitions: u32,
    pub export: Option<PathBuf>,
    /// Event time of the first event (epoch ms); `None`: the current minute.
    pub base_time_ms: Option<u64>,
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

impl GenOptions {
    pub fn new(events: u64) -> Self {
        GenOptions {
            events,
            rate: None,
            topic_prefix: "nexmark".to_string(),
            partitions: 1,
            export: None,
            base_time_ms: None,
            progress: false,
        }
    }

    pub fn topic(&self, kind: Kind) -> String {
        format!("{}-{}", self.topic_prefix, kind.name())
    }
}

/// What a generation wrote.
#[derive(Clone, Debug, Default)]
pub struct GenStats {
    pub events: u64,
    pub per_kind: [u64; 3],
    pub value_bytes: u64,
    pub wall: Duration,
    /// The largest event time written (epoch ms).
    pub max_time_ms: i64,
}

impl GenStats {
    pub fn summary(&self) -> String {
        format!(
            "{} events ({} persons, {} auctions, {} bids, {:.1} MB of JSON) in {:.2} s: {:.0} events/s",
            self.events,
            self.per_kind[0],
            self.per_kind[1],
            self.per_kind[2],
            self.value_bytes as f64 / 1e6,
            self.wall.as_secs_f64(),
            self.events as f64 / self.wall.as_secs_f64().max(1e-9)
        )
    }
}

/// The generator for a run: event time from `base_time_ms` (or the current minute; with a
/// rate, the current millisecond, so event time follows the clock) at 10,000 events/s, or
/// at the offered rate.
pub fn generator(rate: Option<u64>, base_time_ms: Option<u64>) -> EventGenerator {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let base_time = match (base_time_ms, rate) {
        (Some(t), _) => t,
        (None, Some(_)) => now,
        (None, None) => now - now % 60_000,
    };
    let event_rate = rate.unwrap_or(DEFAULT_EVENT_RATE).max(1) as usize;
    EventGenerator::new(NexmarkConfig {
        base_time,
        first_rate: event_rate,
        next_rate: event_rate,
        ..Default::default()
    })
}

/// Appends events to the three topics in batches, one builder per topic, batches spread
/// round-robin over each topic's partitions.
pub struct EventWriter<'a> {
    store: &'a LogStore,
    topics: [String; 3],
    builders: [BatchBuilder; 3],
    next_partition: [u32; 3],
    partitions: [u32; 3],
    value: Vec<u8>,
    pub stats: GenStats,
}

impl<'a> EventWriter<'a> {
    /// Creates the topics (they must not hold records yet) and a writer for them.
    pub fn create(store: &'a LogStore, opts: &GenOptions) -> Result<Self> {
        let topics = Kind::ALL.map(|k| opts.topic(k));
        for topic in &topics {
            match store.topic(topic) {
                Ok(t) => {
                    let records: u64 = t
                        .partitions
                        .iter()
                        .map(|p| p.high_watermark() - p.log_start_offset())
                        .sum();
                    if records > 0 {
                        bail!(
                            "topic {topic} already holds {records} records; delete it or pick another --topic-prefix"
                        );
                    }
                }
                Err(_) => {
                    store
                        .create_topic(topic, opts.partitions.max(1), TopicConfig::default())
                        .with_context(|| format!("creating topic {topic}"))?;
                }
            }
        }
        let mut partitions = [1u32; 3];
        for (count, topic) in partitions.iter_mut().zip(&topics) {
            *count = store.topic(topic)?.partitions.len().max(1) as u32;
        }
        Ok(EventWriter {
            store,
            topics,
            builders: Kind::ALL.map(|_| BatchBuilder::new(Compression::None)),
            next_partition: [0; 3],
            partitions,
            value: Vec::with_capacity(1024),
            stats: GenStats::default(),
        })
    }

    /// Adds one event; a topic's batch is appended when it is full.
    pub fn push(&mut self, event: &Event) -> Result<()> {
        let kind = Kind::of(event);
        let time = events::time_ms(event);
        self.value.clear();
        events::write_value(event, &mut self.value);
        let i = kind.index();
        self.builders[i].push(time, None, Some(&self.value), &[]);
        self.stats.events += 1;
        self.stats.per_kind[i] += 1;
        self.stats.value_bytes += self.value.len() as u64;
        self.stats.max_time_ms = self.stats.max_time_ms.max(time);
        if self.builders[i].len() >= BATCH_RECORDS {
            self.flush_kind(i)?;
        }
        Ok(())
    }

    /// Appends every topic's pending records.
    pub fn flush(&mut self) -> Result<()> {
        for i in 0..3 {
            self.flush_kind(i)?;
        }
        Ok(())
    }

    fn flush_kind(&mut self, i: usize) -> Result<()> {
        if self.builders[i].is_empty() {
            return Ok(());
        }
        let builder =
            std::mem::replace(&mut self.builders[i], BatchBuilder::new(Compression::None));
        let mut batch = builder.finish()?;
        let partition = self.next_partition[i];
        self.next_partition[i] = (partition + 1) % self.partitions[i];
        self.store
            .append(&self.topics[i], partition, &mut batch)
            .with_context(|| format!("appending to {}", self.topics[i]))?;
        Ok(())
    }
}

/// Generates `opts.events` events into the store (and the export file).
pub fn run(store: &LogStore, opts: &GenOptions) -> Result<GenStats> {
    let mut writer = EventWriter::create(store, opts)?;
    let mut export = match &opts.export {
        Some(path) => Some(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let bar = progress_bar(opts);
    let mut line = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut generator = generator(opts.rate, opts.base_time_ms);
    for n in 0..opts.events {
        let Some(event) = generator.next() else { break };
        if let Some(rate) = opts.rate {
            pace(start, n, rate, &mut writer)?;
        }
        writer.push(&event)?;
        if let Some(out) = export.as_mut() {
            line.clear();
            events::write_export_line(&event, &mut line);
            out.write_all(&line).context("writing the export file")?;
        }
        if n % 65_536 == 0 {
            bar.set_position(n);
        }
    }
    writer.flush()?;
    if let Some(out) = export.as_mut() {
        out.flush().context("writing the export file")?;
    }
    for topic in &writer.topics {
        for p in &store.topic(topic)?.partitions {
            p.flush()?;
        }
    }
    bar.finish_and_clear();
    writer.stats.wall = start.elapsed();
    Ok(writer.stats)
}

/// Holds event `n` back until its time at `rate` events/s, appending what is pending first
/// so that nothing waits in a builder while the writer sleeps. Sleeps last at least 1 ms,
/// so each append carries about a millisecond of events (not one record per append).
fn pace(start: Instant, n: u64, rate: u64, writer: &mut EventWriter<'_>) -> Result<()> {
    let due = start + Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
    let now = Instant::now();
    if due > now {
        writer.flush()?;
        std::thread::sleep((due - now).max(Duration::from_millis(1)));
    }
    Ok(())
}

fn progress_bar(opts: &GenOptions) -> indicatif::ProgressBar {
    if !opts.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(opts.events);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} events, {per_sec}, {eta} left",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_values(store: &LogStore, topic: &str) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        for p in &store.topic(topic).unwrap().partitions {
            let mut offset = p.log_start_offset();
            loop {
                let r = p.read(offset, 1 << 20).unwrap();
                if r.data.is_empty() {
                    break;
                }
                for batch in sluice_storage::batch::Batches::new(&r.data) {
                    for rec in sluice_storage::batch::records(batch).unwrap() {
                        out.push((rec.timestamp, rec.value.unwrap()));
                        offset = rec.offset as u64 + 1;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn same_events_give_the_same_topics_and_export() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let store = LogStore::open(dir.path().join("data")).unwrap();
            let mut opts = GenOptions::new(5_000);
            opts.base_time_ms = Some(1_767_225_600_000);
            opts.export = Some(dir.path().join("events.jsonl"));
            let stats = run(&store, &opts).unwrap();
            assert_eq!(stats.events, 5_000);
            // Nexmark's mix: 1 person, 3 auctions, 46 bids in every 50 events.
            assert_eq!(stats.per_kind, [100, 300, 4_600]);
            let bids = topic_values(&store, "nexmark-bid");
            assert_eq!(bids.len(), 4_600);
            let export = std::fs::read_to_string(opts.export.as_ref().unwrap()).unwrap();
            assert_eq!(export.lines().count(), 5_000);
            let first_bid = export
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["event_type"] == 2)
                .unwrap();
            let topic_bid: serde_json::Value = serde_json::from_slice(&bids[0].1).unwrap();
            assert_eq!(first_bid["bid"], topic_bid);
            assert_eq!(bids[0].0, topic_bid["date_time"].as_i64().unwrap());
            store.close().unwrap();
            runs.push((export, bids));
        }
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn with_a_rate_event_time_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let mut opts = GenOptions::new(2_000);
        opts.rate = Some(50_000);
        let stats = run(&store, &opts).unwrap();
        let times: Vec<i64> = Kind::ALL
            .iter()
            .flat_map(|k| topic_values(&store, &opts.topic(*k)))
            .map(|(t, _)| t)
            .collect();
        let first = *times.iter().min().unwrap();
        // 2,000 events at 50,000/s: 40 ms of event time, starting about now.
        assert!(
            (39..=41).contains(&(stats.max_time_ms - first)),
            "{}",
            stats.max_time_ms - first
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now - first).abs() < 60_000);
    }

    #[test]
    fn a_topic_with_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        run(&store, &GenOptions::new(100)).unwrap();
        let err = run(&store, &GenOptions::new(100)).unwrap_err();
        assert!(err.to_string().contains("already holds"), "{err}");
    }
}
