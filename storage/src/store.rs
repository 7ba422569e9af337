//! The log of one data directory: its lock, its topics and their partitions, consumer-group
//! offsets, the clean-shutdown marker, and the background maintenance (interval flushes,
//! retention, compaction, recovery checkpoints) of a long-lived process.
//!
//! Layout: `<dir>/.lock` (holder's pid), `<dir>/.clean-shutdown` (present only while closed
//! cleanly), `<dir>/topics/<topic>/topic.json` and `<dir>/topics/<topic>/<partition>/`
//! (segments). A topic directory without `topic.json` is a creation that did not finish and
//! is removed at open; deleted topics pass through `<dir>/trash/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::batch::{self, BatchBuilder, SealedBatch};
use crate::compression::Compression;
use crate::config::{TopicConfig, validate_topic_name};
use crate::error::{Result, StorageError};
use crate::fs::{self, DirLock, LockFailure, RealFs, Vfs};
use crate::groups::{self, CommittedOffset, GroupOffsets, OFFSETS_PARTITIONS, OFFSETS_TOPIC};
use crate::partition::{AppendInfo, PartitionLog, ReadResult, lock, now_ms};
use crate::partitioner::{StickyPartitioner, partition_for_key};

const CLEAN_MARKER: &str = ".clean-shutdown";
const TOPIC_FILE: &str = "topic.json";
/// Largest partition count a topic may be created with.
pub const MAX_PARTITIONS: u32 = 10_000;

/// How a store runs its background maintenance.
#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    /// How often interval flushes are checked.
    pub tick: Duration,
    /// How often retention and compaction run (Kafka's `log.retention.check.interval.ms`).
    pub retention_check: Duration,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        MaintenanceOptions {
            tick: Duration::from_millis(50),
            retention_check: Duration::from_secs(300),
        }
    }
}

/// Options for opening a store.
#[derive(Clone, Default)]
pub struct StoreOptions {
    /// Config of topics created without overrides.
    pub default_config: TopicConfig,
    /// Background maintenance thread; `None` for short-lived processes (CLI commands), which
    /// still get retention and compaction at open.
    pub maintenance: Option<MaintenanceOptions>,
    /// The file system; the operating system's when `None`.
    pub vfs: Option<Arc<dyn Vfs>>,
}

#[derive(Serialize, Deserialize)]
struct TopicFile {
    name: String,
    partitions: u32,
    config: TopicConfig,
    created_ms: i64,
}

/// A topic and its open partitions.
pub struct Topic {
    pub name: String,
    pub config: Arc<RwLock<TopicConfig>>,
    pub partitions: Vec<Arc<PartitionLog>>,
    sticky: StickyPartitioner,
}

/// What `describe` shows of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// What `describe` shows of a topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
    pub config: TopicConfig,
    pub internal: bool,
}

impl Topic {
    fn info(&self) -> TopicInfo {
        TopicInfo {
            name: self.name.clone(),
            partitions: self
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    id: p.id,
                    log_start_offset: p.log_start_offset(),
                    high_watermark: p.high_watermark(),
                    size_bytes: p.size_bytes(),
                    segments: p.segment_count(),
                })
                .collect(),
            config: self
                .config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            internal: is_internal(&self.name),
        }
    }
}

/// Internal topics: Kafka's double-underscore ones and Sluice's own.
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__") || name.starts_with("_sluice")
}

struct Inner {
    root: PathBuf,
    vfs: Arc<dyn Vfs>,
    options: StoreOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    groups: Mutex<GroupOffsets>,
    /// Serializes topic creation and deletion.
    admin: Mutex<()>,
    closed: AtomicBool,
    stop: (Mutex<bool>, Condvar),
    _lock: Box<dyn DirLock>,
}

/// The event log of one data directory.
pub struct LogStore {
    inner: Arc<Inner>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
}

