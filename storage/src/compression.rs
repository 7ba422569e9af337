//! The record-batch compression codecs Kafka clients send: gzip, snappy (raw, or the xerial
//! framing the Java client writes), lz4 (frame format) and zstd. Only the records section of
//! a batch is compressed; the 61-byte header never is.

use std::io::{Read, Write};

use crate::error::{Result, StorageError};

/// Compression codec, as stored in bits 0-2 of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Result<Self> {
        Ok(match attributes & 0x7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => {
                return Err(StorageError::corrupted(format!(
                    "unknown compression codec {other}"
                )));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "none" | "uncompressed" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => return Err(format!("unknown compression '{other}'")),
        })
    }
}

/// Upper bound on what one batch may decompress to: a corrupt or hostile batch must not make
/// us allocate without limit.
const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| {
        StorageError::corrupted(format!("{} decompression failed: {e}", codec.name()))
    };
    let mut out = Vec::with_capacity(data.len() * 4);
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(data)
                .take(MAX_DECOMPRESSED)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        Compression::Snappy => {
            if data.starts_with(XERIAL_MAGIC) {
                out = decompress_xerial(data)?;
            } else {
                out = snappy_raw(data)?;
            }
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(data)
                .take(MAX_DECOMPRESSED)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .map_err(err)?
                .take(MAX_DECOMPRESSED)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
    }
    Ok(out)
}

fn snappy_raw(data: &[u8]) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(data)
        .map_err(|e| StorageError::corrupted(format!("snappy: {e}")))?;
    if len as u64 > MAX_DECOMPRESSED {
        return Err(StorageError::corrupted("snappy block too large"));
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| StorageError::corrupted(format!("snappy: {e}")))
}

/// xerial snappy-java framing: 8-byte magic, 4-byte version, 4-byte compatible version,
/// then chunks of (4-byte big-endian length, raw snappy block).
fn decompress_xerial(data: &[u8]) -> Result<Vec<u8>> {
    let mut pos = 16;
    let mut out = Vec::new();
    if data.len() < pos {
        return Err(StorageError::corrupted("xerial snappy header truncated"));
    }
    while pos < data.len() {
        let len_bytes = data
            .get(pos..pos + 4)
            .ok_or_else(|| StorageError::corrupted("xerial snappy chunk length truncated"))?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        pos += 4;
        let chunk = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| StorageError::corrupted("xerial snappy chunk truncated"))?;
        out.extend_from_slice(&snappy_raw(chunk)?);
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(StorageError::corrupted("snappy data too large"));
        }
        pos += len;
    }
    Ok(out)
}

pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| {
        StorageError::corrupted(format!("{} compression failed: {e}", codec.name()))
    };
    Ok(match codec {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).map_err(err)?;
            enc.finish().map_err(err)?
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(|e| StorageError::corrupted(format!("snappy: {e}")))?,
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).map_err(err)?;
            enc.finish()
                .map_err(|e| StorageError::corrupted(format!("lz4: {e}")))?
        }
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(err)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(c, &data).unwrap();
            assert_eq!(decompress(c, &packed).unwrap(), data, "{c:?}");
        }
    }

    #[test]
    fn xerial_framed_snappy_is_read() {
        let data = b"hello hello hello hello snappy".to_vec();
        let block = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
        framed.extend_from_slice(&block);
        assert_eq!(decompress(Compression::Snappy, &framed).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                decompress(c, b"\x82SNAPPY\x00garbage-garbage").is_err() || c == Compression::None
            );
            assert!(decompress(c, &[0xff; 64]).is_err(), "{c:?}");
        }
    }
}
