//! `sluice produce`: one record per line of standard input. Lines are batched (up to 1,000
//! records or 16 KiB a batch, and whenever input pauses, so typing works interactively),
//! partitioned by key with Kafka's partitioner, and appended.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use sluice_storage::partitioner::partition_for_key;
use sluice_storage::{BatchBuilder, Compression, EventLog};

use crate::cli::ProduceArgs;

const MAX_BATCH_RECORDS: usize = 1000;
const MAX_BATCH_BYTES: usize = 16 * 1024;

/// Open batches per partition, appended when full or when input pauses.
struct Batcher<'a> {
    store: &'a dyn EventLog,
    topic: String,
    /// The topic's partition count, looked up once (keyed records are placed per record).
    partitions: u32,
    compression: Compression,
    open: BTreeMap<u32, BatchBuilder>,
    sticky: Option<u32>,
    sent: u64,
}

impl Batcher<'_> {
    fn add(
        &mut self,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
        ts: i64,
    ) -> Result<()> {
        let p = match (partition, key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, self.partitions),
            (None, None) => match self.sticky {
                Some(p) => p,
                None => {
                    let p = self.store.partition_for(&self.topic, None)?;
                    self.sticky = Some(p);
                    p
                }
            },
        };
        let b = self
            .open
            .entry(p)
            .or_insert_with(|| BatchBuilder::new(self.compression));
        b.push(ts, key, Some(value), &[]);
        if b.len() >= MAX_BATCH_RECORDS || b.size_estimate() >= MAX_BATCH_BYTES {
            self.send(p)?;
        }
        Ok(())
    }

    fn send(&mut self, p: u32) -> Result<()> {
        let Some(b) = self.open.remove(&p) else {
            return Ok(());
        };
        if self.sticky == Some(p) {
            self.sticky = None; // next unkeyed batch goes to the next partition
        }
        let n = b.len() as u64;
        let mut bytes = b.finish()?;
        self.store
            .append(&self.topic, p, &mut bytes)
            .with_context(|| format!("appending to {}-{p}", self.topic))?;
        self.sent += n;
        Ok(())
    }

    fn send_all(&mut self) -> Result<()> {
        let parts: Vec<u32> = self.open.keys().copied().collect();
        for p in parts {
            self.send(p)?;
        }
        Ok(())
    }
}

pub fn run(store: &dyn EventLog, args: ProduceArgs) -> Result<()> {
    let info = store.describe_topic(&args.topic)?;
    if let Some(p) = args.partition
        && p as usize >= info.partitions.len()
    {
        bail!(
            "topic {} has {} partition(s); there is no partition {p}",
            args.topic,
            info.partitions.len()
        );
    }
    if args.key_separator.as_deref() == Some("") {
        bail!("--key-separator must not be empty");
    }
    let compression: Compression = args.compression.parse().map_err(anyhow::Error::msg)?;
    // A reader thread feeds lines; the main loop batches whatever is available at once.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4 * MAX_BATCH_RECORDS);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        loop {
            let mut line = Vec::new();
            match lock.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.ends_with(b"\n") {
                        line.pop();
                        if line.ends_with(b"\r") {
                            line.pop();
                        }
                    }
                    if tx.send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let mut batcher = Batcher {
        store,
        topic: args.topic.clone(),
        partitions: info.partitions.len() as u32,
        compression,
        open: BTreeMap::new(),
        sticky: None,
        sent: 0,
    };
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut line_no = 0u64;
    let mut failure = None;
    'input: while let Ok(first) = rx.recv() {
        let ts = now_ms();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            let line = match item {
                Ok(l) => l,
                Err(e) => {
                    failure = Some(anyhow::Error::from(e).context("reading standard input"));
                    break 'input;
                }
            };
            line_no += 1;
            let (key, value) = match sep {
                Some(sep) => match find(&line, sep) {
                    Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
                    None => {
                        failure = Some(anyhow::anyhow!(
                            "line {line_no} has no key separator '{}'; {} earlier record(s) were written",
                            String::from_utf8_lossy(sep),
                            line_no - 1
                        ));
                        break 'input;
                    }
                },
                None => (None, &line[..]),
            };
            batcher.add(args.partition, key, value, ts)?;
            next = rx.try_recv().ok();
        }
        batcher.send_all()?;
    }
    batcher.send_all()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