impl LogStore {
    /// Opens (creating if needed) the data directory with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let vfs: Arc<dyn Vfs> = options.vfs.clone().unwrap_or_else(|| Arc::new(RealFs));
        vfs.create_dir_all(&root)
            .map_err(|e| StorageError::io(&root, e))?;
        let dir_lock = vfs.lock_dir(&root).map_err(|f| match f {
            LockFailure::Held(holder) => StorageError::Locked {
                dir: root.clone(),
                holder,
            },
            LockFailure::Io(e) => StorageError::io(root.join(".lock"), e),
        })?;
        let marker = root.join(CLEAN_MARKER);
        let clean = vfs.exists(&marker);
        if clean {
            vfs.remove_file(&marker)
                .map_err(|e| StorageError::io(&marker, e))?;
            vfs.sync_dir(&root)
                .map_err(|e| StorageError::io(&root, e))?;
        } else {
            tracing::info!(dir = %root.display(), "no clean-shutdown marker: validating everything after each recovery point");
        }
        let trash = root.join("trash");
        if vfs.is_dir(&trash) {
            vfs.remove_dir_all(&trash)
                .map_err(|e| StorageError::io(&trash, e))?;
        }
        let topics_dir = root.join("topics");
        vfs.create_dir_all(&topics_dir)
            .map_err(|e| StorageError::io(&topics_dir, e))?;
        let mut topics = BTreeMap::new();
        for name in vfs
            .list_dir(&topics_dir)
            .map_err(|e| StorageError::io(&topics_dir, e))?
        {
            let tdir = topics_dir.join(&name);
            let tfile = tdir.join(TOPIC_FILE);
            if !vfs.exists(&tfile) {
                tracing::warn!(topic = %name, "removing a topic whose creation did not finish");
                vfs.remove_dir_all(&tdir)
                    .map_err(|e| StorageError::io(&tdir, e))?;
                continue;
            }
            let raw =
                fs::read_file(vfs.as_ref(), &tfile).map_err(|e| StorageError::io(&tfile, e))?;
            let meta: TopicFile = serde_json::from_slice(&raw)
                .map_err(|e| StorageError::corrupted(format!("{}: {e}", tfile.display())))?;
            let topic = open_topic(&vfs, &tdir, meta, clean)?;
            topics.insert(name, Arc::new(topic));
        }
        let inner = Arc::new(Inner {
            root,
            vfs,
            options,
            topics: RwLock::new(topics),
            groups: Mutex::new(GroupOffsets::default()),
            admin: Mutex::new(()),
            closed: AtomicBool::new(false),
            stop: (Mutex::new(false), Condvar::new()),
            _lock: dir_lock,
        });
        let store = LogStore {
            inner,
            maintenance: Mutex::new(None),
        };
        store.load_groups()?;
        store.run_retention_and_compaction()?;
        if let Some(m) = store.inner.options.maintenance.clone() {
            let inner = store.inner.clone();
            let handle = std::thread::Builder::new()
                .name("sluice-log-maintenance".into())
                .spawn(move || maintenance_loop(&inner, &m))
                .map_err(|e| StorageError::io("maintenance thread", e))?;
            *lock(&store.maintenance) = Some(handle);
        }
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.root
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.inner.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The open topic `name`.
    pub fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics_read()
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<PartitionLog>> {
        let t = self.topic(topic)?;
        t.partitions
            .get(partition as usize)
            .cloned()
            .ok_or(StorageError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: t.partitions.len() as u32,
            })
    }

    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        validate_topic_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(StorageError::InvalidConfig(format!(
                "the number of partitions must be between 1 and {MAX_PARTITIONS}, not {partitions}"
            )));
        }
        let _admin = lock(&self.inner.admin);
        if self.topics_read().contains_key(name) {
            return Err(StorageError::TopicExists(name.to_string()));
        }
        let vfs = &self.inner.vfs;
        let tdir = self.inner.root.join("topics").join(name);
        if vfs.exists(&tdir) {
            vfs.remove_dir_all(&tdir)
                .map_err(|e| StorageError::io(&tdir, e))?;
        }
        vfs.create_dir_all(&tdir)
            .map_err(|e| StorageError::io(&tdir, e))?;
        let meta = TopicFile {
            name: name.to_string(),
            partitions,
            config,
            created_ms: now_ms(),
        };
        let topic = open_topic(vfs, &tdir, meta_clone(&meta), true)?;
        // topic.json last: its presence is what makes the topic exist after a crash.
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| StorageError::corrupted(format!("topic metadata: {e}")))?;
        let tfile = tdir.join(TOPIC_FILE);
        fs::write_file_atomic(vfs.as_ref(), &tfile, &json)
            .map_err(|e| StorageError::io(&tfile, e))?;
        let topics_dir = self.inner.root.join("topics");
        vfs.sync_dir(&topics_dir)
            .map_err(|e| StorageError::io(&topics_dir, e))?;
        let topic = Arc::new(topic);
        let info = topic.info();
        self.inner
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), topic);
        Ok(info)
    }

    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = lock(&self.inner.admin);
        let removed = self
            .inner
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if removed.is_none() {
            return Err(StorageError::UnknownTopic(name.to_string()));
        }
        let vfs = &self.inner.vfs;
        let tdir = self.inner.root.join("topics").join(name);
        let trash = self.inner.root.join("trash");
        vfs.create_dir_all(&trash)
            .map_err(|e| StorageError::io(&trash, e))?;
        let gone = trash.join(format!("{name}.{}", now_ms()));
        vfs.rename(&tdir, &gone)
            .map_err(|e| StorageError::io(&tdir, e))?;
        vfs.sync_dir(&self.inner.root.join("topics"))
            .map_err(|e| StorageError::io(&tdir, e))?;
        vfs.remove_dir_all(&gone)
            .map_err(|e| StorageError::io(&gone, e))?;
        lock(&self.inner.groups).remove_topic(name);
        Ok(())
    }

    /// Changes a topic's config (Kafka's AlterConfigs): `change` edits a copy, which is
    /// written to the topic's metadata file first and then takes effect for its partitions.
    pub fn alter_topic_config(
        &self,
        name: &str,
        change: impl FnOnce(&mut TopicConfig) -> Result<()>,
    ) -> Result<TopicConfig> {
        let _admin = lock(&self.inner.admin);
        let topic = self.topic(name)?;
        let mut config = topic
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        change(&mut config)?;
        let mut meta = self.read_topic_file(name)?;
        meta.config = config.clone();
        self.write_topic_file(&meta)?;
        *topic.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
        Ok(config)
    }

    /// Grows a topic to `count` partitions (Kafka's CreatePartitions). Keys map to
    /// partitions by the count, so keyed records go elsewhere afterwards, as in Kafka.
    pub fn add_partitions(&self, name: &str, count: u32) -> Result<TopicInfo> {
        let _admin = lock(&self.inner.admin);
        let topic = self.topic(name)?;
        let have = topic.partitions.len() as u32;
        if count <= have {
            return Err(StorageError::InvalidConfig(format!(
                "Topic currently has {have} partitions, which is higher than the requested {count}."
            )));
        }
        if count > MAX_PARTITIONS {
            return Err(StorageError::InvalidConfig(format!(
                "the number of partitions must be at most {MAX_PARTITIONS}, not {count}"
            )));
        }
        let tdir = self.inner.root.join("topics").join(name);
        let mut partitions = topic.partitions.clone();
        for p in have..count {
            let dir = tdir.join(p.to_string());
            // Left over by an earlier attempt that crashed before the metadata said so.
            if self.inner.vfs.exists(&dir) {
                self.inner
                    .vfs
                    .remove_dir_all(&dir)
                    .map_err(|e| StorageError::io(&dir, e))?;
            }
            partitions.push(Arc::new(PartitionLog::open(
                self.inner.vfs.clone(),
                &dir,
                name,
                p,
                topic.config.clone(),
                true,
            )?));
        }
        let mut meta = self.read_topic_file(name)?;
        meta.partitions = count;
        // The metadata last: the new partitions exist once it says so.
        self.write_topic_file(&meta)?;
        let grown = Arc::new(Topic {
            name: name.to_string(),
            config: topic.config.clone(),
            partitions,
            sticky: StickyPartitioner::default(),
        });
        let info = grown.info();
        self.inner
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), grown);
        Ok(info)
    }

    fn read_topic_file(&self, name: &str) -> Result<TopicFile> {
        let tfile = self.inner.root.join("topics").join(name).join(TOPIC_FILE);
        let raw = fs::read_file(self.inner.vfs.as_ref(), &tfile)
            .map_err(|e| StorageError::io(&tfile, e))?;
        serde_json::from_slice(&raw)
            .map_err(|e| StorageError::corrupted(format!("{}: {e}", tfile.display())))
    }

    fn write_topic_file(&self, meta: &TopicFile) -> Result<()> {
        let tfile = self
            .inner
            .root
            .join("topics")
            .join(&meta.name)
            .join(TOPIC_FILE);
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| StorageError::corrupted(format!("topic metadata: {e}")))?;
        fs::write_file_atomic(self.inner.vfs.as_ref(), &tfile, &json)
            .map_err(|e| StorageError::io(&tfile, e))
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics_read().keys().cloned().collect()
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        Ok(self.topic(name)?.info())
    }

    pub fn describe_topics(&self) -> Vec<TopicInfo> {
        self.topics_read().values().map(|t| t.info()).collect()
    }

    /// The partition a record with `key` goes to: Kafka's murmur2 partitioner for keys, a
    /// sticky round-robin for records without one.
    pub fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<u32> {
        let t = self.topic(topic)?;
        let n = t.partitions.len() as u32;
        Ok(match key {
            Some(k) => partition_for_key(k, n),
            None => t.sticky.next_partition(n),
        })
    }

    pub fn append(&self, topic: &str, partition: u32, batches: &mut [u8]) -> Result<AppendInfo> {
        self.check_open()?;
        self.partition(topic, partition)?.append(batches)
    }

    /// One append of batches this crate's builder sealed (one fsync, their CRCs not
    /// computed again).
    pub fn append_sealed(
        &self,
        topic: &str,
        partition: u32,
        batches: &mut [SealedBatch],
    ) -> Result<AppendInfo> {
        self.check_open()?;
        self.partition(topic, partition)?.append_sealed(batches)
    }

    /// One append of batches held in several buffers (one fsync, no copy into one buffer).
    pub fn append_parts(
        &self,
        topic: &str,
        partition: u32,
        parts: &mut [&mut [u8]],
    ) -> Result<AppendInfo> {
        self.check_open()?;
        self.partition(topic, partition)?.append_parts(parts)
    }

    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn offsets_topic(&self) -> Result<Arc<Topic>> {
        if let Ok(t) = self.topic(OFFSETS_TOPIC) {
            return Ok(t);
        }
        let mut c = self.inner.options.default_config.clone();
        c.compact = true;
        c.delete = false;
        c.segment_bytes = 100 * 1024 * 1024;
        match self.create_topic(OFFSETS_TOPIC, OFFSETS_PARTITIONS, c) {
            Ok(_) | Err(StorageError::TopicExists(_)) => self.topic(OFFSETS_TOPIC),
            Err(e) => Err(e),
        }
    }

    fn load_groups(&self) -> Result<()> {
        let Ok(t) = self.topic(OFFSETS_TOPIC) else {
            return Ok(());
        };
        let mut g = lock(&self.inner.groups);
        for p in &t.partitions {
            let mut offset = p.log_start_offset();
            loop {
                let r = p.read(offset, 1 << 20)?;
                if r.data.is_empty() {
                    break;
                }
                for b in batch::Batches::new(&r.data) {
                    let h = batch::BatchHeader::parse(b)?;
                    batch::for_each_record(b, |rec| {
                        if (rec.offset as u64) >= offset
                            && let Some(k) = rec.key
                            && let Err(e) = g.apply_record(k, rec.value)
                        {
                            tracing::warn!(error = %e, "skipping an unreadable __consumer_offsets record");
                        }
                        Ok(())
                    })?;
                    offset = h.next_offset();
                }
            }
        }
        Ok(())
    }

    /// Commits positions of `group` (each the next offset to read), durably.
    pub fn commit_offsets(&self, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        if group.is_empty() {
            return Err(StorageError::InvalidConfig(
                "the group id must not be empty".into(),
            ));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let t = self.offsets_topic()?;
        let mut b = BatchBuilder::new(Compression::None);
        let now = now_ms();
        for c in offsets {
            let k = groups::encode_key(group, &c.topic, c.partition);
            let v = groups::encode_value(c.offset, &c.metadata, now);
            b.push(now, Some(&k), Some(&v), &[]);
        }
        let mut bytes = b.finish()?;
        let p = groups::partition_for_group(group);
        t.partitions[p as usize].append(&mut bytes)?;
        let mut g = lock(&self.inner.groups);
        for c in offsets {
            g.set(
                group,
                CommittedOffset {
                    commit_timestamp: now,
                    ..c.clone()
                },
            );
        }
        Ok(())
    }

    /// The latest committed offsets of `group` (empty for an unknown group).
    pub fn committed_offsets(&self, group: &str) -> Vec<CommittedOffset> {
        lock(&self.inner.groups).group(group)
    }

    pub fn group_names(&self) -> Vec<String> {
        lock(&self.inner.groups).names()
    }

    fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.topics_read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Runs retention and compaction over every partition now.
    pub fn run_retention_and_compaction(&self) -> Result<()> {
        for p in self.partitions() {
            p.apply_retention()?;
            p.compact()?;
        }
        Ok(())
    }

    /// Flushes every partition, writes recovery points and the clean-shutdown marker.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let (m, cv) = &self.inner.stop;
            *lock(m) = true;
            cv.notify_all();
        }
        if let Some(h) = lock(&self.maintenance).take() {
            let _ = h.join();
        }
        for p in self.partitions() {
            p.close()?;
        }
        let marker = self.inner.root.join(CLEAN_MARKER);
        fs::write_file_atomic(self.inner.vfs.as_ref(), &marker, b"clean\n")
            .map_err(|e| StorageError::io(&marker, e))?;
        Ok(())
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the log failed; the next open will recover");
        }
    }
}

