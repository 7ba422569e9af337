//! `sluice groups`: list groups, describe their offsets and lag, reset their offsets.

use anyhow::{Result, bail};
use sluice_storage::{CommittedOffset, EventLog};

use crate::cli::{GroupsCommand, ResetArgs};

pub fn run(store: &dyn EventLog, cmd: GroupsCommand) -> Result<()> {
    match cmd {
        GroupsCommand::List => {
            for g in store.list_groups()? {
                println!("{g}");
            }
            Ok(())
        }
        GroupsCommand::Describe { group } => describe(store, &group),
        GroupsCommand::ResetOffsets(args) => reset(store, args),
    }
}

fn describe(store: &dyn EventLog, group: &str) -> Result<()> {
    let committed = store.committed_offsets(group)?;
    if committed.is_empty() {
        bail!("consumer group '{group}' does not exist (it has no committed offsets)");
    }
    let mut rows = vec![
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]
        .map(String::from),
    ];
    for c in committed {
        let end = store
            .offsets(&c.topic, c.partition)
            .map(|(_, end)| end.to_string())
            .unwrap_or_else(|_| "-".into());
        let lag = end
            .parse::<u64>()
            .map(|e| e.saturating_sub(c.offset).to_string())
            .unwrap_or_else(|_| "-".into());
        rows.push([
            group.to_string(),
            c.topic,
            c.partition.to_string(),
            c.offset.to_string(),
            end,
            lag,
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    print_table(&rows);
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join(" ").trim_end());
    }
}

fn reset(store: &dyn EventLog, args: ResetArgs) -> Result<()> {
    let topic = store.describe_topic(&args.topic)?;
    let mut new = Vec::new();
    for p in &topic.partitions {
        let offset = if args.to_earliest {
            p.log_start_offset
        } else if args.to_latest {
            p.high_watermark
        } else {
            let n = args.to_offset.unwrap_or(0);
            // Kafka clamps a target outside the log to its nearest end.
            n.clamp(p.log_start_offset, p.high_watermark)
        };
        new.push(CommittedOffset {
            topic: args.topic.clone(),
            partition: p.id,
            offset,
            metadata: String::new(),
            commit_timestamp: 0,
        });
    }
    if !args.dry_run {
        store.commit_offsets(&args.group, &new)?;
    }
    let mut rows = vec![["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"].map(String::from)];
    for c in new {
        rows.push([
            args.group.clone(),
            c.topic,
            c.partition.to_string(),
            c.offset.to_string(),
        ]);
    }
    print_table(&rows);
    if args.dry_run {
        println!("(dry run: nothing was committed)");
    }
    Ok(())
}
