//! The row sources a scan merges: a memtable range (`MemSource`), one SST read ahead
//! through the fetch contract (`TableSource`) and a sorted run walked SST by SST
//! (`RunSource`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::fetch::{Fetcher, Need, Part, PartReply, TableSlot, Tables, READAHEAD_BYTES};
use crate::format::block::{Block, BlockIter};
use crate::format::row::Row;
use crate::memtable::Memtable;
use crate::read::TableRef;
use crate::source::{RowSink, RowSource};
use crate::sst::SstFile;

/// Rows of a memtable fetched per lock.
const MEMTABLE_CHUNK: usize = 256;

/// Which part of the key space a walk covers, and in which direction.
#[derive(Clone, Debug, Default)]
pub struct Span {
    pub start: Option<Bytes>,
    pub end: Option<Bytes>,
    pub reverse: bool,
}

impl Span {
    fn below_end(&self, key: &[u8]) -> bool {
        self.end.as_ref().is_none_or(|e| key < e.as_ref())
    }

    fn above_start(&self, key: &[u8]) -> bool {
        self.start.as_ref().is_none_or(|s| key >= s.as_ref())
    }

    /// Narrows a forward walk to keys >= `key`.
    fn seek(&mut self, key: &[u8]) {
        if self.start.as_ref().is_none_or(|s| key > s.as_ref()) {
            self.start = Some(Bytes::copy_from_slice(key));
        }
    }
}

pub struct MemSource {
    mt: Arc<Mutex<Memtable>>,
    span: Span,
    snapshot: u64,
    after: Option<(Bytes, u64)>,
    buf: VecDeque<Row>,
    done: bool,
}

impl MemSource {
    pub fn new(mt: Arc<Mutex<Memtable>>, span: Span, snapshot: u64) -> Self {
        MemSource { mt, span, snapshot, after: None, buf: VecDeque::new(), done: false }
    }
}

impl RowSource for MemSource {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        if self.buf.is_empty() && !self.done {
            let m = self.mt.lock().map_err(|_| CoreError::poisoned("memtable"))?;
            let rows = m.chunk(
                self.after.as_ref(),
                self.span.start.as_deref(),
                self.span.end.as_deref(),
                self.snapshot,
                self.span.reverse,
                MEMTABLE_CHUNK,
            );
            drop(m);
            self.done = rows.len() < MEMTABLE_CHUNK;
            if let Some(last) = rows.last() {
                self.after = Some((last.key.clone(), last.seq));
            }
            self.buf.extend(rows);
        }
        Ok(self.buf.pop_front())
    }

    fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        self.span.seek(key);
        self.after = None;
        self.buf.clear();
        self.done = false;
        Ok(())
    }
}

/// What a table source waits for.
enum Waiting {
    Nothing,
    Open,
    /// Blocks `first..first+count` (forward) read as one range.
    Blocks {
        first: usize,
        count: usize,
        range: (u64, u64),
    },
}

/// The rows of one SST within a span, its blocks read ahead.
pub struct TableSource {
    tables: Arc<Tables>,
    slot: Arc<TableSlot>,
    span: Span,
    use_cache: bool,
    /// Bytes of consecutive blocks read at once.
    readahead: u64,
    fetcher: Fetcher,
    /// Blocks still to read: `next..stop` forward; reverse reads `stop..next` downwards.
    next: usize,
    stop: usize,
    positioned: bool,
    ready: VecDeque<(usize, Block)>,
    /// Forward walks: the block being read (its index), walked in place.
    cur: Option<(usize, BlockIter)>,
    /// Descending walks: the rows of the block being read, reversed.
    rows: VecDeque<Row>,
    waiting: Waiting,
    finished: bool,
}

impl TableSource {
    /// `use_cache`: look in the block cache first (reads); a compaction reads each block once
    /// and leaves the cache to reads.
    pub fn new(tables: Arc<Tables>, table: &TableRef, span: Span, use_cache: bool) -> Self {
        let span = match &table.visible {
            Some(v) => {
                let (start, end) = v.clamp(span.start, span.end);
                Span { start, end, reverse: span.reverse }
            }
            None => span,
        };
        TableSource {
            tables,
            slot: table.slot.clone(),
            span,
            use_cache,
            readahead: READAHEAD_BYTES,
            fetcher: Fetcher::default(),
            next: 0,
            stop: 0,
            positioned: false,
            ready: VecDeque::new(),
            cur: None,
            rows: VecDeque::new(),
            waiting: Waiting::Nothing,
            finished: false,
        }
    }

    fn name(&self) -> &str {
        &self.slot.path
    }

