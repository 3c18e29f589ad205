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
//!   `now` (an expired row masks older versions, as a tombstone does). With a merge operator
//!   (`with_operator`), a key whose newest version is an operand is folded down to its base
//!   (`operator`); without one the operand is returned as it is, for the caller to refuse.

mod drain;

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::format::row::{Row, RowKind};
use crate::operator::{version, Below, Operator, Pending, Version};
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
    /// `now` becomes a tombstone (an expired merge operand is dropped: reads skip it); at the
    /// `bottom` of the tree a tombstone with nothing older left to hide is dropped. With an
    /// operator, operands at or below `retain_seq` fold as SlateDB folds them: a run of
    /// operands with one expiry time, onto the base below when it has that expiry too (a
    /// value row), else into one operand row (a later read folds it further).
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
    op: Option<Operator>,
    /// A row taken from the sources but not handled yet (it ended a fold).
    held: Option<Row>,
    /// The key whose operands are being folded (forward walks), their newest seq, expiry
    /// and newest create time (compaction keeps them on the folded row).
    fold_key: Option<Bytes>,
    fold_seq: u64,
    fold_expire: Option<i64>,
    fold_create: Option<i64>,
    pending: Pending,
    /// Descending walk with an operator: the key's base so far and the live operands above
    /// it, oldest first.
    rev_base: Below,
    rev_ops: Vec<Bytes>,
    /// `drain_visible`'s copy of `last_key`, kept for its buffer.
    drained_key: Vec<u8>,
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
            op: None,
            held: None,
            fold_key: None,
            fold_seq: 0,
            fold_expire: None,
            fold_create: None,
            pending: Pending::default(),
            rev_base: Below::End,
            rev_ops: Vec::new(),
            drained_key: Vec::new(),
        }
    }

    /// Folds merge operands with `op` (Visible and Compaction modes).
    #[must_use]
    pub fn with_operator(mut self, op: Option<Operator>) -> Self {
        self.op = op;
        self
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
        // A fold in progress restarts from the sources, which go back to `key`.
        self.held = None;
        self.fold_key = None;
        self.pending = Pending::default();
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

    /// The held row, else the next one from the sources.
    #[inline]
    fn take(&mut self) -> CoreResult<Option<Row>> {
        match self.held.take() {
            Some(row) => Ok(Some(row)),
            None => self.pop(),
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
            let Some(row) = self.take()? else {
                // The key being folded ends with the input.
                return match self.fold_key {
                    Some(_) => self.fold_onto(Below::End),
                    None => Ok(None),
                };
            };
            let out = match self.mode {
                MergeMode::AllVersions => {
                    if self.last_key.as_ref() == Some(&row.key) && self.last_seq == row.seq {
                        continue;
                    }
                    self.last_seq = row.seq;
                    self.last_key = Some(row.key.clone());
                    Some(row)
                }
                // Without an operator (the common scan), the newest visible version inline:
                // this loop runs once per row scanned.
                MergeMode::Visible { snapshot_seq, now } if self.op.is_none() => {
                    if self.last_key.as_ref() == Some(&row.key) || row.seq > snapshot_seq {
                        continue;
                    }
                    self.last_key = Some(row.key.clone());
                    if row.kind == RowKind::Tombstone || now.is_some_and(|t| row.is_expired(t)) {
                        continue;
                    }
                    return Ok(Some(row));
                }
                MergeMode::Visible { snapshot_seq, now } => self.visible(row, snapshot_seq, now)?,
                MergeMode::Compaction { retain_seq, now, bottom } => self.compacted(row, retain_seq, now, bottom)?,
            };
            if out.is_some() {
                return Ok(out);
            }
        }
    }

    /// Starts folding the operands of `row`'s key (the newest one is `row`).
    fn start_fold(&mut self, row: Row, live: bool) {
        self.fold_key = Some(row.key);
        self.fold_seq = row.seq;
        self.fold_expire = row.expire_ts;
        self.fold_create = row.create_ts;
        if live {
            self.pending.operands.push(row.value);
        }
    }

    /// Ends the fold: its operands applied onto `base` (a value row; an operand row when
    /// there was no base at all), or None when nothing is left (no operand and no value).
    fn fold_onto(&mut self, below: Below) -> CoreResult<Option<Row>> {
        let key = self.fold_key.take().ok_or_else(|| CoreError::Internal("no fold in progress".into()))?;
        let op = self.op.clone().ok_or_else(|| CoreError::Internal("a fold needs an operator".into()))?;
        // Only a compaction writes an operand row back (more operands may lie below it); a
        // read's answer is a value.
        let compaction = matches!(self.mode, MergeMode::Compaction { .. });
        let kind = if below == Below::End && compaction { RowKind::Merge } else { RowKind::Value };
        let Some(value) = self.pending.finish(&*op, &key, below.value())? else { return Ok(None) };
        let (expire_ts, create_ts) = (self.fold_expire, self.fold_create);
        Ok(Some(Row { key, value, seq: self.fold_seq, kind, expire_ts, create_ts }))
    }

    #[inline]
    fn visible(&mut self, row: Row, snapshot_seq: u64, now: Option<i64>) -> CoreResult<Option<Row>> {
        if let Some(key) = &self.fold_key {
            if row.key != *key {
                self.held = Some(row);
                return self.fold_onto(Below::End);
            }
            return match version(&row, now) {
                Version::Operand => {
                    self.pending.operands.push(row.value);
                    Ok(None)
                }
                Version::Skip => Ok(None),
                Version::Base(base) => self.fold_onto(Below::Base(base)),
            };
        }
        if self.last_key.as_ref() == Some(&row.key) || row.seq > snapshot_seq {
            return Ok(None);
        }
        self.last_key = Some(row.key.clone());
        if row.kind == RowKind::Merge && self.op.is_some() {
            let live = matches!(version(&row, now), Version::Operand);
            self.start_fold(row, live);
            return Ok(None);
        }
        if row.kind == RowKind::Tombstone || now.is_some_and(|t| row.is_expired(t)) {
            return Ok(None);
        }
        Ok(Some(row))
    }

    fn compacted(&mut self, row: Row, retain_seq: u64, now: Option<i64>, bottom: bool) -> CoreResult<Option<Row>> {
        let same_key = self.last_key.as_ref() == Some(&row.key);
        if self.fold_key.is_some() && !same_key {
            self.held = Some(row);
            return self.fold_onto(Below::End);
        }
        if !same_key {
            self.last_key = Some(row.key.clone());
            self.base_done = false;
            self.last_seq = u64::MAX;
        } else if self.base_done || row.seq == self.last_seq {
            return Ok(None);
        }
        let expired = now.is_some_and(|t| row.is_expired(t));
        if row.kind == RowKind::Merge && expired {
            self.last_seq = row.seq;
            return Ok(None); // reads skip it: dropped, and older versions stay
        }
        let mut row = row;
        if row.kind == RowKind::Value && expired {
            row = Row { value: Bytes::new(), kind: RowKind::Tombstone, expire_ts: None, ..row };
        }
        if self.fold_key.is_some() {
            // A fold takes only rows with its expiry time, so the folded row expires as its
            // parts would have.
            if row.expire_ts != self.fold_expire {
                let out = self.fold_onto(Below::End);
                self.held = Some(row); // not consumed: last_seq stays
                return out;
            }
            self.last_seq = row.seq;
            self.fold_create = self.fold_create.max(row.create_ts);
            return match row.kind {
                RowKind::Merge => {
                    self.pending.operands.push(row.value);
                    Ok(None)
                }
                RowKind::Value => {
                    self.base_done = true;
                    self.fold_onto(Below::Base(Some(row.value)))
                }
                RowKind::Tombstone => {
                    self.base_done = true;
                    self.fold_onto(Below::Base(None))
                }
            };
        }
        self.last_seq = row.seq;
        if row.seq <= retain_seq {
            if row.kind == RowKind::Merge {
                // Without an operator an operand is no base: older versions stay.
                if self.op.is_some() {
                    self.start_fold(row, true);
                    return Ok(None);
                }
            } else {
                self.base_done = true;
                if bottom && row.kind == RowKind::Tombstone {
                    return Ok(None);
                }
            }
        }
        Ok(Some(row))
    }

    fn next_row_reverse(&mut self) -> CoreResult<Option<Row>> {
        let MergeMode::Visible { snapshot_seq, now } = self.mode else {
            return Err(CoreError::invalid("only visible reads walk backwards"));
        };
        loop {
            let Some(row) = self.take()? else {
                return self.decide_reverse(now);
            };
            if self.last_key.as_ref() != Some(&row.key) {
                // A new key: the previous one is decided (its versions came oldest first).
                self.last_key = Some(row.key.clone());
                let done = self.decide_reverse(now)?;
                if row.seq <= snapshot_seq {
                    self.gather_reverse(row, now);
                }
                if done.is_some() {
                    return Ok(done);
                }
            } else if row.seq <= snapshot_seq {
                self.gather_reverse(row, now);
            }
        }
    }

    /// A version of the key being walked backwards, older ones first.
    fn gather_reverse(&mut self, row: Row, now: Option<i64>) {
        if self.op.is_some() {
            match version(&row, now) {
                Version::Operand => self.rev_ops.push(row.value.clone()),
                Version::Skip => {}
                Version::Base(base) => {
                    self.rev_base = Below::Base(base);
                    self.rev_ops.clear();
                }
            }
        }
        self.candidate = Some(row);
    }

    /// The value of the key walked backwards so far: the newest version, or with an
    /// operator its operands folded onto the base below them.
    fn decide_reverse(&mut self, now: Option<i64>) -> CoreResult<Option<Row>> {
        let Some(newest) = self.candidate.take() else { return Ok(None) };
        let base = std::mem::take(&mut self.rev_base).value();
        let ops = std::mem::take(&mut self.rev_ops);
        match &self.op {
            Some(op) if !ops.is_empty() => {
                let value = op.fold(&newest.key, base.as_deref(), &ops)?;
                Ok(Some(Row::value(newest.key, value, newest.seq)))
            }
            Some(_) => Ok(base.map(|v| Row::value(newest.key, v, newest.seq))),
            None => {
                let shown = newest.kind != RowKind::Tombstone && !now.is_some_and(|t| newest.is_expired(t));
                Ok(shown.then_some(newest))
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
