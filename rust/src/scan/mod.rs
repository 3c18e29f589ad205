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

mod columns;
#[cfg(test)]
mod columns_tests;
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

pub use columns::ColumnPage;
pub use sources::{MemSource, RunSource, Span, TableSource};

/// Rows a page reserves room for at most up front (a larger page grows as it fills).
const PAGE_RESERVE: usize = 65_536;
/// Rows a columnar page takes row by row after a drain that took almost none (the sources
/// interleave key by key there, and draining costs more than it saves).
const SLOW_STRETCH: usize = 64;

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
    /// The columnar page being built (kept when a fetch stops it).
    columns: Option<ColumnPage>,
    /// Bytes of keys and of values of the last columnar page: room a new one reserves.
    expect: (usize, usize),
    /// Rows still to take row by row before draining again (`SLOW_STRETCH`).
    slow: usize,
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
        Scan { merge, span, page: Vec::new(), last: None, asked: None, columns: None, expect: (0, 0), slow: 0 }
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
        self.take_replies(replies)?;
        if let Some(columns) = self.columns.take() {
            // A columnar page a failed fetch interrupted: its rows come first.
            self.page.splice(0..0, columns.into_rows());
        }
        let mut bytes: usize = self.page.iter().map(Row::data_len).sum();
        // Room for the page at once: growing it row by row moved every row several times.
        self.page.reserve(n.min(PAGE_RESERVE).saturating_sub(self.page.len()));
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

    /// `next_page_sized` as two binary columns (`ColumnPage`), filled straight from the
    /// blocks wherever a source is alone in a key range (`MergeIterator::drain_visible`), row
    /// by row elsewhere: the same rows, without a `Row` each.
    pub fn next_columns(
        &mut self,
        n: usize,
        max_bytes: usize,
        replies: Option<(Vec<Part>, Vec<PartReply>)>,
    ) -> CoreResult<Poll<ColumnPage>> {
        self.take_replies(replies)?;
        let mut page = self.columns.take().unwrap_or_else(|| ColumnPage::new(n, max_bytes, self.expect));
        // The row that went over the last page's bounds comes first.
        let mut carried = 0;
        for row in &self.page {
            if !page.push(&row.key, &row.value)? {
                break;
            }
            carried += 1;
        }
        self.page.drain(..carried);
        while !page.is_full() && self.page.is_empty() {
            if self.slow == 0 {
                match self.merge.drain_visible(&mut page) {
                    Ok(drained) if drained < 8 => self.slow = SLOW_STRETCH,
                    Ok(_) => {}
                    Err(CoreError::Pending) => return self.need_columns(page),
                    Err(_) if !page.is_empty() => break,
                    Err(e) => return Err(e),
                }
                if page.is_full() {
                    break;
                }
            } else {
                self.slow -= 1;
            }
            match self.merge.next_row() {
                Ok(Some(row)) => {
                    if row.kind == RowKind::Merge {
                        self.columns = Some(page);
                        return Err(missing_operator(&row.key));
                    }
                    if !page.push(&row.key, &row.value)? {
                        self.page.push(row);
                    }
                }
                Ok(None) => break,
                Err(CoreError::Pending) => return self.need_columns(page),
                // As for row pages: the rows before a broken block go out first.
                Err(_) if !page.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(k) = page.last_key() {
            self.last = Some(Bytes::copy_from_slice(k));
        }
        self.expect = (page.keys.len(), page.values.len());
        Ok(Poll::Ready(page))
    }

    fn take_replies(&mut self, replies: Option<(Vec<Part>, Vec<PartReply>)>) -> CoreResult<()> {
        if let Some((parts, r)) = replies {
            // Replies to an older request (a Fetch kept across a seek, or resumed late) could
            // land on another SST's source: only the current request's are taken.
            if self.asked.as_ref() != Some(&parts) {
                return Err(CoreError::invalid("this Fetch no longer answers the scan's current request"));
            }
            self.asked = None;
            self.merge.feed(r)?;
        }
        Ok(())
    }

    fn need_columns(&mut self, page: ColumnPage) -> CoreResult<Poll<ColumnPage>> {
        let parts = self.merge.request()?;
        self.asked = Some(parts.clone());
        self.columns = Some(page);
        Ok(Poll::Need(parts))
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
        if let Some(columns) = self.columns.take() {
            self.page.splice(0..0, columns.into_rows());
        }
        self.page.retain(|r| r.key.as_ref() >= key);
        if self.page.is_empty() {
            self.merge.seek(key)?;
        }
        Ok(())
    }
}