    /// Sets the block window from the span once the SST is open.
    /// Reads `bytes` ahead instead of `READAHEAD_BYTES` (a merge of many inputs shares one
    /// budget: `compaction.rs`).
    #[must_use]
    pub fn with_readahead(mut self, bytes: u64) -> Self {
        self.readahead = bytes;
        self
    }

    fn position(&mut self, file: &SstFile) {
        let r = file.blocks_in_range(self.span.start.as_deref(), self.span.end.as_deref());
        if self.span.reverse {
            (self.next, self.stop) = (r.end, r.start);
        } else {
            (self.next, self.stop) = (r.start, r.end);
        }
        self.positioned = true;
    }

    fn decode(&mut self, index: usize, block: &Block, file: &SstFile) -> CoreResult<()> {
        let at = file.index()[index].offset;
        let mut rows: Vec<Row> =
            block.rows().map_err(|e| e.within(at, &format!("data block {index}")).in_object(Some(self.name())))?;
        if self.span.reverse {
            rows.reverse();
        }
        self.rows.extend(rows);
        Ok(())
    }

    /// Blocks of the next window: from the cache or the local file at once, else a request.
    fn fill(&mut self, file: &SstFile) -> CoreResult<bool> {
        let remaining = if self.span.reverse { self.next - self.stop } else { self.stop - self.next };
        if remaining == 0 {
            return Ok(false);
        }
        // Consecutive blocks in the walk's direction, up to `readahead` bytes.
        let mut idx = Vec::new();
        let mut bytes = 0;
        for k in 0..remaining {
            let b = if self.span.reverse { self.next - 1 - k } else { self.next + k };
            if self.use_cache || file.is_whole() {
                if let Some(block) = self.cached(b, file)? {
                    if idx.is_empty() {
                        self.ready.push_back((b, block));
                        self.advance(1);
                        return Ok(true);
                    }
                    break;
                }
            }
            let (s, e) = file.block_range(b);
            if !idx.is_empty() && bytes + (e - s) > self.readahead {
                break;
            }
            bytes += e - s;
            idx.push(b);
        }
        let (lo, hi) = (*idx.iter().min().unwrap_or(&0), *idx.iter().max().unwrap_or(&0));
        let range = (file.block_range(lo).0, file.block_range(hi).1);
        if self.slot.is_local() {
            let raw = self.slot.read_local(range.0, range.1)?;
            self.take_blocks(file, lo, idx.len(), range, &raw)?;
            return Ok(true);
        }
        self.waiting = Waiting::Blocks { first: lo, count: idx.len(), range };
        Err(CoreError::Pending)
    }

    fn cached(&mut self, b: usize, file: &SstFile) -> CoreResult<Option<Block>> {
        if file.is_whole() {
            return file.block(b).map(Some).map_err(|e| e.in_object(Some(&self.slot.path)));
        }
        Ok(self.tables.cache()?.get(self.slot.uid, b))
    }

    fn advance(&mut self, n: usize) {
        if self.span.reverse {
            self.next -= n;
        } else {
            self.next += n;
        }
    }

    /// Splits one fetched range into its blocks, queued in walk order.
    fn take_blocks(
        &mut self,
        file: &SstFile,
        first: usize,
        count: usize,
        range: (u64, u64),
        raw: &Bytes,
    ) -> CoreResult<()> {
        if raw.len() as u64 != range.1 - range.0 {
            let e = CoreError::corrupt(
                range.0,
                format!(
                    "got {} bytes for [{}, {}): the object is shorter than its index says",
                    raw.len(),
                    range.0,
                    range.1
                ),
            );
            return Err(e.in_object(Some(self.name())));
        }
        let mut blocks = Vec::with_capacity(count);
        for b in first..first + count {
            let (s, e) = file.block_range(b);
            let piece = raw.slice((s - range.0) as usize..(e - range.0) as usize);
            let block = file.block_from_raw(b, &piece).map_err(|e| e.in_object(Some(&self.slot.path)))?;
            blocks.push((b, block));
        }
        if self.span.reverse {
            blocks.reverse();
        }
        self.ready.extend(blocks);
        self.advance(count);
        Ok(())
    }

    fn file(&mut self) -> CoreResult<SstFile> {
        if let Ok(f) = self.fetcher.table(&self.slot)? {
            Ok(f.clone())
        } else {
            self.waiting = Waiting::Open;
            Err(CoreError::Pending)
        }
    }
}

