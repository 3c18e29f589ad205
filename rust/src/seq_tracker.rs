//! SlateDB's sequence tracker (RFC-0012; `slatedb/src/seq_tracker.rs` in 0.17.0): the
//! manifest's map between sequence numbers and wall-clock seconds, which answers
//! `Admin.get_sequence_for_timestamp` / `get_timestamp_for_sequence`.
//!
//! ## Format (version 1, the one 0.17.0 writes)
//!
//! ```text
//! u8  version = 1
//! u32 little-endian count N
//! Gorilla(seq[])   32-bit count, then (N > 0) the first value as 64 raw bits, then one
//! Gorilla(ts_s[])  delta-of-delta per further value; each stream padded to a byte
//! ```
//!
//! Bits are MSB-first within each byte. A delta-of-delta `d` is `0` for 0, `10`+7 bits for
//! |d| <= 63, `110`+9 bits for <= 255, `1110`+12 bits for <= 2047, else `1111`+32 bits, two's
//! complement and sign-extended on read. The 32-bit slot keeps only the low 32 bits of `d`:
//! 0.17.0 writes it that way, so a delta-of-delta outside the i32 range (a seq jump of 2^31
//! between points a minute apart) does not survive, here as there.
//!
//! Arithmetic wraps, as 0.17.0's release build does, so no input can make the decoder
//! panic; trailing bytes after the timestamp stream are ignored, as 0.17.0 ignores them.

use crate::error::{CoreError, CoreResult};

/// The format version written (and the only one 0.17.0 reads).
pub const VERSION: u8 = 1;
/// Points kept before the tracker halves itself.
pub const CAPACITY: usize = 8192;
/// A point is recorded at most once per this many seconds.
pub const INTERVAL_SECS: i64 = 60;

/// Sequence numbers and their Unix-second timestamps, both non-decreasing, at most
/// `capacity` points. Equal when their points are (what the blob holds).
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    seqs: Vec<u64>,
    times: Vec<i64>,
    capacity: usize,
    interval_secs: i64,
    // What the 60 s granularity counts from: the last point accepted, or after a decode the
    // last point stored (0.17.0 drops a point a reopened writer flushes within a minute of
    // the stored last one: observed with the official 0.17.0 wheel).
    last_recorded: Option<i64>,
}

impl PartialEq for SequenceTracker {
    fn eq(&self, other: &Self) -> bool {
        self.seqs == other.seqs && self.times == other.times
    }
}

impl Eq for SequenceTracker {}

impl Default for SequenceTracker {
    fn default() -> Self {
        Self::with_config(CAPACITY, INTERVAL_SECS)
    }
}

impl SequenceTracker {
    /// An empty tracker with another capacity or interval (tests; the format does not store
    /// either, so a decoded tracker always has the defaults).
    pub fn with_config(capacity: usize, interval_secs: i64) -> Self {
        Self { seqs: Vec::new(), times: Vec::new(), capacity: capacity.max(1), interval_secs, last_recorded: None }
    }

    pub fn seqs(&self) -> &[u64] {
        &self.seqs
    }

