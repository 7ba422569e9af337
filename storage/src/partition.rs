//! One partition's log: a thin coordinator over its segments. It appends (assigning offsets,
//! rolling segments, fsyncing as the topic's flush policy says, with group commit), serves
//! reads of whole batches, finds offsets by timestamp, lets readers wait for new data, and
//! loads itself at open (recovery). Retention and compaction live in `retention.rs` and
//! `cleaner.rs` and work on the segment map through this type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use crate::batch::{self, BatchHeader, Batches, Expect, SealedBatch};
use crate::config::{FlushPolicy, TopicConfig};
use crate::error::{Result, StorageError};
use crate::fs::{self, Vfs};
use crate::read_bytes::ReadBytes;
use crate::segment::{self, Segment, scan_batches};

const RECOVERY_POINT_FILE: &str = "recovery-point";

/// Reads of at least this many bytes are windows on a memory map of the segment rather
/// than copies (`PartitionLog::read`): below it, a map and its page faults cost more.
const MAP_READS_FROM: usize = 256 << 10;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: u64,
    pub last_offset: u64,
    pub record_count: u64,
}

/// Whole batches read from a partition.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// Concatenated RecordBatch v2 bytes; the first batch contains the requested offset (it
    /// may start before it: skip records below the offset, as Kafka consumers do).
    pub data: ReadBytes,
    /// Offset just past the last readable record.
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

pub(crate) struct State {
    pub segments: BTreeMap<u64, Segment>,
    pub next_offset: u64,
    last_flush: Instant,
    /// Set after a write failed half-way: appends are refused until the log is reopened.
    failed: Option<String>,
}

impl State {
    /// The segment appends go to; `None` until the partition's first append (a partition
    /// nobody wrote to has no files).
    pub fn active(&mut self) -> Option<&mut Segment> {
        self.segments.values_mut().next_back()
    }

    pub fn log_start(&self) -> u64 {
        self.segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_offset)
    }

    pub fn size(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }
}