impl RowSource for TableSource {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        loop {
            if let Some((index, it)) = &mut self.cur {
                let index = *index;
                match it.next_row() {
                    Ok(Some(row)) => {
                        if !self.span.above_start(&row.key) {
                            continue;
                        }
                        if !self.span.below_end(&row.key) {
                            self.finish();
                            return Ok(None);
                        }
                        return Ok(Some(row));
                    }
                    Ok(None) => self.cur = None,
                    // The walk stays at the broken row: a retry meets the same error.
                    Err(e) => return Err(self.block_error(index, e)),
                }
            }
            if let Some(row) = self.rows.pop_front() {
                if !self.span.below_end(&row.key) {
                    continue;
                }
                if !self.span.above_start(&row.key) {
                    self.finish();
                    return Ok(None);
                }
                return Ok(Some(row));
            }
            if self.finished {
                return Ok(None);
            }
            let file = self.file()?;
            if !self.positioned {
                self.position(&file);
            }
            if let Some((b, block)) = self.ready.front().cloned() {
                if self.span.reverse {
                    // Taken off the queue only once decoded: a block that fails stays, and so
                    // does its error, however often the read is retried.
                    self.decode(b, &block, &file)?;
                } else {
                    self.cur = Some((b, block.iter()));
                }
                self.ready.pop_front();
                continue;
            }
            if !self.fill(&file)? {
                self.finish();
                return Ok(None);
            }
        }
    }

    fn drain(&mut self, bound: Option<&[u8]>, sink: &mut dyn RowSink) -> CoreResult<()> {
        if self.span.reverse {
            return Ok(());
        }
        loop {
            if let Some((index, it)) = &mut self.cur {
                let index = *index;
                match drain_block(it, &self.span, bound, sink) {
                    Ok(Stop::BlockEnd) => self.cur = None,
                    Ok(Stop::Held) => return Ok(()),
                    Ok(Stop::PastEnd) => {
                        self.finish();
                        return Ok(());
                    }
                    Err(e) => return Err(self.block_error(index, e)),
                }
                continue;
            }
            // Only what is at hand: a remote object's blocks come through `next_row`, which
            // stops the merge for them.
            let at_hand = self.slot.is_local() || self.slot.get().is_some_and(SstFile::is_whole);
            if self.finished || !self.rows.is_empty() || !at_hand {
                return Ok(());
            }
            let file = self.file()?;
            if !self.positioned {
                self.position(&file);
            }
            if let Some((b, block)) = self.ready.pop_front() {
                self.cur = Some((b, block.iter()));
            } else if !self.fill(&file)? {
                self.finish();
                return Ok(());
            }
        }
    }

    fn request(&mut self) -> Vec<Part> {
        match &self.waiting {
            Waiting::Nothing => Vec::new(),
            Waiting::Open => self.fetcher.request(vec![Need::Open(self.slot.clone())]),
            Waiting::Blocks { range, .. } => vec![Part { path: self.slot.path.clone(), tail: 0, ranges: vec![*range] }],
        }
    }

    fn feed(&mut self, replies: Vec<PartReply>) -> CoreResult<()> {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Nothing => {
                Err(CoreError::invalid(format!("{}: input fed to a source that asked for none", self.name())))
            }
            Waiting::Open => self.fetcher.accept(&self.tables, replies),
            Waiting::Blocks { first, count, range } => {
                let raw = replies
                    .into_iter()
                    .next()
                    .and_then(|r| r.buffers.into_iter().next())
                    .ok_or_else(|| CoreError::invalid("an empty reply"))?;
                let file = self.slot.get().cloned().ok_or_else(|| CoreError::invalid("blocks of an unopened SST"))?;
                self.take_blocks(&file, first, count, range, &raw)
            }
        }
    }

    fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        self.span.seek(key);
        self.rows.clear();
        self.cur = None;
        self.ready.clear();
        self.waiting = Waiting::Nothing;
        self.positioned = false;
        self.finished = false;
        Ok(())
    }
}

impl TableSource {
    fn finish(&mut self) {
        self.finished = true;
        self.rows.clear();
        self.cur = None;
        self.ready.clear();
    }

    /// An error of data block `index`, placed in the object.
    fn block_error(&self, index: usize, e: CoreError) -> CoreError {
        let at = self.slot.get().map_or(0, |f| f.index()[index].offset);
        e.within(at, &format!("data block {index}")).in_object(Some(self.name()))
    }
}

/// Where `drain_block` stopped.
enum Stop {
    /// The block has no rows left.
    BlockEnd,
    /// At a row the sink refused or at `bound`: it stays next.
    Held,
    /// At a key at or past the span's end: the walk is over.
    PastEnd,
}

