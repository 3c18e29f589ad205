//! Point reads across the whole tree: memtables (newest first), then L0 SSTs (newest first),
//! then sorted runs, each run searched by bisecting on its SSTs' key ranges (taken from the
//! manifest, so an SST is opened only when a key may be in it).
//!
//! A read that needs bytes it does not have stops with `Poll::Need` and resumes at the
//! level it stopped at (`fetch`): the memtables and levels already searched are not searched
//! again.

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::fetch::{Fetcher, Need, Part, PartReply, Poll, TableSlot, Tables};
use crate::format::row::{Row, RowKind};
use crate::memtable::Memtable;
use crate::operator::{missing_operator, version, Operator, Pending, Version};
use crate::sst::SstFile;

/// A key range a view of an SST is restricted to (a clone's projection of its parent).
#[derive(Clone, Debug)]
pub struct KeyRange {
    pub start: Bound<Bytes>,
    pub end: Bound<Bytes>,
}

impl KeyRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_ref(),
            Bound::Excluded(s) => key > s.as_ref(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_ref(),
            Bound::Excluded(e) => key < e.as_ref(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// `[start, end)` narrowed to this range, as inclusive-start / exclusive-end keys.
    pub fn clamp(&self, start: Option<Bytes>, end: Option<Bytes>) -> (Option<Bytes>, Option<Bytes>) {
        let lo = match &self.start {
            Bound::Included(s) => Some(s.clone()),
            Bound::Excluded(s) => Some(successor(s)),
            Bound::Unbounded => None,
        };
        let hi = match &self.end {
            Bound::Included(e) => Some(successor(e)),
            Bound::Excluded(e) => Some(e.clone()),
            Bound::Unbounded => None,
        };
        let start = match (start, lo) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let end = match (end, hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (start, end)
    }
}

/// The smallest key greater than `k`.
pub fn successor(k: &[u8]) -> Bytes {
    let mut v = k.to_vec();
    v.push(0);
    Bytes::from(v)
}

/// An SST as the manifest names it: where it is, its key range, its projection.
#[derive(Clone)]
pub struct TableRef {
    pub slot: Arc<TableSlot>,
    pub first: Option<Bytes>,
    pub last: Option<Bytes>,
    pub visible: Option<KeyRange>,
}

impl TableRef {
    /// Can this SST hold `key` (by the manifest's key range and the projection)?
    pub fn may_hold(&self, key: &[u8]) -> bool {
        self.first.as_ref().is_none_or(|f| key >= f.as_ref())
            && self.last.as_ref().is_none_or(|l| key <= l.as_ref())
            && self.visible.as_ref().is_none_or(|v| v.contains(key))
    }

    /// Can this SST hold keys of `[start, end)`?
    pub fn overlaps(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> bool {
        !(end.is_some_and(|e| self.first.as_ref().is_some_and(|f| f.as_ref() >= e))
            || start.is_some_and(|s| self.last.as_ref().is_some_and(|l| l.as_ref() < s)))
    }
}

pub enum Level {
    /// One L0 SST.
    Table(TableRef),
    /// A sorted run: SSTs with disjoint key ranges, in key order.
    Run(Vec<TableRef>),
}

/// What a read searches, newest first. `prefix` restricts a level to keys that start with it
/// (a segment's tree, RFC-0024); empty for the main tree.
pub struct Tree {
    pub memtables: Vec<Arc<Mutex<Memtable>>>,
    pub levels: Vec<(Bytes, Level)>,
    pub tables: Arc<Tables>,
    /// The merge operator reads fold operands with (None: an operand is an error).
    pub op: Option<Operator>,
}

/// How a point read ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Absent,
    Value(Bytes),
}

/// What a point read has gathered so far (`GetState`), and where the key's versions stop.
enum Offered {
    /// Older versions are needed (the row was a merge operand, or skipped).
    More,
    Done(Found),
}

/// The newest version of `key` at or below `bound`, then older ones while `want` asks for
/// them, in one compacted SST (versions of a key may go on across blocks).
#[allow(clippy::too_many_arguments, reason = "one lookup's inputs; the state lives in the caller")]
fn lookup(
    tables: &Tables,
    slot: &Arc<TableSlot>,
    file: &SstFile,
    key: &[u8],
    hash: u64,
    bound: u64,
    f: &mut Fetcher,
    want: &mut dyn FnMut(Row) -> CoreResult<bool>,
) -> CoreResult<Option<Need>> {
    if !file.might_contain_hash(hash) {
        return Ok(None);
    }
    let mut b = file.find_block(key);
    while b < file.num_blocks() {
        let Some(block) = f.block(tables, slot, file, b)? else {
            return Ok(Some(Need::Block(slot.clone(), b)));
        };
        let at = file.index()[b].offset;
        let ctx = |e: CoreError| e.within(at, &format!("data block {b}")).in_object(Some(&slot.path));
        let mut it = block.iter();
        it.seek(key).map_err(ctx)?;
        loop {
            match it.next_row().map_err(ctx)? {
                Some(row) if row.key.as_ref() == key => {
                    if row.seq <= bound && !want(row)? {
                        return Ok(None);
                    }
                }
                Some(_) => return Ok(None),
                None => break, // versions of the key may go on in the next block
            }
        }
        b += 1;
    }
    Ok(None)
}

/// Where a point read is: the next level to search (memtables come before level 0), and
/// the merge operands met so far.
#[derive(Clone, Default)]
pub struct GetState {
    level: usize,
    memtables_done: bool,
    /// The key's bloom filter hash, computed once for every SST the read checks.
    hash: Option<u64>,
    /// Versions above this were seen already (after an operand: its seq - 1); None = the
    /// snapshot. A level searched again after a fetch skips what it gave before.
    bound: Option<u64>,
    pending: Pending,
}

impl Tree {
    /// Takes one version of the key being read (newest first).
    fn offer(&self, state: &mut GetState, row: Row, now: i64) -> CoreResult<Offered> {
        match row.seq.checked_sub(1) {
            Some(b) => state.bound = Some(b),
            None => state.bound = None, // seq 0: nothing older exists (checked below)
        }
        let at_zero = row.seq == 0;
        let done = match version(&row, Some(now)) {
            Version::Operand => {
                if self.op.is_none() {
                    return Err(missing_operator(&row.key));
                }
                state.pending.operands.push(row.value);
                false
            }
            Version::Skip => false,
            Version::Base(base) => return self.finish(state, &row.key, base).map(Offered::Done),
        };
        if !done && at_zero {
            return self.finish(state, &row.key, None).map(Offered::Done);
        }
        Ok(Offered::More)
    }

    fn finish(&self, state: &mut GetState, key: &[u8], base: Option<Bytes>) -> CoreResult<Found> {
        let value = match &self.op {
            Some(op) => state.pending.finish(&**op, key, base)?,
            None => base,
        };
        Ok(value.map_or(Found::Absent, Found::Value))
    }

    /// The SSTs of a sorted run that may hold versions of `key`, in order: the one whose
    /// range starts at or before it, and before that any whose range ends at it (a run
    /// written elsewhere may split a key's versions across SSTs, newest first).
    fn run_tables<'a>(run: &'a [TableRef], key: &[u8]) -> &'a [TableRef] {
        let end = run.partition_point(|t| t.first.as_ref().is_none_or(|f| f.as_ref() <= key));
        let Some(mut start) = end.checked_sub(1) else { return &[] };
        while start > 0
            && run[start].first.as_deref() == Some(key)
            && run[start - 1].last.as_ref().is_none_or(|l| l.as_ref() >= key)
        {
            start -= 1;
        }
        &run[start..end]
    }

    /// One step of a point read of `key` at `snapshot`: its value (operands folded), or what
    /// must be fetched first (`state` remembers where to resume).
    pub fn get_step(
        &self,
        key: &[u8],
        snapshot: u64,
        now: i64,
        state: &mut GetState,
        f: &mut Fetcher,
    ) -> CoreResult<Result<Found, Need>> {
        if !state.memtables_done {
            for mt in &self.memtables {
                // Copied out first: folding may call a Python operator, which must never run
                // under the memtable lock (a writer holding the GIL may be waiting for it).
                // (Without an operator nothing is folded: the hot path reads under the lock.)
                let m = mt.lock().map_err(|_| CoreError::poisoned("memtable"))?;
                if self.op.is_none() {
                    for row in m.versions(key, state.bound.unwrap_or(snapshot)) {
                        if let Offered::Done(found) = self.offer(state, row, now)? {
                            return Ok(Ok(found));
                        }
                    }
                    continue;
                }
                let mut versions = Vec::new();
                for row in m.versions(key, state.bound.unwrap_or(snapshot)) {
                    let base = row.kind != RowKind::Merge;
                    versions.push(row);
                    if base {
                        break;
                    }
                }
                drop(m);
                for row in versions {
                    if let Offered::Done(found) = self.offer(state, row, now)? {
                        return Ok(Ok(found));
                    }
                }
            }
            state.memtables_done = true;
        }
        while state.level < self.levels.len() {
            let (prefix, level) = &self.levels[state.level];
            let tables: &[TableRef] = if key.starts_with(prefix) {
                match level {
                    Level::Table(t) if t.may_hold(key) => std::slice::from_ref(t),
                    Level::Table(_) => &[],
                    Level::Run(run) => Self::run_tables(run, key),
                }
            } else {
                &[]
            };
            for t in tables.iter().filter(|t| t.may_hold(key)) {
                let file = match f.table(&t.slot)? {
                    Ok(file) => file,
                    Err(need) => return Ok(Err(need)),
                };
                let hash = *state.hash.get_or_insert_with(|| crate::bloom::filter_hash(key));
                let bound = state.bound.unwrap_or(snapshot);
                let mut done = None;
                let mut want = |row: Row| -> CoreResult<bool> {
                    match self.offer(state, row, now)? {
                        Offered::More => Ok(true),
                        Offered::Done(found) => {
                            done = Some(found);
                            Ok(false)
                        }
                    }
                };
                let need = lookup(&self.tables, &t.slot, file, key, hash, bound, f, &mut want)?;
                if let Some(found) = done {
                    return Ok(Ok(found));
                }
                if let Some(need) = need {
                    return Ok(Err(need));
                }
            }
            state.level += 1;
        }
        // Operands with no base anywhere fold onto nothing.
        self.finish(state, key, None).map(Ok)
    }
}

