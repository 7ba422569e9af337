//! Consumer-group offsets, stored as Kafka stores them: records in the compacted internal
//! topic `__consumer_offsets`, keyed by (group, topic, partition) in Kafka's offset-commit key
//! schema v1 and valued in its schema v3, in partition `abs(hashCode(group)) % 50`. The
//! store keeps the latest commit of every key in memory and rebuilds it from the topic at open.

use std::collections::BTreeMap;

use crate::error::{Result, StorageError};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions` default.
pub const OFFSETS_PARTITIONS: u32 = 50;

/// A committed position of one group in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: u32,
    /// The next offset the group will read.
    pub offset: u64,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// Java's `String.hashCode` over UTF-16 code units.
fn java_hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition a group's commits go to (Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions`).
pub fn partition_for_group(group: &str) -> u32 {
    let h = java_hash_code(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs as u32 % OFFSETS_PARTITIONS
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Offset-commit key, schema version 1: version i16, group, topic (i16-prefixed), partition i32.
pub fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + group.len() + topic.len());
    k.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut k, group);
    put_str(&mut k, topic);
    k.extend_from_slice(&(partition as i32).to_be_bytes());
    k
}

/// Offset-commit value, schema version 3: version, offset i64, leader epoch i32 (-1),
/// metadata string, commit timestamp i64.
pub fn encode_value(offset: u64, metadata: &str, commit_timestamp: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + metadata.len());
    v.extend_from_slice(&3i16.to_be_bytes());
    v.extend_from_slice(&(offset as i64).to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    put_str(&mut v, metadata);
    v.extend_from_slice(&commit_timestamp.to_be_bytes());
    v
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(StorageError::corrupted("offset commit record is truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }
}

/// Decodes an offset-commit key (versions 0 and 1); `None` for other record kinds (group
/// metadata uses version 2).
pub fn decode_key(key: &[u8]) -> Result<Option<(String, String, u32)>> {
    let mut c = Cursor(key);
    match c.i16()? {
        0 | 1 => Ok(Some((c.string()?, c.string()?, c.i32()? as u32))),
        _ => Ok(None),
    }
}

/// Decodes an offset-commit value (versions 1 and 3): (offset, metadata, commit timestamp).
pub fn decode_value(value: &[u8]) -> Result<(u64, String, i64)> {
    let mut c = Cursor(value);
    let version = c.i16()?;
    let offset = c.i64()?;
    if version >= 3 {
        let _leader_epoch = c.i32()?;
    }
    let metadata = c.string()?;
    let ts = c.i64()?;
    Ok((offset.max(0) as u64, metadata, ts))
}

/// The latest committed offsets of every group, in memory.
#[derive(Debug, Default)]
pub struct GroupOffsets {
    groups: BTreeMap<String, BTreeMap<(String, u32), CommittedOffset>>,
}

impl GroupOffsets {
    /// Applies one `__consumer_offsets` record (a tombstone removes the commit).
    pub fn apply_record(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let Some((group, topic, partition)) = decode_key(key)? else {
            return Ok(());
        };
        match value {
            Some(v) => {
                let (offset, metadata, commit_timestamp) = decode_value(v)?;
                self.set(
                    &group,
                    CommittedOffset {
                        topic,
                        partition,
                        offset,
                        metadata,
                        commit_timestamp,
                    },
                );
            }
            None => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.remove(&(topic, partition));
                    if g.is_empty() {
                        self.groups.remove(&group);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn set(&mut self, group: &str, c: CommittedOffset) {
        self.groups
            .entry(group.to_string())
            .or_default()
            .insert((c.topic.clone(), c.partition), c);
    }

    pub fn group(&self, group: &str) -> Vec<CommittedOffset> {
        self.groups
            .get(group)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn names(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Forgets commits for a deleted topic.
    pub fn remove_topic(&mut self, topic: &str) {
        for g in self.groups.values_mut() {
            g.retain(|(t, _), _| t != topic);
        }
        self.groups.retain(|_, g| !g.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        let k = encode_key("g1", "orders", 3);
        assert_eq!(
            decode_key(&k).unwrap(),
            Some(("g1".into(), "orders".into(), 3))
        );
        let v = encode_value(42, "meta", 1700);
        assert_eq!(decode_value(&v).unwrap(), (42, "meta".into(), 1700));
        assert!(decode_key(&[0]).is_err());
        assert!(decode_value(&[0, 3, 1]).is_err());
    }

    #[test]
    fn group_partition_matches_java_hash() {
        // "abc".hashCode() == 96354 in Java.
        assert_eq!(java_hash_code("abc"), 96354);
        assert_eq!(partition_for_group("abc"), 96354 % 50);
    }

    #[test]
    fn tombstone_removes_commit() {
        let mut g = GroupOffsets::default();
        g.apply_record(&encode_key("g", "t", 0), Some(&encode_value(5, "", 0)))
            .unwrap();
        assert_eq!(g.group("g")[0].offset, 5);
        g.apply_record(&encode_key("g", "t", 0), None).unwrap();
        assert!(g.names().is_empty());
    }
}
