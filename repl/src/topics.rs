//! `sluice topics`: create, list, describe, alter, delete.

use anyhow::{Context, Result, bail};
use sluice_storage::{EventLog, StorageError, TopicConfig, TopicInfo};

use crate::cli::TopicsCommand;

pub fn run(store: &dyn EventLog, cmd: TopicsCommand) -> Result<()> {
    match cmd {
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            if replication_factor != 1 {
                bail!(
                    "replication factor {replication_factor} is not possible: a single Sluice node keeps one replica"
                );
            }
            let mut pairs = Vec::new();
            for c in &configs {
                let (k, v) = c
                    .split_once('=')
                    .with_context(|| format!("--config '{c}' is not of the form name=value"))?;
                pairs.push((k, v));
            }
            let config = TopicConfig::from_pairs(pairs)?;
            match store.create_topic(&topic, partitions, config) {
                Ok(_) => println!("Created topic {topic}."),
                Err(StorageError::TopicExists(_)) if if_not_exists => {}
                Err(e) => return Err(e.into()),
            }
        }
        TopicsCommand::List => {
            for name in store.topic_names() {
                println!("{name}");
            }
        }
        TopicsCommand::Describe { topic } => {
            let infos = match topic {
                Some(t) => vec![store.describe_topic(&t)?],
                None => store.list_topics(),
            };
            for info in infos {
                print_description(&info, store.knows_sizes());
            }
        }
        TopicsCommand::Alter {
            topic,
            configs,
            delete_configs,
            partitions,
        } => {
            let mut changes: Vec<(String, Option<String>)> = Vec::new();
            for c in &configs {
                let (k, v) = c
                    .split_once('=')
                    .with_context(|| format!("--config '{c}' is not of the form name=value"))?;
                changes.push((k.trim().to_string(), Some(v.to_string())));
            }
            changes.extend(delete_configs.into_iter().map(|k| (k, None)));
            if !changes.is_empty() {
                store.alter_topic_config(&topic, &changes)?;
                println!("Altered the configs of topic {topic}.");
            }
            if let Some(n) = partitions {
                store.add_partitions(&topic, n)?;
                println!("Topic {topic} has {n} partitions now.");
            }
        }
        TopicsCommand::Delete { topic, if_exists } => match store.delete_topic(&topic) {
            Ok(()) => println!("Deleted topic {topic}."),
            Err(StorageError::UnknownTopic(_)) if if_exists => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

fn print_description(info: &TopicInfo, sizes: bool) {
    let configs: Vec<String> = info
        .config
        .overrides()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "Topic: {}\tPartitionCount: {}\tReplicationFactor: 1\tConfigs: {}",
        info.name,
        info.partitions.len(),
        configs.join(",")
    );
    for p in &info.partitions {
        print!(
            "\tTopic: {}\tPartition: {}\tLeader: 0\tReplicas: 0\tIsr: 0\tStartOffset: {}\tEndOffset: {}",
            info.name, p.id, p.log_start_offset, p.high_watermark
        );
        if sizes {
            print!("\tSize: {}\tSegments: {}", p.size_bytes, p.segments);
        }
        println!();
    }
}