/// A read of several keys at once: every key advances until it needs bytes, and the needs of
/// all keys go out as one request (distinct blocks, fetched together).
pub struct GetMany {
    pub keys: Vec<Bytes>,
    snapshot: u64,
    now: i64,
    states: Vec<GetState>,
    results: Vec<Option<Found>>,
    fetcher: Fetcher,
}

impl GetMany {
    pub fn new(keys: Vec<Bytes>, snapshot: u64, now: i64) -> Self {
        let n = keys.len();
        GetMany {
            keys,
            snapshot,
            now,
            states: vec![GetState::default(); n],
            results: (0..n).map(|_| None).collect(),
            fetcher: Fetcher::default(),
        }
    }

    /// A one-key read that already searched up to `state` and stopped on `need`: the call
    /// and its request, so the read resumes there instead of starting again.
    pub fn stopped(
        key: Bytes,
        snapshot: u64,
        now: i64,
        state: GetState,
        mut fetcher: Fetcher,
        need: Need,
    ) -> (Self, Vec<Part>) {
        let parts = fetcher.request(vec![need]);
        (GetMany { keys: vec![key], snapshot, now, states: vec![state], results: vec![None], fetcher }, parts)
    }

    /// Continues after `resume` was given the replies to the last request (or at the start).
    pub fn poll(&mut self, tree: &Tree, replies: Option<Vec<PartReply>>) -> CoreResult<Poll<Vec<Found>>> {
        if let Some(r) = replies {
            self.fetcher.accept(&tree.tables, r)?;
        }
        let mut needs = Vec::new();
        for i in 0..self.keys.len() {
            if self.results[i].is_some() {
                continue;
            }
            match tree.get_step(&self.keys[i], self.snapshot, self.now, &mut self.states[i], &mut self.fetcher)? {
                Ok(found) => self.results[i] = Some(found),
                Err(need) => needs.push(need),
            }
        }
        if !needs.is_empty() {
            return Ok(Poll::Need(self.fetcher.request(needs)));
        }
        Ok(Poll::Ready(self.results.iter_mut().map(|r| r.take().unwrap_or(Found::Absent)).collect()))
    }
}

