//! The memtable: rows held in memory in (key ascending, seq descending) order, plus the rows
//! written since the last WAL upload.
//!
//! Memory is what bounds a writer, so rows are stored lean: key and value bytes are copied
//! into arena chunks (one allocation per chunk, not two per row; a row's `Bytes` are
//! slices of its chunk), and the map holds each key once, beside a small entry.
//! `memory_bytes` counts what that really costs; `size_bytes` estimates the encoded size,
//! which decides when the memtable becomes an L0 SST.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::{Bytes, BytesMut};

use crate::error::CoreResult;
use crate::format::row::{Row, RowKind};
use crate::sst::SstFile;
#[cfg(test)]
use crate::sst::SstOptions;

/// Per-row bookkeeping counted into `size_bytes` (the encoded-size estimate), on top of key
/// and value bytes.
const ROW_OVERHEAD: usize = 48;

/// Measured memory of one map entry beyond its key and value bytes: the map's node space
/// (key handle, entry, and the slack of half-full B-tree nodes).
const ENTRY_MEMORY: usize = 200;

/// Memory of one row queued for the WAL (a `Row` of slices).
const WAL_ROW_MEMORY: usize = std::mem::size_of::<Row>();

/// Arena chunks are 32 MiB: glibc always maps allocations this large with mmap (its adaptive
/// threshold stops at 32 MiB), so a flushed memtable's memory goes back to the system at
/// once instead of lingering in the heap; pages are only resident once written.
const CHUNK: usize = 32 << 20;

#[derive(Clone, Debug)]
struct Entry {
    value: Bytes,
    kind: RowKind,
    expire_ts: Option<i64>,
    create_ts: Option<i64>,
}

impl Entry {
    fn row(&self, key: &Bytes, seq: u64) -> Row {
        Row {
            key: key.clone(),
            value: self.value.clone(),
            seq,
            kind: self.kind,
            expire_ts: self.expire_ts,
            create_ts: self.create_ts,
        }
    }
}

/// Where a flush that walks the memtable in steps stopped (`Memtable::flush_step`).
#[derive(Default)]
pub struct FlushCursor {
    /// The last entry visited.
    after: Option<(Bytes, u64)>,
    /// The key whose older versions the flush leaves out.
    done_key: Option<Bytes>,
}

#[derive(Default)]
pub struct Memtable {
    map: BTreeMap<(Bytes, Reverse<u64>), Entry>,
    size: usize,
    arena: BytesMut,
    arena_bytes: usize,
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

