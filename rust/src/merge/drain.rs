//! The columnar fast path of a forward visible walk (`MergeIterator::drain_visible`): rows go
//! from the sources' blocks to a sink without a `Row` each, wherever one source is alone in
//! a key range (below every other source's head).

use bytes::Bytes;

use super::{MergeIterator, MergeMode};
use crate::error::CoreResult;
use crate::format::row::{RowKind, RowRef};
use crate::source::RowSink;

/// The visible versions of a forward walk on their way to a sink (`drain_visible`): of each
/// key the newest version at or below the snapshot, tombstones and expired rows hidden,
/// decided exactly as `next_row` decides them.
struct Visible<'a> {
    sink: &'a mut dyn RowSink,
    snapshot_seq: u64,
    now: Option<i64>,
    /// The last key decided (`MergeIterator::last_key`), when `decided`.
    last_key: &'a mut Vec<u8>,
    decided: bool,
    /// Rows taken from the sources' drains (not heads).
    drained: usize,
}

impl RowSink for Visible<'_> {
    fn offer(&mut self, r: &RowRef<'_>) -> bool {
        if (self.decided && self.last_key.as_slice() == r.key) || r.seq > self.snapshot_seq {
            return true;
        }
        if r.kind == RowKind::Merge {
            // Refused: `next_row` hands it to the caller, which names the key it cannot fold.
            return false;
        }
        let hidden = r.kind == RowKind::Tombstone || self.now.is_some_and(|t| r.expire_ts.is_some_and(|ts| ts <= t));
        if !hidden && !self.sink.offer(r) {
            return false;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(r.key);
        self.decided = true;
        true
    }
}

impl MergeIterator {
    /// Forward visible walks without an operator: hands `sink` the visible rows in merge
    /// order straight from the sources' blocks (`RowSource::drain`): each head row, then the
    /// rows of its source below every other source's head, where no other source can hold a
    /// version of the same key. Stops when the sink refuses a row or the sources need their
    /// row-by-row path; `next_row` goes on from there, and mixing the two is seamless.
    /// Returns how many rows the drains took besides the heads (0: the sources interleave,
    /// and `next_row` is as good).
    pub fn drain_visible(&mut self, sink: &mut dyn RowSink) -> CoreResult<usize> {
        let MergeMode::Visible { snapshot_seq, now } = self.mode else { return Ok(0) };
        if self.reverse || self.op.is_some() || self.held.is_some() || self.fold_key.is_some() || self.failed.is_some()
        {
            return Ok(0);
        }
        self.start()?;
        self.waiting = None;
        let mut last = std::mem::take(&mut self.drained_key);
        last.clear();
        if let Some(k) = &self.last_key {
            last.extend_from_slice(k);
        }
        let decided = self.last_key.is_some();
        let mut filter = Visible { sink, snapshot_seq, now, last_key: &mut last, decided, drained: 0 };
        let out = self.drain_heads(&mut filter);
        let drained = filter.drained;
        if filter.decided && self.last_key.as_deref() != Some(filter.last_key.as_slice()) {
            self.last_key = Some(Bytes::copy_from_slice(filter.last_key));
        }
        self.drained_key = last;
        out.map(|()| drained)
    }

    fn drain_heads(&mut self, filter: &mut Visible<'_>) -> CoreResult<()> {
        /// Counts what a source's drain takes.
        struct Counted<'a, 'b>(&'a mut Visible<'b>, usize);
        impl RowSink for Counted<'_, '_> {
            fn offer(&mut self, r: &RowRef<'_>) -> bool {
                let took = self.0.offer(r);
                self.1 += usize::from(took);
                took
            }
        }
        loop {
            let Some(top) = self.heap.peek() else { return Ok(()) };
            let src = top.src;
            if !filter.offer(&top.row.as_ref()) {
                return Ok(());
            }
            // The smallest key among the other heads: only below it is `src` alone.
            let bound = self.heap.iter().filter(|h| h.src != src).map(|h| &h.row.key).min().cloned();
            self.heap.pop();
            // Asked for its next head before anything else, as if not started.
            self.unstarted.push(src);
            let mut counted = Counted(filter, 0);
            let drained = self.sources[src].drain(bound.as_deref(), &mut counted);
            filter.drained += counted.1;
            drained?;
            self.start()?;
            self.waiting = None;
        }
    }
}
