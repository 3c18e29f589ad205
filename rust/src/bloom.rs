//! Bloom filters as SlateDB 0.17 writes them, and the composite filter block.
//!
//! Filter data: `u16 BE num_probes | bit array`.
//! - `num_probes = floor(bits_per_key * 0.69)`, computed in f32 (6 for 10 bits per key);
//! - the bit array has `ceil(n * bits_per_key / 8)` bytes for `n` added keys (a key added
//!   twice counts twice), `m = 8 * bytes` bits;
//! - `h = SipHash-1-3(key)` with both keys 0; probes by enhanced double hashing:
//!   `x = low32(h) % m`, `d = high32(h) % m`, then for `i in 0..probes`:
//!   `d = (d + i) % m`, test bit `x`, `x = (x + d) % m`;
//! - bit `x` is `byte[x / 8] & (1 << (x % 8))` (LSB first).
//!
//! Composite block (filter format 1): `u16 BE count | (u16 BE name_len | name | u64 BE
//! data_len | data)*`. The default policy's filter is named `_bf`.

use std::hash::Hasher;

use bytes::Bytes;
use siphasher::sip::SipHasher13;

use crate::error::{CoreError, CoreResult};
use crate::format::cursor::Cursor;

pub const DEFAULT_FILTER_NAME: &str = "_bf";

pub fn filter_hash(key: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0, 0);
    h.write(key);
    h.finish()
}

pub fn num_probes(bits_per_key: u32) -> u16 {
    (bits_per_key as f32 * 0.69) as u16
}

pub struct BloomFilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl BloomFilterBuilder {
    pub fn new(bits_per_key: u32) -> Self {
        BloomFilterBuilder { bits_per_key, hashes: Vec::new() }
    }

    pub fn add_key(&mut self, key: &[u8]) {
        self.hashes.push(filter_hash(key));
    }

    pub fn add_hash(&mut self, hash: u64) {
        self.hashes.push(hash);
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The encoded filter data (`num_probes | bits`).
    pub fn build(&self) -> Vec<u8> {
        let probes = num_probes(self.bits_per_key);
        let nbytes = (self.hashes.len() as u64 * u64::from(self.bits_per_key)).div_ceil(8) as usize;
        let mut out = Vec::with_capacity(2 + nbytes);
        out.extend_from_slice(&probes.to_be_bytes());
        out.resize(2 + nbytes, 0);
        let bits = &mut out[2..];
        let m = (nbytes as u64) * 8;
        if m > 0 {
            for &h in &self.hashes {
                for x in probe_positions(h, m, probes) {
                    bits[(x / 8) as usize] |= 1 << (x % 8);
                }
            }
        }
        out
    }
}

fn probe_positions(h: u64, m: u64, probes: u16) -> impl Iterator<Item = u64> {
    let mut x = (h & 0xffff_ffff) % m;
    let mut d = (h >> 32) % m;
    // `(d + i) % m` and `(x + d) % m` without a division per probe: x and d stay below m.
    (0..u64::from(probes)).map(move |i| {
        d += i;
        if d >= m {
            d %= m;
        }
        let at = x;
        x += d;
        if x >= m {
            x -= m;
        }
        at
    })
}

#[derive(Clone, Debug)]
pub struct BloomFilter {
    num_probes: u16,
    bits: Bytes,
}

impl BloomFilter {
    pub fn decode(data: &Bytes) -> CoreResult<Self> {
        if data.len() < 2 {
            return Err(CoreError::corrupt(0, "bloom filter shorter than its 2-byte header"));
        }
        Ok(BloomFilter { num_probes: u16::from_be_bytes([data[0], data[1]]), bits: data.slice(2..) })
    }

    pub fn num_probes(&self) -> u16 {
        self.num_probes
    }