    /// Copies `data` into the arena; the slice shares the chunk.
    fn stash(&mut self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::new();
        }
        if self.arena.capacity() - self.arena.len() < data.len() {
            self.arena = BytesMut::with_capacity(CHUNK.max(data.len()));
        }
        // Counted as written: a chunk's pages are resident only once touched.
        self.arena_bytes += data.len();
        self.arena.extend_from_slice(data);
        self.arena.split().freeze()
    }

    /// Adds a row; `log` also queues it for the next WAL upload.
    pub fn insert(&mut self, row: &Row, log: bool) {
        self.insert_parts(&row.key, &row.value, row.seq, row.kind, row.expire_ts, row.create_ts, log);
    }

    /// `insert` from borrowed bytes (the write path: the bytes are copied once, into the
    /// arena).
    #[allow(clippy::too_many_arguments, reason = "the fields of a row, borrowed: building a Row first would copy them")]
    pub fn insert_parts(
        &mut self,
        key: &[u8],
        value: &[u8],
        seq: u64,
        kind: RowKind,
        expire_ts: Option<i64>,
        create_ts: Option<i64>,
        log: bool,
    ) {
        let cost = key.len() + value.len() + ROW_OVERHEAD;
        self.min_seq = Some(self.min_seq.map_or(seq, |s| s.min(seq)));
        self.max_seq = Some(self.max_seq.map_or(seq, |s| s.max(seq)));
        if let Some(ts) = create_ts {
            self.max_create_ts = Some(self.max_create_ts.map_or(ts, |t| t.max(ts)));
        }
        let key = self.stash(key);
        let value = self.stash(value);
        let entry = Entry { value, kind, expire_ts, create_ts };
        if log {
            self.wal_size += cost;
            self.wal.push(entry.row(&key, seq));
        }
        let klen = key.len();
        if let Some(old) = self.map.insert((key, Reverse(seq)), entry) {
            self.size -= klen + old.value.len() + ROW_OVERHEAD;
        }
        self.size += cost;
    }

    /// What the memtable holds in memory: arena chunks, map entries, and rows queued for the
    /// WAL (a frozen memtable's queue is empty).
    pub fn memory_bytes(&self) -> usize {
        self.arena_bytes + self.map.len() * ENTRY_MEMORY + self.wal.len() * WAL_ROW_MEMORY
    }

    /// The newest version of `key` with `seq <= snapshot_seq`.
    pub fn get(&self, key: &[u8], snapshot_seq: u64) -> Option<Row> {
        let from = (Bytes::copy_from_slice(key), Reverse(snapshot_seq));
        self.map
            .range((Bound::Included(from), Bound::Unbounded))
            .next()
            .filter(|((k, _), _)| k.as_ref() == key)
            .map(|((k, Reverse(seq)), e)| e.row(k, *seq))
    }

    /// The versions of `key` with `seq <= snapshot_seq`, newest first.
    pub fn versions<'a>(&'a self, key: &'a [u8], snapshot_seq: u64) -> impl Iterator<Item = Row> + 'a {
        let from = (Bytes::copy_from_slice(key), Reverse(snapshot_seq));
        self.map
            .range((Bound::Included(from), Bound::Unbounded))
            .take_while(move |((k, _), _)| k.as_ref() == key)
            .map(|((k, Reverse(seq)), e)| e.row(k, *seq))
    }

    /// Every version of every key in `[start, end)` (None = unbounded), in merge order.
    pub fn range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Vec<Row> {
        let lo = match start {
            Some(s) => Bound::Included((Bytes::copy_from_slice(s), Reverse(u64::MAX))),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for ((k, Reverse(seq)), e) in self.map.range((lo, Bound::Unbounded)) {
            if end.is_some_and(|x| k.as_ref() >= x) {
                break;
            }
            out.push(e.row(k, *seq));
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
        if reverse {
            let hi = match (after, end) {
                (Some((k, s)), _) => Bound::Excluded(pos(k, *s)),
                (None, Some(e)) => Bound::Excluded((Bytes::copy_from_slice(e), Reverse(u64::MAX))),
                (None, None) => Bound::Unbounded,
            };
            for ((k, Reverse(seq)), e) in self.map.range((Bound::Unbounded, hi)).rev() {
                if start.is_some_and(|x| k.as_ref() < x) || out.len() >= n {
                    break;
                }
                if *seq <= snapshot {
                    out.push(e.row(k, *seq));
                }
            }
        } else {
            let lo = match (after, start) {
                (Some((k, s)), _) => Bound::Excluded(pos(k, *s)),
                (None, Some(s)) => Bound::Included((Bytes::copy_from_slice(s), Reverse(u64::MAX))),
                (None, None) => Bound::Unbounded,
            };
            for ((k, Reverse(seq)), e) in self.map.range((lo, Bound::Unbounded)) {
                if end.is_some_and(|x| k.as_ref() >= x) || out.len() >= n {
                    break;
                }
                if *seq <= snapshot {
                    out.push(e.row(k, *seq));
                }
            }
        }
        out
    }

    /// The rows an L0 SST needs: per key, versions from the newest down to and including the
    /// first one that is not a merge operand (older versions can never be read again). An
    /// operand expired at `now` is left out (reads skip it); a value expired at `now` is
    /// written as a tombstone, as SlateDB does, so that every reader
    /// (0.17.0 included, which would still return it) sees it gone.
    /// Streams them to `f` in merge order, without copying the memtable.
    pub fn for_each_flush_row(
        &self,
        now: Option<i64>,
        retain_seq: Option<u64>,
        mut f: impl FnMut(&Row) -> CoreResult<()>,
    ) -> CoreResult<()> {
        self.flush_step(&mut FlushCursor::default(), now, retain_seq, |r| f(r).map(|()| true)).map(drop)
    }

    /// `for_each_flush_row` in steps: from where `cursor` stopped until `f` returns false
    /// (after taking the row it was given) or the rows end. True when they ended. Between
    /// steps the memtable must not change (it is frozen: an L0 flush).
    pub fn flush_step(
        &self,
        cursor: &mut FlushCursor,
        now: Option<i64>,
        retain_seq: Option<u64>,
        mut f: impl FnMut(&Row) -> CoreResult<bool>,
    ) -> CoreResult<bool> {
        // Per key, newest first: every version a snapshot at or after `retain_seq` may read
        // (those above it, and the newest at or below it), then nothing; without open
        // snapshots only the newest, or the merge operands down to the newest base.
        let carried = cursor.done_key.take();
        let mut done_key: Option<&Bytes> = carried.as_ref();
        let from = match cursor.after.take() {
            Some((k, s)) => Bound::Excluded((k, Reverse(s))),
            None => Bound::Unbounded,
        };
        for ((key, Reverse(seq)), e) in self.map.range((from, Bound::Unbounded)) {
            if done_key == Some(key) {
                continue;
            }
            let mut row = e.row(key, *seq);
            let pinned = retain_seq.is_some_and(|r| *seq > r);
            let expired = now.is_some_and(|t| row.is_expired(t));
            if row.kind == RowKind::Merge && expired {
                continue; // reads skip an expired operand: it goes, older versions stay
            }
            if row.kind == RowKind::Value && expired {
                row = Row { value: Bytes::new(), kind: RowKind::Tombstone, expire_ts: None, ..row };
                if !pinned {
                    done_key = Some(key);
                }
            } else if row.kind != RowKind::Merge && !pinned {
                done_key = Some(key);
            }
            if !f(&row)? {
                cursor.after = Some((key.clone(), *seq));
                cursor.done_key = done_key.cloned();
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The rows an L0 flush writes, copied out (for a flush that folds merge operands, which
    /// must not run under the memtable's lock: `flush::L0Pieces`).
    pub fn flush_rows(&self, now: Option<i64>, retain_seq: Option<u64>) -> Vec<Row> {
        let mut rows = Vec::new();
        let _ = self.for_each_flush_row(now, retain_seq, |r| {
            rows.push(r.clone());
            Ok(())
        });
        rows
    }

    /// Adds replayed WAL rows (`wal_rows_after`), not queued for the WAL again. Returns
    /// `(rows added, highest seq seen or after_seq)`.
    pub fn replay(&mut self, rows: &[Row], after_seq: u64) -> (usize, u64) {
        let max_seq = rows.iter().map(|r| r.seq).max().unwrap_or(after_seq).max(after_seq);
        for r in rows {
            self.insert(r, false);
        }
        (rows.len(), max_seq)
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

/// The rows of one WAL object with seq > `after_seq`, and whether the replay ends here. A
/// fence (0 bytes, or an old-style empty SST of at most a footer) holds none.
///
/// With `upto_ms` (a replay up to a point in time, `slatedb_py.time_travel`): the rows come
/// up to the first one written after it (`create_ts > upto_ms`), which ends the replay
/// (`true`: later rows, here or in later objects, are later writes); a row without a
/// `create_ts` is taken as written at `upto_ms`, and gets it as its create time.
pub fn wal_rows_after(data: Bytes, after_seq: u64, upto_ms: Option<i64>) -> CoreResult<(Vec<Row>, bool)> {
    if data.len() <= 10 {
        return Ok((Vec::new(), false));
    }
    let file = SstFile::open(data)?;
    let mut it = file.iter();
    let mut out = Vec::new();
    while let Some(mut r) = it.next_row()? {
        if r.seq <= after_seq {
            continue;
        }
        if let Some(upto) = upto_ms {
            match r.create_ts {
                Some(t) if t > upto => return Ok((out, true)),
                Some(_) => {}
                None => r.create_ts = Some(upto),
            }
        }
        out.push(r);
    }
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_respects_snapshots_and_flush_keeps_newest() {
        let mut m = Memtable::new();
        m.insert(&Row::value(&b"a"[..], &b"1"[..], 1), true);
        m.insert(&Row::value(&b"a"[..], &b"2"[..], 5), true);
        m.insert(&Row::tombstone(&b"b"[..], 3), true);
        assert_eq!(&m.get(b"a", 10).unwrap().value[..], b"2");
        assert_eq!(&m.get(b"a", 4).unwrap().value[..], b"1");
        assert!(m.get(b"a", 0).is_none());
        assert!(m.get(b"c", 10).is_none());
        let mut flushed = 0;
        m.for_each_flush_row(None, None, |_| {
            flushed += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(flushed, 2);
        assert_eq!(m.range(Some(b"a"), Some(b"b")).len(), 2);
        assert_eq!(m.take_wal().len(), 3);
        assert_eq!(m.wal_pending().0, 0);
    }

    #[test]
    fn flush_keeps_what_an_open_snapshot_reads() {
        let mut m = Memtable::new();
        for (seq, v) in [(1u64, &b"1"[..]), (3, b"3"), (5, b"5"), (7, b"7")] {
            m.insert(&Row::value(&b"a"[..], v, seq), true);
        }
        m.insert(&Row::value(&b"b"[..], &b"x"[..], 2), true);
        let seqs = |retain: Option<u64>| {
            let mut out = vec![];
            m.for_each_flush_row(None, retain, |r| {
                out.push((r.key.to_vec(), r.seq));
                Ok(())
            })
            .unwrap();
            out
        };
        // No snapshot: the newest version of each key.
        assert_eq!(seqs(None), vec![(b"a".to_vec(), 7), (b"b".to_vec(), 2)]);
        // A snapshot at 4 reads a@3: every version above 4, then the newest at or below it.
        assert_eq!(seqs(Some(4)), vec![(b"a".to_vec(), 7), (b"a".to_vec(), 5), (b"a".to_vec(), 3), (b"b".to_vec(), 2)]);
        assert_eq!(seqs(Some(0)).len(), 5);
        assert_eq!(seqs(Some(7)), seqs(None));
    }

    #[test]
    fn flush_steps_resume_where_they_stopped() {
        let mut m = Memtable::new();
        for (k, seq) in [(&b"a"[..], 1u64), (b"a", 3), (b"b", 2), (b"c", 4), (b"c", 5), (b"d", 6)] {
            m.insert(&Row::value(k, &b"v"[..], seq), false);
        }
        let mut all = vec![];
        m.for_each_flush_row(None, None, |r| {
            all.push((r.key.clone(), r.seq));
            Ok(())
        })
        .unwrap();
        // One row per step: the same rows, the older versions of a key still left out.
        let (mut cursor, mut stepped) = (FlushCursor::default(), vec![]);
        while !m
            .flush_step(&mut cursor, None, None, |r| {
                stepped.push((r.key.clone(), r.seq));
                Ok(false)
            })
            .unwrap()
        {}
        assert_eq!(stepped, all);
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn replay_round_trips_through_a_wal_sst() {
        let mut m = Memtable::new();
        m.insert(&Row::value(&b"a"[..], &b"1"[..], 4), true);
        m.insert(&Row::value(&b"b"[..], &b"2"[..], 6), true);
        let wal = crate::sst::encode_sst(&m.take_wal(), SstOptions::wal()).unwrap();
        assert_eq!(wal_rows_after(Bytes::new(), 0, None).unwrap(), (vec![], false));
        let (rows, stop) = wal_rows_after(Bytes::from(wal), 4, None).unwrap();
        assert!(!stop);
        assert_eq!(rows.len(), 1);
        let mut r = Memtable::new();
        assert_eq!(r.replay(&rows, 4), (1, 6));
        assert_eq!(r.replay(&[], 9), (0, 9));
        assert_eq!(r.wal_pending().0, 0, "replayed rows are not queued again");
        assert_eq!(&r.get(b"b", 10).unwrap().value[..], b"2");
    }

    #[test]
    fn a_replay_up_to_a_time_stops_at_the_first_row_written_after_it() {
        let row = |k: &'static [u8], seq: u64, ts: Option<i64>| Row { create_ts: ts, ..Row::value(k, &b"v"[..], seq) };
        let rows = [row(b"a", 1, Some(500)), row(b"b", 2, Some(100)), row(b"c", 3, None), row(b"d", 4, Some(101))];
        let wal = Bytes::from(crate::sst::encode_sst(&rows, SstOptions::wal()).unwrap());
        let seqs_ts = |(rows, stop): (Vec<Row>, bool)| (rows.iter().map(|r| (r.seq, r.create_ts)).collect(), stop);
        // Seq 1 is at or below `after_seq`: skipped, its time not looked at. Seq 3 has no time:
        // taken as written at the bound. Seq 4 is after it: the replay ends there.
        let got: (Vec<_>, bool) = seqs_ts(wal_rows_after(wal.clone(), 1, Some(100)).unwrap());
        assert_eq!(got, (vec![(2, Some(100)), (3, Some(100))], true));
        assert_eq!(seqs_ts(wal_rows_after(wal.clone(), 0, Some(99)).unwrap()), (vec![], true));
        let all = seqs_ts(wal_rows_after(wal.clone(), 0, Some(500)).unwrap());
        assert_eq!(all, (vec![(1, Some(500)), (2, Some(100)), (3, Some(500)), (4, Some(101))], false));
        assert_eq!(seqs_ts(wal_rows_after(wal, 0, None).unwrap()).0[2], (3, None), "no bound: as written");
    }
}