/// Answers a request from whole objects held in memory (tests, and callers that have the
/// bytes already).
pub fn serve_from(parts: &[Part], object: impl Fn(&str) -> Option<Bytes>) -> CoreResult<Vec<PartReply>> {
    parts
        .iter()
        .map(|p| {
            let data = object(&p.path).ok_or_else(|| CoreError::Missing(p.path.to_string()))?;
            let size = data.len() as u64;
            if p.tail > 0 {
                let from = size.saturating_sub(p.tail) as usize;
                return Ok(PartReply { buffers: vec![data.slice(from..)], size });
            }
            let buffers = p.ranges.iter().map(|&(s, e)| data.slice(s as usize..e as usize)).collect();
            Ok(PartReply { buffers, size })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sst::{encode_sst, SstOptions};
    use std::collections::HashMap;

    pub fn rows(keys: std::ops::Range<u32>, seq: u64) -> Vec<Row> {
        keys.map(|i| Row::value(format!("k{i:06}").into_bytes(), format!("v{i}-{seq}").into_bytes(), seq)).collect()
    }

    pub struct World {
        pub objects: HashMap<String, Bytes>,
        pub tables: Arc<Tables>,
    }

    impl World {
        pub fn new(cache: usize) -> Self {
            World { objects: HashMap::new(), tables: Arc::new(Tables::new(cache, None)) }
        }

        pub fn sst(&mut self, name: &str, rows: &[Row], block_size: usize) -> TableRef {
            let data = encode_sst(rows, SstOptions { block_size, ..SstOptions::compacted() }).unwrap();
            self.objects.insert(name.to_string(), Bytes::from(data));
            TableRef {
                slot: self.tables.slot(name).unwrap(),
                first: rows.first().map(|r| r.key.clone()),
                last: rows.last().map(|r| r.key.clone()),
                visible: None,
            }
        }

        pub fn serve(&self, parts: &[Part]) -> Vec<PartReply> {
            serve_from(parts, |p| self.objects.get(p).cloned()).unwrap()
        }
    }

    fn get_all(world: &World, tree: &Tree, keys: &[&[u8]], snapshot: u64) -> (Vec<Found>, usize) {
        let mut call = GetMany::new(keys.iter().map(|k| Bytes::copy_from_slice(k)).collect(), snapshot, 0);
        let mut replies = None;
        let mut rounds = 0;
        loop {
            match call.poll(tree, replies.take()).unwrap() {
                Poll::Ready(v) => return (v, rounds),
                Poll::Need(parts) => {
                    rounds += 1;
                    replies = Some(world.serve(&parts));
                }
            }
        }
    }

    #[test]
    fn searches_memtables_l0_then_runs_by_bisection() {
        let mut w = World::new(0);
        let run: Vec<TableRef> =
            (0..10).map(|i| w.sst(&format!("run/{i}.sst"), &rows(i * 100..i * 100 + 100, 1), 512)).collect();
        let l0 = w.sst("l0.sst", &rows(250..260, 5), 512);
        let mut mt = Memtable::new();
        mt.insert(&Row::value(&b"k000255"[..], &b"mem"[..], 9), false);
        mt.insert(&Row::tombstone(&b"k000256"[..], 9), false);
        let tree = Tree {
            memtables: vec![Arc::new(Mutex::new(mt))],
            levels: vec![(Bytes::new(), Level::Table(l0)), (Bytes::new(), Level::Run(run))],
            tables: w.tables.clone(),
            op: None,
        };
        let keys: [&[u8]; 6] = [b"k000255", b"k000256", b"k000257", b"k000777", b"k999999", b"a"];
        let (got, rounds) = get_all(&w, &tree, &keys, 100);
        assert_eq!(got[0], Found::Value(Bytes::from_static(b"mem")));
        assert_eq!(got[1], Found::Absent);
        assert_eq!(got[2], Found::Value(Bytes::from_static(b"v257-5")));
        assert_eq!(got[3], Found::Value(Bytes::from_static(b"v777-1")));
        assert_eq!(got[4], Found::Absent);
        assert_eq!(got[5], Found::Absent);
        // Open l0 and run/7 together, then their blocks together.
        assert!(rounds <= 4, "{rounds} rounds");
        assert_eq!(w.tables.open_count().unwrap(), 2, "only the SSTs that may hold a key are opened");
        // An older snapshot sees the older version.
        let (got, _) = get_all(&w, &tree, &[b"k000255"], 3);
        assert_eq!(got[0], Found::Value(Bytes::from_static(b"v255-1")));
    }

    #[test]
    fn a_key_whose_versions_span_two_ssts_of_a_run_reads_its_newest() {
        // A run written elsewhere (0.17.0 cuts between rows) may split a key's versions:
        // the newer ones end one SST, the older ones start the next.
        let mut w = World::new(0);
        let v = |seq: u64| Row::value(&b"k"[..], format!("v{seq}").into_bytes(), seq);
        let a = w.sst("run/a.sst", &[Row::value(&b"a"[..], &b"A"[..], 1), v(5), v(4)], 512);
        let b = w.sst("run/b.sst", &[v(3), Row::value(&b"z"[..], &b"Z"[..], 1)], 512);
        let tree = Tree {
            memtables: vec![],
            levels: vec![(Bytes::new(), Level::Run(vec![a, b]))],
            tables: w.tables.clone(),
            op: None,
        };
        let read = |snapshot| get_all(&w, &tree, &[b"k"], snapshot).0.remove(0);
        assert_eq!(read(10), Found::Value(Bytes::from_static(b"v5")));
        assert_eq!(read(4), Found::Value(Bytes::from_static(b"v4")));
        assert_eq!(read(3), Found::Value(Bytes::from_static(b"v3")));
        assert_eq!(read(2), Found::Absent);
    }

    #[test]
    fn opens_an_sst_whose_metadata_needs_several_reads() {
        // Index keys near the 64 KiB key limit: the index alone is larger than the first tail.
        let rows: Vec<Row> = (0..6u8).map(|i| Row::value(vec![b'a' + i; 65_000], vec![i; 10], 1)).collect();
        let mut w = World::new(1 << 20);
        let t = w.sst("big.sst", &rows, 4096);
        let tree = Tree {
            memtables: vec![],
            levels: vec![(Bytes::new(), Level::Table(t.clone()))],
            tables: w.tables.clone(),
            op: None,
        };
        let (got, rounds) = get_all(&w, &tree, &[&rows[3].key], 1);
        assert_eq!(got[0], Found::Value(rows[3].value.clone()));
        // The tail, then the rest of the metadata (at least one more read), then the block.
        assert!(rounds >= 3, "{rounds}");
        assert_eq!(t.slot.get().map(SstFile::num_blocks), Some(6));
    }

    #[test]
    fn projections_hide_keys_outside_the_range() {
        let mut w = World::new(0);
        let mut t = w.sst("p.sst", &rows(0..100, 1), 512);
        t.visible = Some(KeyRange {
            start: Bound::Included(Bytes::from_static(b"k000010")),
            end: Bound::Excluded(Bytes::from_static(b"k000020")),
        });
        let tree = Tree {
            memtables: vec![],
            levels: vec![(Bytes::new(), Level::Table(t))],
            tables: w.tables.clone(),
            op: None,
        };
        let (got, _) = get_all(&w, &tree, &[b"k000009", b"k000010", b"k000019", b"k000020"], 9);
        assert_eq!(got.iter().filter(|f| **f != Found::Absent).count(), 2);
        assert_eq!(got[1], Found::Value(Bytes::from_static(b"v10-1")));
    }
}
