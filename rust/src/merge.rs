//! K-way merge of sorted row sources.
//!
//! Every source yields rows ordered by user key ascending, then seq descending (an SST, a
//! memtable, a sorted run). The merge keeps one head row per source in a binary heap ordered
//! the same way, ties on (key, seq) going to the earlier source (sources are listed newest
//! first), and replaces the head in place after each row: one sift per row.
//!
//! Two modes:
//! - `AllVersions`: every version, for compaction (exact (key, seq) duplicates dropped);
//! - `Visible { snapshot_seq, now }`: for reads, the newest version of each key with
//!   `seq <= snapshot_seq`; the key is hidden when that version is a tombstone or expired at
//!   `now` (an expired row masks older versions, as a tombstone does). Merge operands are
//!   returned as they are: folding them needs the user's merge operator.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::format::row::{Row, RowKind};
use crate::source::{Part, PartReply, RowSource};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    AllVersions,
    Visible {
        snapshot_seq: u64,
        now: Option<i64>,
    },
    /// What a compaction writes: every version newer than `retain_seq` (a live snapshot may
    /// read it), then the newest version at or below it, nothing older. A row expired at
    /// `now` becomes a tombstone; at the `bottom` of the tree a tombstone with nothing older
    /// left to hide is dropped.
    Compaction {
        retain_seq: u64,
        now: Option<i64>,
        bottom: bool,
    },
}

struct Head {
    row: Row,
    src: usize,
    /// Descending walk: larger keys first, and a key's versions oldest first (the exact
    /// reverse of the forward order, which is what reversed sources yield).
    reverse: bool,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    /// "Greater" pops first from the max-heap: smaller key, then larger seq, then lower source.
    fn cmp(&self, other: &Self) -> Ordering {
        let forward = other.row.key.cmp(&self.row.key).then(self.row.seq.cmp(&other.row.seq));
        let order = if self.reverse { forward.reverse() } else { forward };
        order.then(other.src.cmp(&self.src))
    }
}

pub struct MergeIterator {
    sources: Vec<Box<dyn RowSource>>,
    heap: BinaryHeap<Head>,
    mode: MergeMode,
    /// Sources not yet asked for their first row (the merge may stop half-way through).
    unstarted: Vec<usize>,
    /// The source whose `Pending` stopped the merge.
    waiting: Option<usize>,
    /// AllVersions: the last emitted (key, seq). Visible: the last key already decided.
    /// Compaction: the key being written, and whether its base version is out already.
    last_key: Option<Bytes>,
    last_seq: u64,
    base_done: bool,
    reverse: bool,
    /// Descending visible walk: the newest version at or below the snapshot seen so far of
    /// the key being read (its versions arrive oldest first).
    candidate: Option<Row>,
    /// A source's error, held back while the good row before it went out (see `pop`).
    failed: Option<CoreError>,
}

impl MergeIterator {
    pub fn new(sources: Vec<Box<dyn RowSource>>, mode: MergeMode) -> Self {
        MergeIterator {
            heap: BinaryHeap::with_capacity(sources.len()),
            unstarted: (0..sources.len()).rev().collect(),
            waiting: None,
            sources,
            mode,
            last_key: None,
            last_seq: 0,
            base_done: false,
            reverse: false,
            candidate: None,
            failed: None,
        }
    }

    /// A descending merge of sources that each yield the exact reverse of merge order.
    /// Only `Visible` reads walk backwards.
    pub fn reversed(sources: Vec<Box<dyn RowSource>>, snapshot_seq: u64, now: Option<i64>) -> Self {
        let mut m = Self::new(sources, MergeMode::Visible { snapshot_seq, now });
        m.reverse = true;
        m
    }

