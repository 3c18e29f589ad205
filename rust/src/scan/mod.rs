//! Streaming range reads: row sources over memtables, single SSTs and sorted runs, merged by
//! `merge::MergeIterator`. Memory is a few blocks per source, whatever the range:
//! - a memtable is walked a chunk of rows at a time (its lock is not held between chunks);
//! - an SST reads its data blocks ahead in coalesced ranges of about `READAHEAD_BYTES`;
//! - a sorted run opens its SSTs only when the walk reaches them.
//!
//! A source that needs bytes stops with `CoreError::Pending`; `request` then names them as
//! `fetch::Part`s and `feed` takes the replies. Sources of local SSTs read their blocks
//! themselves and never stop. The same `TableSource` feeds compactions (every version, no
//! cache) and scans (visible versions, through the block cache).

mod sources;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::fetch::{Part, PartReply, Poll};
use crate::format::row::{show_key, Row, RowKind};
use crate::merge::{MergeIterator, MergeMode};
use crate::operator::missing_operator;
use crate::read::{Level, Tree};
use crate::source::RowSource;

pub use sources::{MemSource, RunSource, Span, TableSource};

/// A scan of a `Tree`: its visible rows in `[start, end)`, a page at a time.
pub struct Scan {
    merge: MergeIterator,
    span: Span,
    /// Rows merged for the page being built (kept when a fetch stops it).
    page: Vec<Row>,
    /// The last key of the pages returned: a seek must move past it.
    last: Option<Bytes>,
    /// The request a `Need` handed out, which the next replies must answer.
    asked: Option<Vec<Part>>,
}

impl Scan {
    pub fn new(tree: &Tree, span: Span, snapshot: u64, now: i64) -> Self {
        let mut sources: Vec<Box<dyn RowSource>> = Vec::new();
        for mt in &tree.memtables {
            sources.push(Box::new(MemSource::new(mt.clone(), span.clone(), snapshot)));
        }
        for (_, level) in &tree.levels {
            match level {
                Level::Table(t) => {
                    if t.overlaps(span.start.as_deref(), span.end.as_deref()) {
                        sources.push(Box::new(TableSource::new(tree.tables.clone(), t, span.clone(), true)));
                    }
                }
                Level::Run(run) => {
                    sources.push(Box::new(RunSource::new(tree.tables.clone(), run.clone(), span.clone(), true)));
                }
            }
        }
        let merge = if span.reverse {
            MergeIterator::reversed(sources, snapshot, Some(now))
        } else {
            MergeIterator::new(sources, MergeMode::Visible { snapshot_seq: snapshot, now: Some(now) })
        }
        .with_operator(tree.op.clone());
        Scan { merge, span, page: Vec::new(), last: None, asked: None }
    }

    /// Up to `n` rows (fewer only at the end), or the bytes needed first; `replies` answers
    /// the previous `Need`. A page stopped by a `Need` goes on where it stopped.
    pub fn next_page(&mut self, n: usize, replies: Option<(Vec<Part>, Vec<PartReply>)>) -> CoreResult<Poll<Vec<Row>>> {
        self.next_page_sized(n, usize::MAX, replies)
    }

    /// `next_page` bounded by bytes too: rows whose keys and values come to at most
    /// `max_bytes` (one row at least, however large), so a scan of big values streams in
    /// pages of bounded memory (`to_arrow`).
    pub fn next_page_sized(
        &mut self,
        n: usize,
        max_bytes: usize,
        replies: Option<(Vec<Part>, Vec<PartReply>)>,
    ) -> CoreResult<Poll<Vec<Row>>> {
        if let Some((parts, r)) = replies {
            // Replies to an older request (a Fetch kept across a seek, or resumed late) could
            // land on another SST's source: only the current request's are taken.
            if self.asked.as_ref() != Some(&parts) {
                return Err(CoreError::invalid("this Fetch no longer answers the scan's current request"));
            }
            self.asked = None;
            self.merge.feed(r)?;
        }
        let mut bytes: usize = self.page.iter().map(Row::data_len).sum();
        while self.page.len() < n && bytes < max_bytes {
            match self.merge.next_row() {
                Ok(Some(row)) => {
                    if row.kind == RowKind::Merge {
                        return Err(missing_operator(&row.key));
                    }
                    bytes += row.data_len();
                    self.page.push(row);
                }
                Ok(None) => break,
                Err(CoreError::Pending) => {
                    let parts = self.merge.request()?;
                    self.asked = Some(parts.clone());
                    return Ok(Poll::Need(parts));
                }
                // The rows before a broken block go out first; the error stays where it is
                // (the block is not consumed) and comes with the next page.
                Err(_) if !self.page.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        let mut page = std::mem::take(&mut self.page);
        if bytes > max_bytes && page.len() > 1 {
            // The row that went over starts the next page.
            self.page = page.split_off(page.len() - 1);
        }
        if let Some(r) = page.last() {
            self.last = Some(r.key.clone());
        }
        Ok(Poll::Ready(page))
    }

    /// Moves a forward scan to the first key >= `key`, which must lie in the scan's range and
    /// past every key returned so far (no row is returned twice).
    pub fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        if self.span.reverse {
            return Err(CoreError::invalid("a descending iterator cannot seek"));
        }
        let outside = self.span.start.as_ref().is_some_and(|s| key < s.as_ref())
            || self.span.end.as_ref().is_some_and(|e| key >= e.as_ref());
        if outside {
            return Err(CoreError::invalid(format!("seek key {} is outside the iterator's range", show_key(key))));
        }
        if self.last.as_ref().is_some_and(|l| key <= l.as_ref()) {
            return Err(CoreError::invalid(format!("seek key {} is not past the iterator's position", show_key(key))));
        }
        // Rows of a page a failed fetch interrupted: those below the target go; if any remain,
        // the merge is already past them and goes on from there.
        self.asked = None;
        self.page.retain(|r| r.key.as_ref() >= key);
        if self.page.is_empty() {
            self.merge.seek(key)?;
        }
        Ok(())
    }
}
