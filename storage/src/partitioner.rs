//! Kafka's default partitioner, so a keyed record lands in the same partition as on Apache
//! Kafka: `toPositive(murmur2(key)) % partitions` (BuiltInPartitioner.partitionForKey), where
//! `toPositive(n) = n & 0x7fffffff` (not `abs`). Records without a key are spread by a sticky
//! round-robin chooser: one partition per batch, the next one for the next batch.

use std::sync::atomic::{AtomicU32, Ordering};

/// murmur2 as in Kafka's `Utils.murmur2` (32-bit wrapping arithmetic, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for a non-null key.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions.max(1)
}

/// Chooses partitions for records without a key: sticky per batch, round-robin across batches.
#[derive(Debug, Default)]
pub struct StickyPartitioner {
    next: AtomicU32,
}

impl StickyPartitioner {
    /// The partition for the next batch of unkeyed records.
    pub fn next_partition(&self, partitions: u32) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed) % partitions.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's UtilsTest.testMurmur2 vectors.
    #[test]
    fn matches_kafka_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn positive_modulo_not_abs() {
        // murmur2("21") is negative: & 0x7fffffff differs from abs().
        let h = murmur2(b"21");
        assert!(h < 0);
        assert_eq!(partition_for_key(b"21", 7), ((h & 0x7fff_ffff) as u32) % 7);
        assert_ne!((h & 0x7fff_ffff) as u32, h.unsigned_abs());
    }

    #[test]
    fn sticky_round_robin_cycles() {
        let p = StickyPartitioner::default();
        let seen: Vec<u32> = (0..6).map(|_| p.next_partition(3)).collect();
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
    }
}