fn meta_clone(m: &TopicFile) -> TopicFile {
    TopicFile {
        name: m.name.clone(),
        partitions: m.partitions,
        config: m.config.clone(),
        created_ms: m.created_ms,
    }
}

fn open_topic(vfs: &Arc<dyn Vfs>, tdir: &Path, meta: TopicFile, clean: bool) -> Result<Topic> {
    let config = Arc::new(RwLock::new(meta.config));
    let mut partitions = Vec::with_capacity(meta.partitions as usize);
    for p in 0..meta.partitions {
        let dir = tdir.join(p.to_string());
        partitions.push(Arc::new(PartitionLog::open(
            vfs.clone(),
            &dir,
            &meta.name,
            p,
            config.clone(),
            clean,
        )?));
    }
    Ok(Topic {
        name: meta.name,
        config,
        partitions,
        sticky: StickyPartitioner::default(),
    })
}

fn maintenance_loop(inner: &Arc<Inner>, m: &MaintenanceOptions) {
    let mut last_retention = Instant::now();
    let mut last_checkpoint = Instant::now();
    loop {
        {
            let (lk, cv) = &inner.stop;
            let stopped = lock(lk);
            let (stopped, _) = cv
                .wait_timeout_while(stopped, m.tick, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
        }
        let partitions: Vec<Arc<PartitionLog>> = inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect();
        let retention_due = last_retention.elapsed() >= m.retention_check;
        let checkpoint_due = last_checkpoint.elapsed() >= Duration::from_secs(60);
        for p in partitions {
            let work = || -> Result<()> {
                p.flush_if_due()?;
                if retention_due {
                    p.apply_retention()?;
                    p.compact()?;
                }
                if checkpoint_due {
                    p.checkpoint()?;
                }
                Ok(())
            };
            if let Err(e) = work() {
                tracing::error!(topic = %p.topic, partition = p.id, error = %e, "log maintenance failed");
            }
        }
        if retention_due {
            last_retention = Instant::now();
        }
        if checkpoint_due {
            last_checkpoint = Instant::now();
        }
    }
}