    pub fn times(&self) -> &[i64] {
        &self.times
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    pub fn last_recorded(&self) -> Option<i64> {
        self.last_recorded
    }

    /// 0.17.0's `SequenceTracker::insert`: a point less than `interval_secs` after the last
    /// one accepted is dropped; past `capacity` points every other one is dropped (keeping
    /// the first). A point that would go backwards in seq or time is dropped too, and `false`
    /// returned: 0.17.0 asserts (panics) there, which a writer must not do.
    pub fn insert(&mut self, seq: u64, ts: i64) -> bool {
        if let Some(last) = self.last_recorded {
            if ts.wrapping_sub(last) < self.interval_secs {
                return false;
            }
        }
        if self.seqs.last().is_some_and(|&s| seq < s) || self.times.last().is_some_and(|&t| ts < t) {
            return false;
        }
        self.seqs.push(seq);
        self.times.push(ts);
        self.last_recorded = Some(ts);
        if self.seqs.len() > self.capacity {
            self.downsample();
        }
        true
    }

    /// 0.17.0's `extend_from`: every point of `points`, in order, through `insert`.
    pub fn extend_from(&mut self, points: &[(u64, i64)]) {
        for &(seq, ts) in points {
            self.insert(seq, ts);
        }
    }

    fn downsample(&mut self) {
        self.seqs = self.seqs.iter().copied().step_by(2).collect();
        self.times = self.times.iter().copied().step_by(2).collect();
    }

    /// 0.17.0's `find_seq`: the seq recorded at `ts`; otherwise, with `round_up`, the one of
    /// the first point after `ts` (None after the last point), else the one of the last point
    /// before `ts` (None before the first). An empty tracker answers None.
    pub fn find_seq(&self, ts: i64, round_up: bool) -> Option<u64> {
        // The same `binary_search` as 0.17.0: with equal timestamps, the same point answers.
        match self.times.binary_search(&ts) {
            Ok(i) => Some(self.seqs[i]),
            Err(i) if round_up => self.seqs.get(i).copied(),
            Err(i) => i.checked_sub(1).map(|i| self.seqs[i]),
        }
    }

    /// 0.17.0's `find_ts`: the time (Unix seconds) recorded for `seq`, rounded as `find_seq`.
    pub fn find_ts(&self, seq: u64, round_up: bool) -> Option<i64> {
        match self.seqs.binary_search(&seq) {
            Ok(i) => Some(self.times[i]),
            Err(i) if round_up => self.times.get(i).copied(),
            Err(i) => i.checked_sub(1).map(|i| self.times[i]),
        }
    }

    /// The blob 0.17.0 writes for these points.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&(self.seqs.len() as u32).to_le_bytes());
        let seqs: Vec<i64> = self.seqs.iter().map(|&s| s as i64).collect();
        encode_gorilla(&seqs, &mut out);
        encode_gorilla(&self.times, &mut out);
        out
    }

    /// Reads a blob; errors name the byte offset (within the blob) where decoding stopped.
    pub fn decode(buf: &[u8]) -> CoreResult<Self> {
        let Some(&version) = buf.first() else {
            return Err(CoreError::corrupt(0, "empty sequence tracker"));
        };
        if version != VERSION {
            return Err(CoreError::UnsupportedVersion {
                offset: 0,
                what: "sequence tracker",
                version: u32::from(version),
                supported: "1",
            });
        }
        let count_bytes: [u8; 4] = buf
            .get(1..5)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| CoreError::corrupt(1, "sequence tracker too short for its point count"))?;
        let count = u32::from_le_bytes(count_bytes) as usize;
        let (seqs, used) = decode_gorilla(buf, 5, "sequence numbers")?;
        if seqs.len() != count {
            return Err(CoreError::corrupt(
                5,
                format!("expected {count} sequence numbers, the stream holds {}", seqs.len()),
            ));
        }
        let ts_start = 5 + used;
        let (times, _) = decode_gorilla(buf, ts_start, "timestamps")?;
        if times.len() != count {
            return Err(CoreError::corrupt(
                ts_start as u64,
                format!("expected {count} timestamps, the stream holds {}", times.len()),
            ));
        }
        let last_recorded = times.last().copied();
        Ok(Self { seqs: seqs.into_iter().map(|v| v as u64).collect(), times, last_recorded, ..Self::default() })
    }
}

struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    cur: u8,
    n: u8,
}

impl BitWriter<'_> {
    fn push(&mut self, value: u64, bits: u8) {
        for i in (0..bits).rev() {
            if (value >> i) & 1 == 1 {
                self.cur |= 1 << (7 - self.n);
            }
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.cur);
                self.cur = 0;
                self.n = 0;
            }
        }
    }

    fn finish(self) {
        if self.n > 0 {
            self.out.push(self.cur);
        }
    }
}

fn encode_gorilla(values: &[i64], out: &mut Vec<u8>) {
    let mut w = BitWriter { out, cur: 0, n: 0 };
    w.push(values.len() as u64, 32);
    if let Some((&first, rest)) = values.split_first() {
        w.push(first as u64, 64);
        let (mut prev, mut prev_delta) = (first, 0i64);
        for &v in rest {
            let delta = v.wrapping_sub(prev);
            let dod = delta.wrapping_sub(prev_delta);
            match dod {
                0 => w.push(0, 1),
                -63..=63 => w.push((0b10 << 7) | (dod as u64 & 0x7F), 9),
                -255..=255 => w.push((0b110 << 9) | (dod as u64 & 0x1FF), 12),
                -2047..=2047 => w.push((0b1110 << 12) | (dod as u64 & 0xFFF), 16),
                // The low 32 bits only: 0.17.0's fallback slot (see the module docs).
                _ => w.push((0b1111 << 32) | (dod as u64 & 0xFFFF_FFFF), 36),
            }
            prev = v;
            prev_delta = delta;
        }
    }
    w.finish();
}

