//! Block compression and checksums.
//!
//! Every block, filter, index and stats section is stored as `payload | u32 BE CRC-32(payload)`
//! where `payload = compress(raw)`. CRC-32 is the IEEE/zlib polynomial. Codecs, framed as
//! SlateDB 0.17 frames them:
//! - Snappy: raw snappy block (varint length prefix, no framing format);
//! - Zlib: a zlib stream (RFC 1950), default level;
//! - Lz4: an LZ4 block with a 4-byte little-endian uncompressed-size prefix;
//! - Zstd: a standard zstd frame, level 3.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};

/// No single decompressed section may claim more than this: a corrupt length prefix must not
/// turn into a giant allocation.
const MAX_DECOMPRESSED: usize = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Snappy,
    Zlib,
    Lz4,
    Zstd,
}

impl Compression {
    /// The `CompressionFormat` enum value stored in `SsTableInfo`.
    pub fn to_u8(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Snappy => 1,
            Compression::Zlib => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Compression::None,
            1 => Compression::Snappy,
            2 => Compression::Zlib,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Snappy => Some("snappy"),
            Compression::Zlib => Some("zlib"),
            Compression::Lz4 => Some("lz4"),
            Compression::Zstd => Some("zstd"),
        }
    }

    pub fn from_name(name: Option<&str>) -> CoreResult<Self> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None | Some("none") => Ok(Compression::None),
            Some("snappy") => Ok(Compression::Snappy),
            Some("zlib") => Ok(Compression::Zlib),
            Some("lz4") => Ok(Compression::Lz4),
            Some("zstd") => Ok(Compression::Zstd),
            Some(other) => Err(CoreError::invalid(format!(
                "compression must be None, 'snappy', 'zlib', 'lz4' or 'zstd', not {other:?}"
            ))),
        }
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub fn compress(codec: Compression, raw: &[u8]) -> CoreResult<Vec<u8>> {
    let io = |e: std::io::Error| CoreError::invalid(format!("compression failed: {e}"));
    match codec {
        Compression::None => Ok(raw.to_vec()),
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(raw)
            .map_err(|e| CoreError::invalid(format!("snappy compression failed: {e}"))),
        Compression::Zlib => {
            let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(raw).map_err(io)?;
            enc.finish().map_err(io)
        }
        Compression::Lz4 => Ok(lz4_flex::block::compress_prepend_size(raw)),
        Compression::Zstd => zstd::bulk::compress(raw, 3).map_err(io),
    }
}

fn read_capped(mut reader: impl Read, what: &str) -> CoreResult<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .by_ref()
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| CoreError::corrupt(0, format!("{what} decompression failed: {e}")))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(CoreError::corrupt(0, format!("{what} section decompresses past 1 GiB")));
    }
    Ok(out)
}

/// Decompresses one section. Errors carry offset 0: the caller re-anchors them.
pub fn decompress(codec: Compression, payload: Bytes) -> CoreResult<Bytes> {
    match codec {
        Compression::None => Ok(payload),
        Compression::Snappy => {
            let len = snap::raw::decompress_len(&payload)
                .map_err(|e| CoreError::corrupt(0, format!("snappy header: {e}")))?;
            // Snappy expands at most ~21x; a bigger claim is a corrupt header.
            if len > payload.len().saturating_mul(32).saturating_add(64) || len > MAX_DECOMPRESSED {
                return Err(CoreError::corrupt(
                    0,
                    format!("snappy claims {len} bytes from {} compressed", payload.len()),
                ));
            }
            snap::raw::Decoder::new()
                .decompress_vec(&payload)
                .map(Bytes::from)
                .map_err(|e| CoreError::corrupt(0, format!("snappy decompression failed: {e}")))
        }
        Compression::Zlib => read_capped(flate2::read::ZlibDecoder::new(&payload[..]), "zlib").map(Bytes::from),
        Compression::Lz4 => {
            if payload.len() < 4 {
                return Err(CoreError::corrupt(0, "lz4 section shorter than its size prefix"));
            }
            let len = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
            // LZ4 expands at most ~255x.
            if len > payload.len().saturating_mul(256).saturating_add(64) || len > MAX_DECOMPRESSED {
                return Err(CoreError::corrupt(0, format!("lz4 claims {len} bytes from {} compressed", payload.len())));
            }
            lz4_flex::block::decompress_size_prepended(&payload)
                .map(Bytes::from)
                .map_err(|e| CoreError::corrupt(0, format!("lz4 decompression failed: {e}")))
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::new(&payload[..])
                .map_err(|e| CoreError::corrupt(0, format!("zstd: {e}")))?;
            read_capped(dec, "zstd").map(Bytes::from)
        }
    }
}

/// Appends `compress(raw) | crc` to `out`; returns the section length (CRC included).
pub fn write_section(out: &mut Vec<u8>, codec: Compression, raw: &[u8]) -> CoreResult<u64> {
    let start = out.len();
    match codec {
        Compression::None => out.extend_from_slice(raw),
        other => out.extend_from_slice(&compress(other, raw)?),
    }
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok((out.len() - start) as u64)
}

/// Checks the CRC of the section `file[offset..offset+len]` and returns its decompressed
/// payload. Errors name the section and its file offset.
pub fn read_section(file: &Bytes, offset: u64, len: u64, codec: Compression, what: &'static str) -> CoreResult<Bytes> {
    let end = offset.checked_add(len).filter(|&e| e <= file.len() as u64);
    let Some(end) = end else {
        return Err(CoreError::corrupt(
            offset,
            format!("{what} [{offset}, +{len}) lies outside the {}-byte file", file.len()),
        ));
    };
    if len < 4 {
        return Err(CoreError::corrupt(offset, format!("{what} of {len} bytes has no checksum")));
    }
    let (start, end) = (offset as usize, end as usize);
    let payload = file.slice(start..end - 4);
    let stored = u32::from_be_bytes([file[end - 4], file[end - 3], file[end - 2], file[end - 1]]);
    let computed = crc32(&payload);
    if stored != computed {
        return Err(CoreError::Checksum { offset, what, stored, computed });
    }
    decompress(codec, payload).map_err(|e| e.within(offset, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Snappy, Compression::Zlib, Compression::Lz4, Compression::Zstd];

    #[test]
    fn sections_round_trip_for_every_codec() {
        let raw: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in ALL {
            let mut file = vec![7u8; 3];
            let len = write_section(&mut file, codec, &raw).unwrap();
            let file = Bytes::from(file);
            let back = read_section(&file, 3, len, codec, "test section").unwrap();
            assert_eq!(&back[..], &raw[..], "{codec:?}");
            assert_eq!(Compression::from_u8(codec.to_u8()), Some(codec));
            assert_eq!(Compression::from_name(codec.name()).unwrap(), codec);
        }
    }

    #[test]
    fn crc_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn flipped_bytes_fail_the_checksum() {
        let mut file = Vec::new();
        let len = write_section(&mut file, Compression::Zstd, b"hello hello hello").unwrap();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            let err = read_section(&Bytes::from(bad), 0, len, Compression::Zstd, "x").unwrap_err();
            assert!(matches!(err, CoreError::Checksum { .. }));
        }
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        let junk = Bytes::from_static(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5]);
        for codec in ALL[1..].iter().copied() {
            assert!(decompress(codec, junk.clone()).is_err(), "{codec:?}");
        }
    }
}