/// Offers `sink` the rows of `it` inside `span` and below `bound`, borrowed from the block
/// (`BlockIter::next_ref`); a row held back by a seek (or a V1 block's) goes as a `Row`.
fn drain_block(it: &mut BlockIter, span: &Span, bound: Option<&[u8]>, sink: &mut dyn RowSink) -> CoreResult<Stop> {
    while !it.borrows() {
        let Some(row) = it.next_row()? else { return Ok(Stop::BlockEnd) };
        if !span.above_start(&row.key) {
            continue;
        }
        if !span.below_end(&row.key) {
            return Ok(Stop::PastEnd);
        }
        if bound.is_some_and(|b| row.key.as_ref() >= b) || !sink.offer(&row.as_ref()) {
            it.put_back(row);
            return Ok(Stop::Held);
        }
    }
    loop {
        let Some(r) = it.next_ref()? else { return Ok(Stop::BlockEnd) };
        if !span.above_start(r.key) {
            continue;
        }
        if !span.below_end(r.key) {
            return Ok(Stop::PastEnd);
        }
        if bound.is_some_and(|b| r.key >= b) || !sink.offer(&r) {
            it.unread();
            return Ok(Stop::Held);
        }
    }
}

/// A sorted run walked SST by SST; each SST is opened when the walk reaches it.
pub struct RunSource {
    tables: Arc<Tables>,
    run: Vec<TableRef>,
    span: Span,
    /// The SST being read (an index into `run`), and its source.
    at: Option<usize>,
    current: Option<TableSource>,
    use_cache: bool,
}

impl RunSource {
    pub fn new(tables: Arc<Tables>, run: Vec<TableRef>, span: Span, use_cache: bool) -> Self {
        RunSource { tables, run, span, at: None, current: None, use_cache }
    }

    /// The first SST of the walk.
    fn first(&self) -> Option<usize> {
        if self.run.is_empty() {
            return None;
        }
        if self.span.reverse {
            // The last SST starting below the end.
            let n = match &self.span.end {
                Some(e) => self.run.partition_point(|t| t.first.as_ref().is_none_or(|f| f.as_ref() < e.as_ref())),
                None => self.run.len(),
            };
            n.checked_sub(1)
        } else {
            let i = match &self.span.start {
                Some(s) => self.run.partition_point(|t| t.first.as_ref().is_none_or(|f| f.as_ref() <= s.as_ref())),
                None => 1,
            };
            Some(i.saturating_sub(1))
        }
    }

    fn open_at(&mut self, i: usize) {
        self.at = Some(i);
        self.current = Some(TableSource::new(self.tables.clone(), &self.run[i], self.span.clone(), self.use_cache));
    }
}

impl RunSource {
    /// Opens the next SST of the walk that overlaps the span; false when none is left.
    fn open_next(&mut self) -> bool {
        loop {
            let next = match self.at {
                None => self.first(),
                Some(i) if self.span.reverse => i.checked_sub(1),
                Some(i) => Some(i + 1).filter(|&j| j < self.run.len()),
            };
            let Some(i) = next else { return false };
            let t = &self.run[i];
            if t.overlaps(self.span.start.as_deref(), self.span.end.as_deref()) {
                self.open_at(i);
                return true;
            }
            // Runs are in key order: nothing further along overlaps either.
            let past = if self.span.reverse {
                self.span.start.as_ref().is_some_and(|s| t.last.as_ref().is_some_and(|l| l.as_ref() < s.as_ref()))
            } else {
                self.span.end.as_ref().is_some_and(|e| t.first.as_ref().is_some_and(|f| f.as_ref() >= e.as_ref()))
            };
            self.at = Some(i);
            if past {
                self.at = Some(if self.span.reverse { 0 } else { self.run.len() });
                return false;
            }
        }
    }
}

impl RowSource for RunSource {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        loop {
            if self.current.is_none() && !self.open_next() {
                return Ok(None);
            }
            let cur = self.current.as_mut().expect("opened above");
            if let Some(row) = cur.next_row()? {
                return Ok(Some(row));
            }
            self.current = None;
            if self.span.reverse && self.at == Some(0) {
                return Ok(None);
            }
        }
    }

    fn drain(&mut self, bound: Option<&[u8]>, sink: &mut dyn RowSink) -> CoreResult<()> {
        if self.span.reverse {
            return Ok(());
        }
        loop {
            if self.current.is_none() && !self.open_next() {
                return Ok(());
            }
            let cur = self.current.as_mut().expect("opened above");
            cur.drain(bound, sink)?;
            if !cur.finished {
                return Ok(());
            }
            self.current = None;
        }
    }

    fn request(&mut self) -> Vec<Part> {
        self.current.as_mut().map(RowSource::request).unwrap_or_default()
    }

    fn feed(&mut self, replies: Vec<PartReply>) -> CoreResult<()> {
        match &mut self.current {
            Some(c) => c.feed(replies),
            None => Err(CoreError::invalid("input fed to a sorted run between SSTs")),
        }
    }

    fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        self.span.seek(key);
        self.at = None;
        self.current = None;
        Ok(())
    }
}