struct BitReader<'a> {
    buf: &'a [u8],
    bit: usize, // absolute bit position in `buf`
    what: &'static str,
}

impl BitReader<'_> {
    fn read(&mut self, bits: u8) -> CoreResult<u64> {
        let end = self.bit + usize::from(bits);
        if end > self.buf.len() * 8 {
            return Err(CoreError::corrupt(
                (self.bit / 8) as u64,
                format!("sequence tracker {} end inside a {bits}-bit field", self.what),
            ));
        }
        let mut v = 0u64;
        for i in self.bit..end {
            v = (v << 1) | u64::from((self.buf[i / 8] >> (7 - i % 8)) & 1);
        }
        self.bit = end;
        Ok(v)
    }
}

fn sign_extend(raw: u64, bits: u8) -> i64 {
    let shift = 64 - u32::from(bits);
    ((raw << shift) as i64) >> shift
}

/// Decodes the stream starting at byte `start`; returns its values and the bytes it takes
/// (padding included).
fn decode_gorilla(buf: &[u8], start: usize, what: &'static str) -> CoreResult<(Vec<i64>, usize)> {
    let mut r = BitReader { buf, bit: start * 8, what };
    let mut remaining = r.read(32)?;
    let mut values = Vec::new();
    if remaining > 0 {
        let first = r.read(64)? as i64;
        values.push(first);
        remaining -= 1;
        let (mut prev, mut prev_delta) = (first, 0i64);
        while remaining > 0 {
            let mut ones = 0u8;
            while ones < 4 && r.read(1)? == 1 {
                ones += 1;
            }
            let dod = match ones {
                0 => 0,
                1 => sign_extend(r.read(7)?, 7),
                2 => sign_extend(r.read(9)?, 9),
                3 => sign_extend(r.read(12)?, 12),
                _ => sign_extend(r.read(32)?, 32),
            };
            prev_delta = prev_delta.wrapping_add(dod);
            prev = prev.wrapping_add(prev_delta);
            values.push(prev);
            remaining -= 1;
        }
    }
    Ok((values, r.bit.div_ceil(8) - start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: [u8; 13] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    fn tracker(points: &[(u64, i64)]) -> SequenceTracker {
        let mut t = SequenceTracker::with_config(CAPACITY, 0);
        t.extend_from(points);
        assert_eq!(t.len(), points.len());
        t
    }

    #[test]
    fn empty_tracker_is_thirteen_bytes() {
        assert_eq!(SequenceTracker::default().encode(), EMPTY);
        assert!(SequenceTracker::decode(&EMPTY).expect("decodes").is_empty());
    }

    #[test]
    fn known_bytes() {
        // Two points 60 s apart, seq +5: after the header, each stream is its 32-bit count,
        // the first value in 64 bits and one `10`+7-bit delta-of-delta (5, then 60).
        let t = tracker(&[(7, 1_700_000_000), (12, 1_700_000_060)]);
        let b = t.encode();
        assert_eq!(&b[..5], &[1, 2, 0, 0, 0]);
        assert_eq!(&b[5..9], &[0, 0, 0, 2]);
        assert_eq!(&b[9..17], &7u64.to_be_bytes());
        assert_eq!(b[17..19], [0b1000_0010, 0b1000_0000]); // `10` 0000101, padded
        assert_eq!(SequenceTracker::decode(&b).expect("decodes"), t);
    }

    #[test]
    fn granularity_monotonicity_and_downsampling() {
        let mut t = SequenceTracker::default();
        assert!(t.insert(100, 1000));
        assert!(!t.insert(200, 1059)); // under a minute later
        assert!(t.insert(300, 1060));
        assert!(!t.insert(299, 1200)); // seq backwards
        assert!(!t.insert(400, 1000)); // time backwards: dropped, not a panic
        assert_eq!(t.seqs(), [100, 300]);
        // A decoded tracker counts the minute from its last stored point.
        let mut d = SequenceTracker::decode(&t.encode()).expect("decodes");
        assert!(!d.insert(301, 1119));
        assert!(d.insert(301, 1120));

        let mut small = SequenceTracker::with_config(4, 1);
        for i in 0..6 {
            small.insert(i * 100, i as i64 * 1000);
        }
        // The fifth point halves [0..400] to [0, 200, 400]; the sixth is appended.
        assert_eq!(small.seqs(), [0, 200, 400, 500]);
        assert_eq!(small.times(), [0, 2000, 4000, 5000]);
    }

    #[test]
    fn lookups_round_as_0_17_0() {
        let t = tracker(&[(100, 1000), (200, 2000), (300, 3000)]);
        assert_eq!(t.find_seq(2000, false), Some(200));
        assert_eq!(t.find_seq(2500, false), Some(200));
        assert_eq!(t.find_seq(2500, true), Some(300));
        assert_eq!(t.find_seq(999, false), None);
        assert_eq!(t.find_seq(999, true), Some(100));
        assert_eq!(t.find_seq(3001, false), Some(300));
        assert_eq!(t.find_seq(3001, true), None);
        assert_eq!(t.find_ts(150, false), Some(1000));
        assert_eq!(t.find_ts(150, true), Some(2000));
        assert_eq!(t.find_ts(50, false), None);
        assert_eq!(t.find_ts(301, true), None);
        assert_eq!(SequenceTracker::default().find_seq(1, true), None);
    }

    #[test]
    fn bad_input_names_its_offset() {
        assert!(matches!(SequenceTracker::decode(&[]), Err(CoreError::Corrupt { offset: 0, .. })));
        assert!(matches!(SequenceTracker::decode(&[2]), Err(CoreError::UnsupportedVersion { offset: 0, .. })));
        assert!(matches!(SequenceTracker::decode(&[1, 0, 0]), Err(CoreError::Corrupt { offset: 1, .. })));
        let mut b = tracker(&[(1, 10), (2, 20)]).encode();
        b.truncate(b.len() - 3);
        assert!(matches!(SequenceTracker::decode(&b), Err(CoreError::Corrupt { .. })));
        let mut c = EMPTY;
        c[1] = 1; // header says one point, the streams hold none
        assert!(matches!(SequenceTracker::decode(&c), Err(CoreError::Corrupt { offset: 5, .. })));
    }

    fn points() -> impl Strategy<Value = Vec<(u64, i64)>> {
        // Increasing points whose delta-of-deltas fit the 32-bit slot (as real ones do).
        (any::<u32>(), 0i64..2_000_000_000, prop::collection::vec((0u64..1 << 30, 0i64..1 << 29), 0..200)).prop_map(
            |(s0, t0, steps)| {
                let (mut s, mut t) = (u64::from(s0), t0);
                let mut out = vec![(s, t)];
                for (ds, dt) in steps {
                    s += ds;
                    t += dt;
                    out.push((s, t));
                }
                out
            },
        )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(p in points()) {
            let t = tracker(&p);
            let bytes = t.encode();
            let back = SequenceTracker::decode(&bytes).expect("decodes");
            prop_assert_eq!(&back, &t);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(mut b in prop::collection::vec(any::<u8>(), 0..96), v1: bool) {
            if v1 && !b.is_empty() {
                b[0] = 1;
            }
            match SequenceTracker::decode(&b) {
                // Whatever decodes re-encodes to a blob that decodes to the same points.
                Ok(t) => prop_assert_eq!(SequenceTracker::decode(&t.encode()).expect("decodes"), t),
                Err(CoreError::Corrupt { offset, .. }) => prop_assert!(offset <= b.len() as u64),
                Err(CoreError::UnsupportedVersion { offset: 0, .. }) => prop_assert!(b[0] != 1),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        #[test]
        fn decoding_mutated_blobs_never_panics(p in points(), at in any::<prop::sample::Index>(), byte: u8, cut in any::<prop::sample::Index>()) {
            let mut b = tracker(&p).encode();
            let i = at.index(b.len());
            b[i] = byte;
            b.truncate(cut.index(b.len() + 1).max(1));
            let _ = SequenceTracker::decode(&b);
        }
    }
}
