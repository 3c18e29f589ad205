//! The memtable: rows held in memory in (key ascending, seq descending) order, plus the rows
//! written since the last WAL upload.
//!
//! Memory is what bounds a writer, so rows are stored lean (`rows`): key and value bytes are
//! copied into arena chunks (one copy per write, a batch's buffer whole), and the sorted
//! order is kept in pages of 64-byte slots. `memory_bytes` counts what that really costs;
//! `size_bytes` estimates the encoded size, which decides when the memtable becomes an L0
//! SST.

mod arena;
mod rows;
mod wal;

use bytes::Bytes;

use crate::error::CoreResult;
use crate::format::row::{Row, RowKind};
pub use rows::Slot;
use rows::{Pos, Rows};
pub use wal::{wal_rows_after, WalRows};

/// Per-row bookkeeping counted into `size_bytes` (the encoded-size estimate), on top of key
/// and value bytes.
const ROW_OVERHEAD: usize = 48;

/// Memory of one row queued for the WAL (a slot).
const WAL_ROW_MEMORY: usize = std::mem::size_of::<Slot>();

/// Slots per chunk of the WAL queue at most: the queue grows a chunk at a time, never
/// copying itself (a flush interval of fast writes queues hundreds of thousands of rows).
/// Chunks start small and grow with the queue, so a few rows cost little.
const WAL_CHUNK: usize = 1024;

/// Where a flush that walks the memtable in steps stopped (`Memtable::flush_step`).
#[derive(Default)]
pub struct FlushCursor {
    /// The last row visited: its key (copied) and seq.
    after: Option<(Vec<u8>, u64)>,
    /// The key whose older versions the flush leaves out.
    done_key: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct Memtable {
    rows: Rows,
    size: usize,
    wal: Vec<Vec<Slot>>,
    wal_len: usize,
    /// Slots the WAL queue's chunks have room for (what their memory is).
    wal_room: usize,
    wal_size: usize,
    min_seq: Option<u64>,
    max_seq: Option<u64>,
    max_create_ts: Option<i64>,
}

impl Memtable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies `data` (the bytes of one write) into the arena; returns the segment and the
    /// offset of its first byte, to make slots of its rows with (`add`).
    pub fn stash(&mut self, data: &[u8]) -> (u32, usize) {
        self.rows.arena.stash(&[data])
    }

    /// Adds a row whose bytes are stashed (`stash`); `log` also queues it for the next WAL
    /// upload.
    pub fn add(&mut self, slot: Slot, log: bool) {
        let cost = slot.data_len() + ROW_OVERHEAD;
        let seq = slot.seq;
        self.min_seq = Some(self.min_seq.map_or(seq, |s| s.min(seq)));
        self.max_seq = Some(self.max_seq.map_or(seq, |s| s.max(seq)));
        if let Some(ts) = slot.create_ts() {
            self.max_create_ts = Some(self.max_create_ts.map_or(ts, |t| t.max(ts)));
        }
        if log {
            self.wal_size += cost;
            self.wal_len += 1;
            match self.wal.last_mut() {
                Some(chunk) if chunk.len() < WAL_CHUNK => chunk.push(slot),
                _ => {
                    let mut chunk = Vec::with_capacity(self.wal_len.clamp(16, WAL_CHUNK));
                    self.wal_room += chunk.capacity();
                    chunk.push(slot);
                    self.wal.push(chunk);
                }
            }
        }
        if let Some(old) = self.rows.insert(slot) {
            self.size -= old.data_len() + ROW_OVERHEAD;
        }
        self.size += cost;
    }

    /// Adds a row; `log` also queues it for the next WAL upload.
    pub fn insert(&mut self, row: &Row, log: bool) {
        self.insert_parts(&row.key, &row.value, row.seq, row.kind, row.expire_ts, row.create_ts, log);
    }

