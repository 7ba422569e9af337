//! `sluice consume`: prints records as Kafka's console consumer does (optional
//! `CreateTime:<ms>` and key columns, TAB-separated, `null` for missing bytes), waits at the
//! end of the log for new records (no polling), and with `--group` starts from and commits
//! the group's offsets.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sluice_storage::batch::{self, BatchHeader, Batches};
use sluice_storage::{CommittedOffset, EventLog, StorageError};

use crate::cli::ConsumeArgs;
use crate::text::write_bytes;

const FETCH_BYTES: usize = 1 << 20;

struct Position {
    partition: u32,
    next: u64,
    committed: Option<u64>,
}

pub fn run(store: &dyn EventLog, args: ConsumeArgs) -> Result<()> {
    let topic = store.describe_topic(&args.topic)?;
    let ids: Vec<u32> = match args.partition {
        Some(p) if p as usize >= topic.partitions.len() => {
            bail!(
                "topic {} has {} partition(s); there is no partition {p}",
                args.topic,
                topic.partitions.len()
            )
        }
        Some(p) => vec![p],
        None => (0..topic.partitions.len() as u32).collect(),
    };
    let committed: BTreeMap<u32, u64> = match &args.group {
        Some(g) => store
            .committed_offsets(g)?
            .into_iter()
            .filter(|c| c.topic == args.topic)
            .map(|c| (c.partition, c.offset))
            .collect(),
        None => BTreeMap::new(),
    };
    let mut positions = Vec::new();
    for id in ids {
        let p = &topic.partitions[id as usize];
        let (start, end) = (p.log_start_offset, p.high_watermark);
        // Kafka's order: an explicit offset, else the group's commit, else
        // --from-beginning (auto.offset.reset=earliest), else the end of the log.
        let next = match (&args.offset, committed.get(&id)) {
            (Some(o), _) => match o.as_str() {
                "earliest" => start,
                "latest" => end,
                n => {
                    let n: u64 = n.parse().with_context(|| {
                        format!("--offset '{n}' is not a number, 'earliest' or 'latest'")
                    })?;
                    if n < start || n > end {
                        bail!(
                            "offset {n} is out of range for {}-{id}: valid offsets are {start}..={end}",
                            args.topic
                        );
                    }
                    n
                }
            },
            (None, Some(&c)) => c.clamp(start, end),
            (None, None) if args.from_beginning => start,
            (None, None) => end,
        };
        positions.push(Position {
            partition: id,
            next,
            committed: committed.get(&id).copied(),
        });
    }

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut printed = 0u64;
    let max = args.max_messages.unwrap_or(u64::MAX);
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut closed_pipe = false;
    'outer: while printed < max {
        let mut progressed = false;
        for pos in &mut positions {
            let data = match store.read(&args.topic, pos.partition, pos.next, FETCH_BYTES) {
                Ok(r) => r.data,
                Err(StorageError::OffsetOutOfRange { start, .. }) if pos.next < start => {
                    // Retention removed what we were about to read: go on from the log start.
                    pos.next = start;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for b in Batches::new(&data) {
                let h = BatchHeader::parse(b)?;
                if !h.is_control() {
                    let mut result = Ok(());
                    batch::for_each_record(b, |r| {
                        if (r.offset as u64) < pos.next || printed >= max || result.is_err() {
                            return Ok(());
                        }
                        result = print_record(&mut out, &args, pos.partition, &r);
                        if result.is_ok() {
                            printed += 1;
                            pos.next = r.offset as u64 + 1;
                            progressed = true;
                        }
                        Ok(())
                    })?;
                    if let Err(e) = result {
                        if e.kind() == io::ErrorKind::BrokenPipe {
                            closed_pipe = true;
                            break 'outer;
                        }
                        return Err(e).context("writing to standard output");
                    }
                }
                if printed >= max {
                    break;
                }
                pos.next = pos.next.max(h.next_offset());
            }
        }
        if progressed {
            if let Err(e) = out.flush() {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    closed_pipe = true;
                    break;
                }
                return Err(e).context("writing to standard output");
            }
            commit(store, &args, &mut positions)?;
            continue;
        }
        if printed >= max || !wait_for_any(store, &args.topic, &positions, idle)? {
            break;
        }
    }
    if !closed_pipe {
        let _ = out.flush();
    }
    drop(out);
    commit(store, &args, &mut positions)?;
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

fn print_record(
    out: &mut impl Write,
    args: &ConsumeArgs,
    partition: u32,
    r: &sluice_storage::Record<'_>,
) -> io::Result<()> {
    if args.print_timestamp {
        write!(out, "CreateTime:{}\t", r.timestamp)?;
    }
    if args.print_offset {
        write!(out, "Partition:{partition}\tOffset:{}\t", r.offset)?;
    }
    if args.print_key {
        write_bytes(out, r.key)?;
        out.write_all(b"\t")?;
    }
    write_bytes(out, r.value)?;
    out.write_all(b"\n")
}

/// Commits, for the group, every position that moved since the last commit.
fn commit(store: &dyn EventLog, args: &ConsumeArgs, positions: &mut [Position]) -> Result<()> {
    let Some(group) = &args.group else {
        return Ok(());
    };
    let moved: Vec<CommittedOffset> = positions
        .iter()
        .filter(|p| p.committed != Some(p.next))
        .map(|p| CommittedOffset {
            topic: args.topic.clone(),
            partition: p.partition,
            offset: p.next,
            metadata: String::new(),
            commit_timestamp: 0,
        })
        .collect();
    store
        .commit_offsets(group, &moved)
        .with_context(|| format!("committing offsets of group {group}"))?;
    for p in positions {
        p.committed = Some(p.next);
    }
    Ok(())
}

/// Waits until any partition has records past its position (true) or `idle` passes (false).
fn wait_for_any(
    store: &dyn EventLog,
    topic: &str,
    positions: &[Position],
    idle: Option<Duration>,
) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting a runtime for waits")?;
    let _entered = rt.enter();
    let deadline =
        tokio::time::Instant::now() + idle.unwrap_or(Duration::from_secs(10 * 365 * 86_400));
    let mut waits = Vec::new();
    for p in positions {
        waits.push(store.wait_for_data(topic, p.partition, p.next, deadline)?);
    }
    Ok(rt.block_on(async {
        let mut waits: tokio::task::JoinSet<bool> = waits.into_iter().collect();
        while let Some(r) = waits.join_next().await {
            if matches!(r, Ok(true)) {
                return true;
            }
        }
        false
    }))
}