    pub fn num_bits(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    pub fn might_contain_hash(&self, h: u64) -> bool {
        let m = self.num_bits();
        if m == 0 {
            return true;
        }
        // Every probe is loaded, none tested early: the loads (random places in a filter
        // bigger than the CPU cache) then wait for memory together, not one after another.
        probe_positions(h, m, self.num_probes).fold(1u8, |all, x| all & (self.bits[(x / 8) as usize] >> (x % 8))) & 1
            != 0
    }

    pub fn might_contain(&self, key: &[u8]) -> bool {
        self.might_contain_hash(filter_hash(key))
    }
}

pub fn encode_composite(filters: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(filters.len() as u16).to_be_bytes());
    for (name, data) in filters {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// The named filters of a composite filter block, data as zero-copy slices.
pub fn decode_composite(block: &Bytes) -> CoreResult<Vec<(String, Bytes)>> {
    let mut c = Cursor::new(block);
    let n = c.u16("filter count")?;
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let name_len = usize::from(c.u16("filter name length")?);
        let at = c.pos();
        let name = std::str::from_utf8(c.take(name_len, "filter name")?)
            .map_err(|_| CoreError::corrupt(at as u64, "filter name is not UTF-8"))?
            .to_owned();
        let data_len = c.u64("filter data length")?;
        let data_len = usize::try_from(data_len)
            .ok()
            .filter(|&l| l <= c.remaining())
            .ok_or_else(|| CoreError::corrupt(c.pos() as u64, format!("filter {name:?} claims {data_len} bytes")))?;
        let start = c.pos();
        c.take(data_len, "filter data")?;
        out.push((name, block.slice(start..start + data_len)));
    }
    if !c.is_empty() {
        return Err(CoreError::corrupt(c.pos() as u64, "bytes left over after the last filter"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The probes are SlateDB's, computed with a division per step as its filter does.
        #[test]
        fn probe_positions_are_the_plain_formula(h: u64, m in 1u64..(1 << 40), probes in 0u16..40) {
            let (mut x, mut d) = ((h & 0xffff_ffff) % m, (h >> 32) % m);
            let plain: Vec<u64> = (0..u64::from(probes))
                .map(|i| {
                    d = (d + i) % m;
                    let at = x;
                    x = (x + d) % m;
                    at
                })
                .collect();
            proptest::prop_assert_eq!(probe_positions(h, m, probes).collect::<Vec<_>>(), plain);
        }
    }

    #[test]
    fn probe_positions_in_a_tiny_filter() {
        for m in 1..20u64 {
            for h in [0, 1, u64::MAX, 0xdead_beef_0bad_f00d] {
                assert!(probe_positions(h, m, 30).all(|x| x < m));
            }
        }
    }

    #[test]
    fn probes_for_ten_bits() {
        assert_eq!(num_probes(10), 6);
    }

    #[test]
    fn no_false_negatives_and_sizes() {
        let mut b = BloomFilterBuilder::new(10);
        for i in 0..10_001u32 {
            b.add_key(format!("key{i}").as_bytes());
        }
        let data = b.build();
        // FORMAT.md 3.6: 10 001 keys -> 12 502 bit bytes + 2.
        assert_eq!(data.len(), 12_504);
        let f = BloomFilter::decode(&Bytes::from(data)).unwrap();
        for i in 0..10_001u32 {
            assert!(f.might_contain(format!("key{i}").as_bytes()));
        }
        let fp = (0..100_000u32).filter(|i| f.might_contain(format!("other{i}").as_bytes())).count();
        assert!(fp < 1500, "false positives {fp}");
    }

    #[test]
    fn composite_round_trip() {
        let block = Bytes::from(encode_composite(&[("_bf", b"\x00\x06abc"), ("x", b"")]));
        let parsed = decode_composite(&block).unwrap();
        assert_eq!(parsed[0].0, "_bf");
        assert_eq!(&parsed[0].1[..], b"\x00\x06abc");
        assert_eq!(parsed[1].1.len(), 0);
        for cut in 0..block.len() {
            assert!(decode_composite(&block.slice(..cut)).is_err());
        }
    }
}