pub struct PartitionLog {
    pub topic: String,
    pub id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) config: Arc<RwLock<TopicConfig>>,
    pub(crate) state: Mutex<State>,
    flush_lock: Mutex<()>,
    durable_end: AtomicU64,
    visible: watch::Sender<u64>,
    /// The recovery point last written to disk, so unchanged partitions skip the write.
    recovery_point: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PartitionLog {
    /// Opens (or creates) the partition in `dir`. After a clean shutdown only the tail of the
    /// last segment is validated; otherwise every segment from the recovery point on is.
    /// A new partition makes no directory or file until its first append: a topic of many
    /// partitions (`__consumer_offsets` has fifty) costs nothing for those never written.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        topic: &str,
        id: u32,
        config: Arc<RwLock<TopicConfig>>,
        clean: bool,
    ) -> Result<Self> {
        let max_batch = config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .max_message_bytes as usize
            + batch::HEADER_LEN;
        // Leftovers of interrupted work: temporary and half-written cleaner files.
        let names = if vfs.exists(dir) {
            vfs.list_dir(dir).map_err(|e| StorageError::io(dir, e))?
        } else {
            Vec::new()
        };
        let mut bases = Vec::new();
        for name in &names {
            if name.ends_with(".cleaned") || name.ends_with(".tmp") {
                let _ = vfs.remove_file(&dir.join(name));
            } else if let Some(b) = segment::parse_log_name(name) {
                bases.push(b);
            }
        }
        bases.sort_unstable();
        let recovery_point = read_recovery_point(vfs.as_ref(), dir);
        let mut segments = BTreeMap::new();
        let mut truncated = false;
        for (i, &base) in bases.iter().enumerate() {
            if truncated {
                // Kafka's rule: after a segment was cut short, later segments cannot follow it.
                tracing::warn!(dir = %dir.display(), base, "deleting segment after a truncated one");
                Segment::open(vfs.as_ref(), dir, base)?.delete(vfs.as_ref())?;
                continue;
            }
            let mut seg = Segment::open(vfs.as_ref(), dir, base)?;
            let is_last = i + 1 == bases.len();
            let next_base = bases.get(i + 1).copied();
            let needs_recovery = !clean && next_base.is_none_or(|n| n > recovery_point);
            let cut = if needs_recovery
                || !seg.indexes_sane()
                || (seg.max_timestamp < 0 && !seg.is_empty())
            {
                seg.recover(max_batch)?
            } else if is_last {
                seg.recover_tail(max_batch)?
            } else {
                seg.next_offset = next_base.unwrap_or(seg.next_offset);
                0
            };
            if let Some(n) = next_base
                && (cut > 0 || seg.next_offset != n)
            {
                truncated = true;
            }
            if !is_last && !truncated {
                seg.release_index_files();
            }
            segments.insert(base, seg);
        }
        let next_offset = segments.values().next_back().map_or(0, |s| s.next_offset);
        let log = PartitionLog {
            topic: topic.to_string(),
            id,
            dir: dir.to_path_buf(),
            vfs,
            config,
            state: Mutex::new(State {
                segments,
                next_offset,
                last_flush: Instant::now(),
                failed: None,
            }),
            flush_lock: Mutex::new(()),
            durable_end: AtomicU64::new(0),
            visible: watch::channel(next_offset).0,
            recovery_point: AtomicU64::new(recovery_point),
        };
        if clean {
            // A clean shutdown fsynced everything: the whole log is durable as it stands.
            log.mark_durable(next_offset);
        } else {
            // What survived recovery is made durable, so the recovery point may move to the end.
            log.flush()?;
        }
        Ok(log)
    }

    pub fn config(&self) -> TopicConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn max_batch(&self, c: &TopicConfig) -> usize {
        c.max_message_bytes as usize + batch::HEADER_LEN
    }

    /// Offset just past the last record readers may see. Under `flush.policy=always` that is
    /// the last fsynced record: nobody reads what a crash could still take back.
    pub fn high_watermark(&self) -> u64 {
        *self.visible.borrow()
    }

    /// Offset just past the last fsynced record.
    pub fn durable_offset(&self) -> u64 {
        self.durable_end.load(Ordering::SeqCst)
    }

    pub fn log_start_offset(&self) -> u64 {
        lock(&self.state).log_start()
    }

    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        lock(&self.state).size()
    }

    pub fn segment_count(&self) -> usize {
        lock(&self.state).segments.len()
    }

    /// Validates producer batches (whole batches, CRC, counts, keys for compacted topics),
    /// assigns offsets and appends them, returning once the flush policy is satisfied.
    pub fn append(&self, data: &mut [u8]) -> Result<AppendInfo> {
        self.append_parts(&mut [data])
    }

    /// `append` for batches held in several buffers (each a sequence of whole batches):
    /// validated and written as one append, with one fsync under `flush.policy=always`,
    /// and no copy into one buffer first.
    pub fn append_parts(&self, parts: &mut [&mut [u8]]) -> Result<AppendInfo> {
        self.append_checked(parts, true)
    }

    /// `append_parts` for batches this crate's builder made: their CRCs are not computed
    /// again (everything else is checked as for any append).
    pub fn append_sealed(&self, batches: &mut [SealedBatch]) -> Result<AppendInfo> {
        let mut parts: Vec<&mut [u8]> = batches.iter_mut().map(SealedBatch::bytes_mut).collect();
        self.append_checked(&mut parts, false)
    }

    /// Validates (the CRCs only when `crc`), assigns offsets and appends.
    fn append_checked(&self, parts: &mut [&mut [u8]], crc: bool) -> Result<AppendInfo> {
        let config = self.config();
        let max_batch = self.max_batch(&config);
        let mut headers: Vec<BatchHeader> = Vec::new();
        let mut records = 0u64;
        for data in parts.iter() {
            records += self.validate_part(data, max_batch, &config, crc, &mut headers)?;
        }
        if headers.is_empty() {
            return Err(StorageError::invalid_record(
                "the data is not a sequence of whole record batches",
            ));
        }
        let total_len: usize = parts.iter().map(|d| d.len()).sum();

        let (base, end) = {
            let mut st = lock(&self.state);
            if let Some(why) = &st.failed {
                return Err(StorageError::Corrupted(format!(
                    "partition {}-{} stopped after a failed write: {why}",
                    self.topic, self.id
                )));
            }
            let base = st.next_offset;
            let mut next = base;
            let mut h = headers.iter_mut();
            for data in parts.iter_mut() {
                let mut pos = 0;
                while pos < data.len() {
                    let Some(h) = h.next() else { break };
                    let b = &mut data[pos..pos + h.total_len()];
                    batch::set_base_offset(b, next);
                    batch::set_leader_epoch(b, 0);
                    h.base_offset = next as i64;
                    h.partition_leader_epoch = 0;
                    pos += h.total_len();
                    next = h.next_offset();
                }
            }
            if st.segments.is_empty() {
                // Nothing is half-written if this fails: the next append tries again.
                self.create_first_segment(&mut st)?;
            }
            self.maybe_roll(
                &mut st,
                &config,
                total_len as u64,
                next,
                headers[0].max_timestamp,
            )?;
            let appended = match st.active() {
                Some(active) => active.append(parts, &headers),
                None => Err(StorageError::corrupted("no segment to append to")),
            };
            if let Err(e) = appended {
                st.failed = Some(e.to_string());
                return Err(e);
            }
            st.next_offset = next;
            if config.flush_policy != FlushPolicy::Always {
                self.visible.send_replace(next);
            }
            (base, next)
        };
        match config.flush_policy {
            FlushPolicy::Always => self.sync_to(end)?,
            FlushPolicy::Interval => {
                let due = lock(&self.state).last_flush.elapsed() >= config.flush_interval();
                if due {
                    self.sync_to(end)?;
                }
            }
            FlushPolicy::OnRoll => {}
        }
        Ok(AppendInfo {
            base_offset: base,
            last_offset: end - 1,
            record_count: records,
        })
    }

    /// Validates one buffer of an append's batches (their CRCs only when `crc`), adding
    /// their headers to `headers`; returns how many records they hold.
    fn validate_part(
        &self,
        data: &[u8],
        max_batch: usize,
        config: &TopicConfig,
        crc: bool,
        headers: &mut Vec<BatchHeader>,
    ) -> Result<u64> {
        let mut walker = Batches::new(data);
        let mut records = 0u64;
        let expect = Expect {
            base_offset: None,
            leader_epoch: None,
            max_len: max_batch,
        };
        for b in &mut walker {
            let checked = if crc {
                batch::validate(b, &expect)
            } else {
                batch::check_header(b, &expect)
            };
            let h = checked.map_err(|e| StorageError::invalid_record(e.to_string()))?;
            if h.records_count == 0 || h.records_count != h.last_offset_delta + 1 {
                return Err(StorageError::invalid_record(format!(
                    "batch has {} records but last offset delta {}",
                    h.records_count, h.last_offset_delta
                )));
            }
            if h.is_control() {
                return Err(StorageError::invalid_record(
                    "clients may not write control batches",
                ));
            }
            if config.compact {
                let mut keyless = Vec::new();
                let mut index = 0u32;
                batch::for_each_record(b, |r| {
                    if r.key.is_none() {
                        keyless.push(index);
                    }
                    index += 1;
                    Ok(())
                })?;
                if !keyless.is_empty() {
                    return Err(StorageError::RecordRefused {
                        message: "Compacted topic cannot accept message without key".into(),
                        records: keyless,
                    });
                }
            }
            records += h.records_count as u64;
            headers.push(h);
        }
        if walker.position() != data.len() || data.is_empty() {
            return Err(StorageError::invalid_record(
                "the data is not a sequence of whole record batches",
            ));
        }
        Ok(records)
    }

    /// Makes the partition's directory and first segment (at the log end), durably: the
    /// directory's entry in the topic's and the segment's files in it.
    fn create_first_segment(&self, st: &mut State) -> Result<()> {
        let dir = &self.dir;
        self.vfs
            .create_dir_all(dir)
            .map_err(|e| StorageError::io(dir, e))?;
        let base = st.next_offset;
        let seg = Segment::create(self.vfs.as_ref(), dir, base)?;
        self.vfs
            .sync_dir(dir)
            .map_err(|e| StorageError::io(dir, e))?;
        if let Some(topic_dir) = dir.parent() {
            self.vfs
                .sync_dir(topic_dir)
                .map_err(|e| StorageError::io(topic_dir, e))?;
        }
        st.segments.insert(base, seg);
        Ok(())
    }

    /// Rolls to a new segment when the next append would not fit (size, age, or relative
    /// offsets past 32 bits).
    fn maybe_roll(
        &self,
        st: &mut State,
        c: &TopicConfig,
        incoming: u64,
        next_offset: u64,
        incoming_ts: i64,
    ) -> Result<()> {
        let Some(active) = st.active() else {
            return Ok(());
        };
        if active.is_empty() {
            return Ok(());
        }
        let too_big = active.size + incoming > c.segment_bytes;
        // As Kafka: by record time (the incoming batch's against the segment's first), so
        // records carrying old event times do not roll a segment per append.
        let too_old = active
            .first_batch_timestamp
            .is_some_and(|t| incoming_ts.saturating_sub(t) > c.segment_ms);
        let too_far = next_offset - active.base > u64::from(u32::MAX / 2);
        if too_big || too_old || too_far {
            self.roll(st)?;
        }
        Ok(())
    }

    /// Seals the active segment (fsync) and starts a new one at the log end.
    pub(crate) fn roll(&self, st: &mut State) -> Result<()> {
        if let Some(active) = st.active() {
            active.seal()?;
            active.release_index_files();
        }
        let next = st.next_offset;
        self.mark_durable(next);
        let seg = Segment::create(self.vfs.as_ref(), &self.dir, next)?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, e))?;
        st.segments.insert(next, seg);
        self.write_recovery_point(next)
    }

    /// Persists the recovery point unless it is already on disk.
    fn write_recovery_point(&self, offset: u64) -> Result<()> {
        if self.recovery_point.load(Ordering::SeqCst) == offset {
            return Ok(());
        }
        write_recovery_point(self.vfs.as_ref(), &self.dir, offset)?;
        self.recovery_point.store(offset, Ordering::SeqCst);
        Ok(())
    }

    fn mark_durable(&self, end: u64) {
        self.durable_end.fetch_max(end, Ordering::SeqCst);
        self.visible.send_if_modified(|v| {
            let changed = *v < end;
            *v = (*v).max(end);
            changed
        });
    }

    /// Group commit: returns once everything up to `end` is fsynced. Whoever takes the flush
    /// lock first fsyncs for everyone whose data was written by then.
    fn sync_to(&self, end: u64) -> Result<()> {
        if self.durable_end.load(Ordering::SeqCst) >= end {
            return Ok(());
        }
        let _flush = lock(&self.flush_lock);
        if self.durable_end.load(Ordering::SeqCst) >= end {
            return Ok(());
        }
        self.sync_active()
    }

    /// fsyncs the active segment (earlier ones were fsynced when they rolled); the caller
    /// holds the flush lock.
    fn sync_active(&self) -> Result<()> {
        let (file, target, path) = {
            let mut st = lock(&self.state);
            let target = st.next_offset;
            let Some(a) = st.active() else {
                // Nothing was ever written: nothing to sync.
                drop(st);
                self.mark_durable(target);
                return Ok(());
            };
            (a.log_file(), target, a.log_path())
        };
        file.sync().map_err(|e| StorageError::io(path, e))?;
        lock(&self.state).last_flush = Instant::now();
        self.mark_durable(target);
        Ok(())
    }

    /// fsyncs everything written so far.
    pub fn flush(&self) -> Result<()> {
        let _flush = lock(&self.flush_lock);
        self.sync_active()
    }

    /// For `flush.policy=interval`: fsyncs when `flush.ms` has passed since the last fsync.
    pub fn flush_if_due(&self) -> Result<()> {
        let c = self.config();
        let (due, end) = {
            let st = lock(&self.state);
            (
                c.flush_policy == FlushPolicy::Interval
                    && st.last_flush.elapsed() >= c.flush_interval(),
                st.next_offset,
            )
        };
        if due && self.durable_end.load(Ordering::SeqCst) < end {
            self.sync_to(end)?;
        }
        Ok(())
    }

    /// Seals the active segment and records the recovery point (clean shutdown).
    pub fn close(&self) -> Result<()> {
        let mut st = lock(&self.state);
        if let Some(active) = st.active() {
            active.seal()?;
        }
        let end = st.next_offset;
        self.write_recovery_point(end)?;
        drop(st);
        self.mark_durable(end);
        Ok(())
    }

    /// Persists the recovery point (everything durable so far) so an unclean restart
    /// re-validates less.
    pub fn checkpoint(&self) -> Result<()> {
        let durable = self.durable_end.load(Ordering::SeqCst);
        let _st = lock(&self.state);
        self.write_recovery_point(durable)
    }

    fn out_of_range(&self, offset: u64, start: u64, end: u64) -> StorageError {
        StorageError::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.id,
            offset,
            start,
            end,
        }
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes`
    /// (at least one batch, however large, as Kafka's fetch does). A large read is a window
    /// on a memory map of the segment (no copy, unmapped when the last holder drops it);
    /// a small one (a consumer keeping up with the tail) is copied into a buffer.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadResult> {
        let hw = self.high_watermark();
        let (file, pos, limit, log_start, max_batch) = {
            let st = lock(&self.state);
            let log_start = st.log_start();
            if offset < log_start || offset > hw {
                return Err(self.out_of_range(offset, log_start, hw));
            }
            if offset == hw {
                return Ok(ReadResult {
                    data: ReadBytes::default(),
                    high_watermark: hw,
                    log_start_offset: log_start,
                });
            }
            let Some(seg) = st
                .segments
                .range(..=offset)
                .next_back()
                .map(|(_, s)| s)
                .filter(|s| s.next_offset > offset)
                .or_else(|| st.segments.values().find(|s| s.next_offset > offset))
            else {
                return Err(self.out_of_range(offset, log_start, hw));
            };
            let c = self.config.read().unwrap_or_else(|e| e.into_inner());
            (
                seg.log_file(),
                seg.index_position(offset),
                seg.size,
                log_start,
                self.max_batch(&c),
            )
        };
        let Some((first, first_len)) =
            first_batch_holding(file.as_ref(), pos, limit, offset, hw, max_batch)?
        else {
            return Ok(ReadResult {
                data: ReadBytes::default(),
                high_watermark: hw,
                log_start_offset: log_start,
            });
        };
        // The batches from `first` on, cut after the last whole, valid batch below the high
        // watermark.
        let want = (limit - first).min(max_bytes.max(first_len) as u64) as usize;
        let mapped = if want >= MAP_READS_FROM {
            file.map_range(first, want)
        } else {
            None
        };
        let (data, whole, damage) = match mapped {
            Some((map, lead)) => {
                let (whole, damage) =
                    self.whole_batches(&map[lead..lead + want], first, max_batch, hw);
                let data = ReadBytes::Mapped(Arc::new(map), lead..lead + whole);
                (data, whole, damage)
            }
            None => {
                // Read straight into the buffer handed out (no copy through a chunk).
                let mut data = crate::read_buffers::take_len(want);
                file.read_exact_at(&mut data, first)
                    .map_err(|e| StorageError::io("segment", e))?;
                let (whole, damage) = self.whole_batches(&data, first, max_batch, hw);
                data.truncate(whole);
                (ReadBytes::Owned(data), whole, damage)
            }
        };
        if whole == 0
            && let Some(why) = damage
        {
            return Err(StorageError::Corrupted(why));
        }
        Ok(ReadResult {
            data,
            high_watermark: hw,
            log_start_offset: log_start,
        })
    }

    /// How many bytes at the start of `data` (read from segment position `from`) are
    /// whole, valid batches below the high watermark `hw`, and what damage stopped the
    /// count, if any: bits can rot after recovery checked them, so a batch is served only
    /// if it is whole and its CRC holds.
    fn whole_batches(
        &self,
        data: &[u8],
        from: u64,
        max_batch: usize,
        hw: u64,
    ) -> (usize, Option<String>) {
        let expect = Expect {
            base_offset: None,
            leader_epoch: Some(0),
            max_len: max_batch,
        };
        let mut at = 0;
        while let Some((_, len)) = servable_batch(&data[at..], max_batch, hw) {
            if at + len > data.len() {
                break;
            }
            if let Err(e) = batch::validate(&data[at..at + len], &expect) {
                let pos = from + at as u64;
                let damage = format!("{}-{} at byte {pos}: {e}", self.topic, self.id);
                return (at, Some(damage));
            }
            at += len;
        }
        (at, None)
    }

    /// The first offset whose record timestamp is at or after `timestamp` (Kafka's
    /// ListOffsets by time); `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>> {
        let hw = self.high_watermark();
        let candidates: Vec<(Arc<dyn fs::VFile>, u64, u64)> = {
            let st = lock(&self.state);
            st.segments
                .values()
                .filter(|s| {
                    s.max_timestamp >= timestamp || s.next_offset > s.base && s.max_timestamp < 0
                })
                .map(|s| (s.log_file(), s.time_position(timestamp), s.size))
                .collect()
        };
        for (file, pos, limit) in candidates {
            let mut found = None;
            scan_batches(file.as_ref(), pos, limit, usize::MAX, |_, b| {
                let h = BatchHeader::parse(b)?;
                if h.base_offset as u64 >= hw {
                    return Ok(false);
                }
                if h.max_timestamp < timestamp {
                    return Ok(true);
                }
                batch::for_each_record(b, |r| {
                    if found.is_none() && r.timestamp >= timestamp && (r.offset as u64) < hw {
                        found = Some(r.offset as u64);
                    }
                    Ok(())
                })?;
                Ok(found.is_none())
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Resolves once the high watermark passes `offset` (true) or at `deadline` (false).
    pub fn wait_for(
        &self,
        offset: u64,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = bool> + Send + 'static {
        let mut rx = self.visible.subscribe();
        async move {
            matches!(
                tokio::time::timeout_at(deadline, rx.wait_for(|hw| *hw > offset)).await,
                Ok(Ok(_))
            )
        }
    }

    /// Blocking form of `wait_for`, for callers outside an async runtime.
    pub fn wait_for_blocking(&self, offset: u64, deadline: std::time::Instant) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        match rt {
            Ok(rt) => rt.block_on(self.wait_for(offset, deadline.into())),
            Err(_) => false,
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read_recovery_point(vfs: &dyn Vfs, dir: &Path) -> u64 {
    fs::read_file(vfs, &dir.join(RECOVERY_POINT_FILE))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_recovery_point(vfs: &dyn Vfs, dir: &Path, offset: u64) -> Result<()> {
    let p = dir.join(RECOVERY_POINT_FILE);
    fs::write_file_atomic(vfs, &p, format!("{offset}\n").as_bytes())
        .map_err(|e| StorageError::io(p, e))
}

/// The byte position and length of the first batch from byte `from` of a segment (up to
/// `limit`) that holds offsets from `offset` on, reading only batch headers to step over
/// the ones before it (the offset index points at most a few batches early). `None` when
/// there is none below the high watermark `hw`, or the bytes there are not a batch.
fn first_batch_holding(
    file: &dyn fs::VFile,
    from: u64,
    limit: u64,
    offset: u64,
    hw: u64,
    max_batch: usize,
) -> Result<Option<(u64, usize)>> {
    let mut header = [0u8; batch::HEADER_LEN];
    let mut pos = from;
    while pos + batch::HEADER_LEN as u64 <= limit {
        file.read_exact_at(&mut header, pos)
            .map_err(|e| StorageError::io("segment", e))?;
        let Some((h, len)) = servable_batch(&header, max_batch, hw) else {
            return Ok(None);
        };
        if pos + len as u64 > limit {
            return Ok(None);
        }
        if h.last_offset() as u64 >= offset {
            return Ok(Some((pos, len)));
        }
        pos += len as u64;
    }
    Ok(None)
}

/// The header and total length of the batch `bytes` start with, if they start with one a
/// read may serve: a well-formed header, a length within `max_batch`, below the high
/// watermark `hw`. (Only the header is looked at: the batch may run past `bytes`.)
fn servable_batch(bytes: &[u8], max_batch: usize, hw: u64) -> Option<(BatchHeader, usize)> {
    let len = batch::peek_total_len(bytes)?;
    if len < batch::HEADER_LEN || len > max_batch {
        return None;
    }
    let h = BatchHeader::parse(bytes).ok()?;
    ((h.base_offset as u64) < hw).then_some((h, len))
}
