//! The memtable: rows held in memory in (key ascending, seq descending) order, plus the rows
//! written since the last WAL upload.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::format::row::{Row, RowKind};

/// Per-row bookkeeping counted into `size_bytes`, on top of key and value bytes.
const ROW_OVERHEAD: usize = 48;

#[derive(Default)]
pub struct Memtable {
    map: BTreeMap<(Bytes, Reverse<u64>), Row>,
    size: usize,
    wal: Vec<Row>,
    wal_size: usize,
    min_seq: Option<u64>,
    max_seq: Option<u64>,
    max_create_ts: Option<i64>,
}

impl Memtable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row; `log` also queues it for the next WAL upload.
    pub fn insert(&mut self, row: Row, log: bool) {
        let cost = row.key.len() + row.value.len() + ROW_OVERHEAD;
        self.min_seq = Some(self.min_seq.map_or(row.seq, |s| s.min(row.seq)));
        self.max_seq = Some(self.max_seq.map_or(row.seq, |s| s.max(row.seq)));
        if let Some(ts) = row.create_ts {
            self.max_create_ts = Some(self.max_create_ts.map_or(ts, |t| t.max(ts)));
        }
        if log {
            self.wal_size += cost;
            self.wal.push(row.clone());
        }
        if let Some(old) = self.map.insert((row.key.clone(), Reverse(row.seq)), row) {
            self.size -= old.key.len() + old.value.len() + ROW_OVERHEAD;
        }
        self.size += cost;
    }

    /// The newest version of `key` with `seq <= snapshot_seq`.
    pub fn get(&self, key: &[u8], snapshot_seq: u64) -> Option<&Row> {
        let from = (Bytes::copy_from_slice(key), Reverse(snapshot_seq));
        self.map
            .range((Bound::Included(from), Bound::Unbounded))
            .next()
            .map(|(_, r)| r)
            .filter(|r| r.key.as_ref() == key)
    }

    /// Every version of every key in `[start, end)` (None = unbounded), in merge order.
    pub fn range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Vec<Row> {
        let lo = match start {
            Some(s) => Bound::Included((Bytes::copy_from_slice(s), Reverse(u64::MAX))),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for (_, r) in self.map.range((lo, Bound::Unbounded)) {
            if end.is_some_and(|e| r.key.as_ref() >= e) {
                break;
            }
            out.push(r.clone());
        }
        out
    }

    /// Up to `n` rows with `seq <= snapshot` in merge order (reversed when `reverse`), within
    /// `[start, end)`, strictly after `after` (the last row returned before, in that order):
    /// how an iterator walks a memtable a chunk at a time without holding its lock.
    pub fn chunk(
        &self,
        after: Option<&(Bytes, u64)>,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        snapshot: u64,
        reverse: bool,
        n: usize,
    ) -> Vec<Row> {
        let pos = |k: &Bytes, s: u64| (k.clone(), Reverse(s));
        let mut out = Vec::with_capacity(n.min(self.map.len()));
        let keep = |r: &Row| r.seq <= snapshot;
        if !reverse {
            let lo = match (after, start) {
                (Some((k, s)), _) => Bound::Excluded(pos(k, *s)),
                (None, Some(s)) => Bound::Included((Bytes::copy_from_slice(s), Reverse(u64::MAX))),
                (None, None) => Bound::Unbounded,
            };
            for (_, r) in self.map.range((lo, Bound::Unbounded)) {
                if end.is_some_and(|e| r.key.as_ref() >= e) || out.len() >= n {
                    break;
                }
                if keep(r) {
                    out.push(r.clone());
                }
            }
        } else {
            let hi = match (after, end) {
                (Some((k, s)), _) => Bound::Excluded(pos(k, *s)),
                (None, Some(e)) => Bound::Excluded((Bytes::copy_from_slice(e), Reverse(u64::MAX))),
                (None, None) => Bound::Unbounded,
            };
            for (_, r) in self.map.range((Bound::Unbounded, hi)).rev() {
                if start.is_some_and(|s| r.key.as_ref() < s) || out.len() >= n {
                    break;
                }
                if keep(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// The rows an L0 SST needs: per key, versions from the newest down to and including the
    /// first one that is not a merge operand (older versions can never be read again). A row
    /// expired at `now` is written as a tombstone, as SlateDB does, so that every reader
    /// (0.17.0 included, which would still return it) sees it gone.
    pub fn flush_rows(&self, now: Option<i64>) -> Vec<Row> {
        let mut out = Vec::with_capacity(self.map.len());
        let mut done_key: Option<&Bytes> = None;
        for ((key, _), row) in &self.map {
            if done_key == Some(key) {
                continue;
            }
            if now.is_some_and(|t| row.kind != RowKind::Tombstone && row.is_expired(t)) {
                out.push(Row {
                    key: row.key.clone(),
                    value: Bytes::new(),
                    seq: row.seq,
                    kind: RowKind::Tombstone,
                    expire_ts: None,
                    create_ts: row.create_ts,
                });
                done_key = Some(key);
                continue;
            }
            out.push(row.clone());
            if row.kind != RowKind::Merge {
                done_key = Some(key);
            }
        }
        out
    }

    /// Takes the rows queued for the WAL, in write order.
    pub fn take_wal(&mut self) -> Vec<Row> {
        self.wal_size = 0;
        std::mem::take(&mut self.wal)
    }

    pub fn wal_pending(&self) -> (usize, usize) {
        (self.wal.len(), self.wal_size)
    }

    pub fn size_bytes(&self) -> usize {
        self.size
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    pub fn max_seq(&self) -> Option<u64> {
        self.max_seq
    }

    pub fn max_create_ts(&self) -> Option<i64> {
        self.max_create_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_respects_snapshots_and_flush_keeps_newest() {
        let mut m = Memtable::new();
        m.insert(Row::value(&b"a"[..], &b"1"[..], 1), true);
        m.insert(Row::value(&b"a"[..], &b"2"[..], 5), true);
        m.insert(Row::tombstone(&b"b"[..], 3), true);
        assert_eq!(&m.get(b"a", 10).unwrap().value[..], b"2");
        assert_eq!(&m.get(b"a", 4).unwrap().value[..], b"1");
        assert!(m.get(b"a", 0).is_none());
        assert!(m.get(b"c", 10).is_none());
        assert_eq!(m.flush_rows(None).len(), 2);
        assert_eq!(m.range(Some(b"a"), Some(b"b")).len(), 2);
        assert_eq!(m.take_wal().len(), 3);
        assert_eq!(m.wal_pending().0, 0);
    }
}
