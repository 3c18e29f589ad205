//! Deterministic workloads: keys and values from a seeded generator, applied to a 0.18 `Db`
//! while a model records what every key should read back as.

use std::collections::BTreeMap;

use slatedb::config::{FlushOptions, FlushType, MergeOptions, PutOptions, Ttl, WriteOptions};
use slatedb::{Db, WriteBatch};

/// Ten years: long enough that no test goes stale, short enough to land in `expire_ts`.
pub const LONG_TTL_MS: u64 = 315_360_000_000;
/// 2100-01-01T00:00:00Z.
pub const EXPIRE_AT_MS: i64 = 4_102_444_800_000;

/// SplitMix64: tiny, fixed, and the same on every platform, so a rerun writes the same rows.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Keys of a few shapes: shared prefixes, printable, raw bytes.
pub fn key(rng: &mut Rng, i: usize) -> Vec<u8> {
    match rng.below(4) {
        0 => format!("user:{i:06}:{}", rng.below(1000)).into_bytes(),
        1 => format!("key-{i:08}").into_bytes(),
        2 => {
            let mut k = vec![0xff, 0xfe, 0xfd];
            k.extend(rng.bytes(9));
            k
        }
        _ => {
            let len = 12 + rng.below(8) as usize;
            rng.bytes(len)
        }
    }
}

/// Values: some empty, text-like (compressible) or random, up to `max` bytes.
pub fn value(rng: &mut Rng, max: usize) -> Vec<u8> {
    if rng.chance(8) {
        return Vec::new();
    }
    let len = 1 + rng.below(max as u64) as usize;
    if rng.chance(60) {
        let word = format!("value-{}-", rng.below(50));
        word.bytes().cycle().take(len).collect()
    } else {
        rng.bytes(len)
    }
}

/// What each key should read back as, and which keys carry an expiry.
#[derive(Default)]
pub struct Model {
    pub keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub ttl_keys: BTreeMap<Vec<u8>, ()>,
    pub ops: BTreeMap<&'static str, u64>,
}

impl Model {
    fn count(&mut self, op: &'static str) {
        *self.ops.entry(op).or_default() += 1;
    }

    pub fn live(&self) -> Vec<&Vec<u8>> {
        self.keys.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k).collect()
    }
}

/// 0.18 writes return at once (a handle awaits durability); explicit flushes cut the WAL.
fn no_wait() -> WriteOptions {
    WriteOptions::default()
}

/// Writes and model updates in one place, so the model cannot drift from the database.
pub struct Writer<'a> {
    pub db: &'a Db,
    pub model: &'a mut Model,
    pub rng: Rng,
}

impl Writer<'_> {
    pub async fn put(&mut self, k: &[u8], v: &[u8]) {
        let ttl = match self.rng.below(100) {
            0..=3 => Ttl::ExpireAfterMillis(LONG_TTL_MS),
            4..=5 => Ttl::ExpireAtMillis(EXPIRE_AT_MS),
            _ => Ttl::Default,
        };
        if ttl != Ttl::Default {
            self.model.ttl_keys.insert(k.to_vec(), ());
        }
        let opts = PutOptions { ttl };
        self.db.put_with_options(k, v, &opts, &no_wait()).await.expect("put");
        self.model.keys.insert(k.to_vec(), Some(v.to_vec()));
        self.model.count("put");
    }

    pub async fn delete(&mut self, k: &[u8]) {
        self.db.delete_with_options(k, &no_wait()).await.expect("delete");
        self.model.keys.insert(k.to_vec(), None);
        self.model.count("delete");
    }

    /// A merge with the concatenation operator (`merge::Concat`).
    pub async fn merge(&mut self, k: &[u8], operand: &[u8]) {
        self.db.merge_with_options(k, operand, &MergeOptions::default(), &no_wait()).await.expect("merge");
        let entry = self.model.keys.entry(k.to_vec()).or_insert(None);
        let mut v = entry.take().unwrap_or_default();
        v.extend_from_slice(operand);
        *entry = Some(v);
        self.model.count("merge");
    }

    /// A batch of puts and deletes on distinct keys, plus one key written twice (the batch
    /// keeps the last write).
    pub async fn batch(&mut self, puts: &[(Vec<u8>, Vec<u8>)], deletes: &[Vec<u8>]) {
        let mut b = WriteBatch::new();
        for (k, v) in puts {
            b.put(k, v);
        }
        for k in deletes {
            b.delete(k);
        }
        self.db.write_with_options(b, &no_wait()).await.expect("batch");
        for (k, v) in puts {
            self.model.keys.insert(k.clone(), Some(v.clone()));
        }
        for k in deletes {
            self.model.keys.insert(k.clone(), None);
        }
        self.model.count("batch");
    }

    pub async fn flush_wal(&self) {
        self.db.flush_with_options(FlushOptions { flush_type: FlushType::Wal }).await.expect("flush wal");
    }

    pub async fn flush_memtable(&self) {
        self.db.flush_with_options(FlushOptions { flush_type: FlushType::MemTable }).await.expect("flush memtable");
    }

    /// The usual ending: `l0` fresh keys flushed to an L0 SST, then `tail` more left in the WAL.
    pub async fn l0_then_tail(&mut self, l0: usize, tail: usize, max: usize) {
        self.fresh(l0, max).await;
        self.flush_memtable().await;
        self.fresh(tail, max).await;
        self.flush_wal().await;
    }

    /// `n` fresh keys with values up to `max` bytes; returns them.
    pub async fn fresh(&mut self, n: usize, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let i = self.model.keys.len();
            let k = key(&mut self.rng, i);
            if self.model.keys.contains_key(&k) {
                continue;
            }
            let v = value(&mut self.rng, max);
            self.put(&k, &v).await;
            out.push(k);
        }
        out
    }

    /// Overwrites, deletes and resurrections over keys written so far.
    pub async fn churn(&mut self, overwrites: usize, deletes: usize, max: usize) {
        let keys: Vec<Vec<u8>> = self.model.keys.keys().cloned().collect();
        for _ in 0..overwrites {
            let k = keys[self.rng.below(keys.len() as u64) as usize].clone();
            let v = value(&mut self.rng, max);
            self.put(&k, &v).await;
        }
        for _ in 0..deletes {
            let k = keys[self.rng.below(keys.len() as u64) as usize].clone();
            self.delete(&k).await;
        }
        // Deletes of keys never written are rows too.
        for i in 0..3 {
            let k = format!("never-written-{i}-{}", self.rng.below(1_000_000)).into_bytes();
            if !self.model.keys.contains_key(&k) {
                self.delete(&k).await;
            }
        }
        let puts: Vec<(Vec<u8>, Vec<u8>)> = (0..4)
            .map(|_| (keys[self.rng.below(keys.len() as u64) as usize].clone(), value(&mut self.rng, max)))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let dels: Vec<Vec<u8>> = (0..2)
            .map(|_| keys[self.rng.below(keys.len() as u64) as usize].clone())
            .filter(|k| !puts.iter().any(|(p, _)| p == k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.batch(&puts, &dels).await;
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}