    /// `insert` from borrowed bytes (the write path: the bytes are copied once, into the
    /// arena, key and value as one segment).
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
        let (seg, off) = self.rows.arena.stash(&[key, value]);
        self.add(Slot::new(key, (seg, off, value.len()), seq, kind, expire_ts, create_ts), log);
    }

    /// What the memtable holds in memory: arena chunks, the sorted pages, and rows queued for
    /// the WAL (a frozen memtable's queue is empty).
    pub fn memory_bytes(&self) -> usize {
        self.rows.memory_bytes() + self.wal_room * WAL_ROW_MEMORY
    }

    /// The newest version of `key` with `seq <= snapshot_seq`.
    pub fn get(&self, key: &[u8], snapshot_seq: u64) -> Option<Row> {
        self.versions(key, snapshot_seq).next()
    }

    /// The versions of `key` with `seq <= snapshot_seq`, newest first.
    pub fn versions<'a>(&'a self, key: &'a [u8], snapshot_seq: u64) -> impl Iterator<Item = Row> + 'a {
        self.rows.versions(key, snapshot_seq).map(|s| self.rows.row(s))
    }

    /// Every version of every key in `[start, end)` (None = unbounded), in merge order.
    pub fn range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Vec<Row> {
        self.rows
            .iter_from(self.start_pos(start))
            .take_while(|s| end.is_none_or(|x| self.rows.key(s) < x))
            .map(|s| self.rows.row(s))
            .collect()
    }

    /// The position of the first row of a key >= `start` (None: the first row).
    fn start_pos(&self, start: Option<&[u8]>) -> Pos {
        match start {
            Some(s) => self.rows.lower_bound(s, u64::MAX),
            None => Pos::default(),
        }
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
        let visible = |s: &&Slot| s.seq <= snapshot;
        let rows = &self.rows;
        if reverse {
            let hi = match (after, end) {
                (Some((k, s)), _) => rows.lower_bound(k, *s),
                (None, Some(e)) => rows.lower_bound(e, u64::MAX),
                (None, None) => rows.end(),
            };
            rows.iter_before(hi)
                .take_while(|s| start.is_none_or(|x| rows.key(s) >= x))
                .filter(visible)
                .take(n)
                .map(|s| rows.row(s))
                .collect()
        } else {
            let lo = match after {
                Some((k, s)) => rows.upper_bound(k, *s),
                None => self.start_pos(start),
            };
            rows.iter_from(lo)
                .take_while(|s| end.is_none_or(|x| rows.key(s) < x))
                .filter(visible)
                .take(n)
                .map(|s| rows.row(s))
                .collect()
        }
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
        let mut done_key: Option<&[u8]> = carried.as_deref();
        let from = match cursor.after.take() {
            Some((k, seq)) => self.rows.upper_bound(&k, seq),
            None => Pos::default(),
        };
        for s in self.rows.iter_from(from) {
            let key = self.rows.key(s);
            if done_key == Some(key) {
                continue;
            }
            let pinned = retain_seq.is_some_and(|r| s.seq > r);
            let expired = now.is_some_and(|t| s.expire_ts().is_some_and(|ts| ts <= t));
            let kind = s.kind();
            if kind == RowKind::Merge && expired {
                continue; // reads skip an expired operand: it goes, older versions stay
            }
            if kind != RowKind::Merge && !pinned {
                done_key = Some(key);
            }
            let row = self.rows.row(s);
            let row = if kind == RowKind::Value && expired {
                Row { value: Bytes::new(), kind: RowKind::Tombstone, expire_ts: None, ..row }
            } else {
                row
            };
            if !f(&row)? {
                cursor.after = Some((key.to_vec(), s.seq));
                cursor.done_key = done_key.map(<[u8]>::to_vec);
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

    /// Takes the rows queued for the WAL, in write order, with the segments that hold their
    /// bytes: a cheap step under the memtable's lock; they are encoded after it
    /// (`WalRows::encode`).
    pub fn take_wal(&mut self) -> WalRows {
        (self.wal_size, self.wal_len, self.wal_room) = (0, 0, 0);
        let slots = std::mem::take(&mut self.wal);
        let base = slots.first().and_then(|c| c.first()).map_or(0, Slot::seg);
        WalRows::new(self.rows.arena.segs_from(base), base, slots)
    }

    pub fn wal_pending(&self) -> (usize, usize) {
        (self.wal_len, self.wal_size)
    }

    pub fn size_bytes(&self) -> usize {
        self.size
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() == 0
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
    use crate::sst::SstOptions;

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
    fn memory_is_what_rows_take_and_a_few_rows_take_little() {
        let mut m = Memtable::new();
        m.insert_parts(b"k", b"v", 1, RowKind::Value, None, None, true);
        assert!(m.memory_bytes() < 2048, "{}", m.memory_bytes());
        for i in 0..10_000u64 {
            m.insert_parts(&i.to_be_bytes(), &[7; 100], 2, RowKind::Value, None, None, true);
        }
        // Per row: 108 bytes of key and value, a slot in a page, a slot in the WAL queue.
        let per_row = m.memory_bytes() / m.len();
        assert!((108 + 120..108 + 150).contains(&per_row), "{per_row}");
        m.take_wal();
        assert!(m.memory_bytes() / m.len() < 108 + 80, "the WAL queue's share goes with it");
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
        let wal = m.take_wal().encode(SstOptions::wal()).unwrap();
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