    /// Forward walks: every source continues from the first key >= `key` (the caller checks
    /// that `key` is past what was returned already).
    pub fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        if self.reverse {
            return Err(CoreError::invalid("a descending iterator cannot seek"));
        }
        for s in &mut self.sources {
            s.seek(key)?;
        }
        self.heap.clear();
        self.unstarted = (0..self.sources.len()).rev().collect();
        self.waiting = None;
        Ok(())
    }

    /// The bytes the waiting source needs (after `Pending`).
    pub fn request(&mut self) -> CoreResult<Vec<Part>> {
        let src = self.waiting.ok_or_else(|| CoreError::invalid("no merge source is waiting for input"))?;
        Ok(self.sources[src].request())
    }

    /// The replies to `request`, for the waiting source.
    pub fn feed(&mut self, replies: Vec<PartReply>) -> CoreResult<()> {
        let src = self.waiting.ok_or_else(|| CoreError::invalid("no merge source is waiting for input"))?;
        self.sources[src].feed(replies)
    }

    fn start(&mut self) -> CoreResult<()> {
        while let Some(&src) = self.unstarted.last() {
            match self.sources[src].next_row() {
                Ok(Some(row)) => self.heap.push(Head { row, src, reverse: self.reverse }),
                Ok(None) => {}
                Err(CoreError::Pending) => {
                    self.waiting = Some(src);
                    return Err(CoreError::Pending);
                }
                Err(e) => return Err(e),
            }
            self.unstarted.pop();
        }
        Ok(())
    }

    /// The source that needs input after `next_row` returned `Err(CoreError::Pending)`.
    pub fn waiting(&self) -> Option<usize> {
        self.waiting
    }

    pub fn source_mut(&mut self, i: usize) -> Option<&mut Box<dyn RowSource>> {
        self.sources.get_mut(i)
    }

    pub fn source(&self, i: usize) -> Option<&dyn RowSource> {
        self.sources.get(i).map(|s| &**s)
    }

    /// The next row in merged order, every version. A source that needs input stops the
    /// merge with nothing consumed: the head row stays until the source can replace it.
    fn pop(&mut self) -> CoreResult<Option<Row>> {
        let Some(mut top) = self.heap.peek_mut() else {
            return Ok(None);
        };
        match self.sources[top.src].next_row() {
            Ok(Some(next)) => Ok(Some(std::mem::replace(&mut top.row, next))),
            Ok(None) => Ok(Some(PeekMut::pop(top).row)),
            Err(CoreError::Pending) => {
                self.waiting = Some(top.src);
                Err(CoreError::Pending)
            }
            Err(e) => {
                // The head row itself is good: hand it out; the error comes with the next call,
                // and the source is asked again before anything else after that (as if not
                // started), so a retry meets the error again until the source can go on.
                let src = top.src;
                let row = PeekMut::pop(top).row;
                self.unstarted.push(src);
                self.failed = Some(e);
                Ok(Some(row))
            }
        }
    }

    pub fn next_row(&mut self) -> CoreResult<Option<Row>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.start()?;
        self.waiting = None;
        if self.reverse {
            return self.next_row_reverse();
        }
        loop {
            let Some(row) = self.pop()? else {
                return Ok(None);
            };
            let same_key = self.last_key.as_ref() == Some(&row.key);
            match self.mode {
                MergeMode::AllVersions => {
                    if same_key && self.last_seq == row.seq {
                        continue;
                    }
                    self.last_seq = row.seq;
                    self.last_key = Some(row.key.clone());
                    return Ok(Some(row));
                }
                MergeMode::Visible { snapshot_seq, now } => {
                    if same_key || row.seq > snapshot_seq {
                        continue;
                    }
                    self.last_key = Some(row.key.clone());
                    if row.kind == RowKind::Tombstone || now.is_some_and(|t| row.is_expired(t)) {
                        continue;
                    }
                    return Ok(Some(row));
                }
                MergeMode::Compaction { retain_seq, now, bottom } => {
                    if !same_key {
                        self.last_key = Some(row.key.clone());
                        self.base_done = false;
                        self.last_seq = u64::MAX;
                    } else if self.base_done || row.seq == self.last_seq {
                        continue;
                    }
                    self.last_seq = row.seq;
                    let mut row = row;
                    if row.kind != RowKind::Tombstone && now.is_some_and(|t| row.is_expired(t)) {
                        row = Row { value: Bytes::new(), kind: RowKind::Tombstone, expire_ts: None, ..row };
                    }
                    // A merge operand is no base: older versions stay until one is (folding
                    // them needs the user's merge operator).
                    if row.seq <= retain_seq && row.kind != RowKind::Merge {
                        self.base_done = true;
                        if bottom && row.kind == RowKind::Tombstone {
                            continue;
                        }
                    }
                    return Ok(Some(row));
                }
            }
        }
    }

    fn next_row_reverse(&mut self) -> CoreResult<Option<Row>> {
        let MergeMode::Visible { snapshot_seq, now } = self.mode else {
            return Err(CoreError::invalid("only visible reads walk backwards"));
        };
        let shown = |r: &Row| r.kind != RowKind::Tombstone && !now.is_some_and(|t| r.is_expired(t));
        loop {
            let Some(row) = self.pop()? else {
                return Ok(self.candidate.take().filter(shown));
            };
            if self.last_key.as_ref() == Some(&row.key) {
                if row.seq <= snapshot_seq {
                    self.candidate = Some(row);
                }
                continue;
            }
            // A new key: the previous one is decided.
            self.last_key = Some(row.key.clone());
            let done = std::mem::replace(&mut self.candidate, (row.seq <= snapshot_seq).then_some(row));
            if let Some(r) = done.filter(shown) {
                return Ok(Some(r));
            }
        }
    }

    /// Up to `n` rows; fewer only at the end.
    pub fn next_batch(&mut self, n: usize) -> CoreResult<Vec<Row>> {
        let mut out = Vec::with_capacity(n.min(4096));
        while out.len() < n {
            match self.next_row()? {
                Some(row) => out.push(row),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::VecSource;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
        rows.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
        rows.dedup_by(|a, b| a.key == b.key && a.seq == b.seq);
        rows
    }

    fn arb_row() -> impl Strategy<Value = Row> {
        (prop::collection::vec(0u8..4, 1..3), 0u64..20, 0u8..3, prop::option::of(0i64..20)).prop_map(
            |(key, seq, kind, exp)| {
                let mut r = Row::value(key, seq.to_be_bytes().to_vec(), seq);
                if kind == 1 {
                    r = Row::tombstone(r.key, seq);
                } else {
                    r.expire_ts = exp;
                }
                r
            },
        )
    }

    proptest! {
        #[test]
        fn merge_equals_sorted_model(
            sources in prop::collection::vec(prop::collection::vec(arb_row(), 0..30), 0..6),
            snapshot in 0u64..25,
            now in 0i64..25,
        ) {
            // A (key, seq) pair lives in one source only: seqs are unique per write.
            let mut seen = std::collections::HashSet::new();
            let sources: Vec<Vec<Row>> = sources
                .into_iter()
                .map(|s| sorted(s.into_iter().filter(|r| seen.insert((r.key.clone(), r.seq))).collect()))
                .collect();
            let all: Vec<Row> = sorted(sources.iter().flatten().cloned().collect());

            let boxed = |s: &Vec<Vec<Row>>| s.iter().enumerate()
                .map(|(i, rows)| Box::new(VecSource::new(rows.clone(), format!("s{i}"))) as Box<dyn RowSource>)
                .collect::<Vec<_>>();
            let mut m = MergeIterator::new(boxed(&sources), MergeMode::AllVersions);
            prop_assert_eq!(m.next_batch(usize::MAX).unwrap(), all.clone());

            let mut model = BTreeMap::new();
            for r in &all {
                if r.seq <= snapshot {
                    model.entry(r.key.clone()).or_insert_with(|| r.clone());
                }
            }
            let expect: Vec<Row> = model.into_values()
                .filter(|r| r.kind != RowKind::Tombstone && !r.is_expired(now))
                .collect();
            let mut m = MergeIterator::new(boxed(&sources), MergeMode::Visible { snapshot_seq: snapshot, now: Some(now) });
            prop_assert_eq!(m.next_batch(usize::MAX).unwrap(), expect);
        }
    }

    #[test]
    fn unsorted_source_is_an_error() {
        let rows = vec![Row::value(&b"b"[..], &b""[..], 1), Row::value(&b"a"[..], &b""[..], 1)];
        let mut m = MergeIterator::new(vec![Box::new(VecSource::new(rows, "src"))], MergeMode::AllVersions);
        assert!(m.next_batch(10).is_err());
    }
}
