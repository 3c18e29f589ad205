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

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::fetch::{Fetcher, Need, Part, PartReply, Poll, TableSlot, Tables, READAHEAD_BYTES};
use crate::format::block::Block;
use crate::format::row::{show_key, Row, RowKind};
use crate::memtable::Memtable;
use crate::merge::{MergeIterator, MergeMode, RowSource};
use crate::read::{merge_operand, Level, TableRef, Tree};
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
    fetcher: Fetcher,
    /// Blocks still to read: `next..stop` forward; reverse reads `stop..next` downwards.
    next: usize,
    stop: usize,
    positioned: bool,
    ready: VecDeque<(usize, Block)>,
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
            fetcher: Fetcher::default(),
            next: 0,
            stop: 0,
            positioned: false,
            ready: VecDeque::new(),
            rows: VecDeque::new(),
            waiting: Waiting::Nothing,
            finished: false,
        }
    }

    fn name(&self) -> &str {
        &self.slot.path
    }

    /// Sets the block window from the span once the SST is open.
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
        // Consecutive blocks in the walk's direction, up to READAHEAD_BYTES.
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
            if !idx.is_empty() && bytes + (e - s) > READAHEAD_BYTES {
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
            if let Some(row) = self.rows.pop_front() {
                if self.span.reverse {
                    if !self.span.below_end(&row.key) {
                        continue;
                    }
                    if !self.span.above_start(&row.key) {
                        self.finish();
                        return Ok(None);
                    }
                } else {
                    if !self.span.above_start(&row.key) {
                        continue;
                    }
                    if !self.span.below_end(&row.key) {
                        self.finish();
                        return Ok(None);
                    }
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
                // Taken off the queue only once decoded: a block that fails stays, and so does
                // its error, however often the read is retried.
                self.decode(b, &block, &file)?;
                self.ready.pop_front();
                continue;
            }
            if !self.fill(&file)? {
                self.finish();
                return Ok(None);
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
        self.ready.clear();
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

impl RowSource for RunSource {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        loop {
            if self.current.is_none() {
                let next = match self.at {
                    None => self.first(),
                    Some(i) if self.span.reverse => i.checked_sub(1),
                    Some(i) => Some(i + 1).filter(|&j| j < self.run.len()),
                };
                let Some(i) = next else { return Ok(None) };
                let t = &self.run[i];
                if !t.overlaps(self.span.start.as_deref(), self.span.end.as_deref()) {
                    // Runs are in key order: nothing further along overlaps either.
                    let past = if self.span.reverse {
                        self.span
                            .start
                            .as_ref()
                            .is_some_and(|s| t.last.as_ref().is_some_and(|l| l.as_ref() < s.as_ref()))
                    } else {
                        self.span
                            .end
                            .as_ref()
                            .is_some_and(|e| t.first.as_ref().is_some_and(|f| f.as_ref() >= e.as_ref()))
                    };
                    self.at = Some(i);
                    if past {
                        self.at = Some(if self.span.reverse { 0 } else { self.run.len() });
                        return Ok(None);
                    }
                    continue;
                }
                self.open_at(i);
            }
            let cur = self.current.as_mut().expect("set above");
            if let Some(row) = cur.next_row()? {
                return Ok(Some(row));
            }
            self.current = None;
            if self.span.reverse && self.at == Some(0) {
                return Ok(None);
            }
        }
    }

    fn request(&mut self) -> Vec<Part> {
        self.current.as_mut().map(super::merge::RowSource::request).unwrap_or_default()
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
        };
        Scan { merge, span, page: Vec::new(), last: None, asked: None }
    }

    /// Up to `n` rows (fewer only at the end), or the bytes needed first; `replies` answers
    /// the previous `Need`. A page stopped by a `Need` goes on where it stopped.
    pub fn next_page(&mut self, n: usize, replies: Option<(Vec<Part>, Vec<PartReply>)>) -> CoreResult<Poll<Vec<Row>>> {
        if let Some((parts, r)) = replies {
            // Replies to an older request (a Fetch kept across a seek, or resumed late) could
            // land on another SST's source: only the current request's are taken.
            if self.asked.as_ref() != Some(&parts) {
                return Err(CoreError::invalid("this Fetch no longer answers the scan's current request"));
            }
            self.asked = None;
            self.merge.feed(r)?;
        }
        while self.page.len() < n {
            match self.merge.next_row() {
                Ok(Some(row)) => {
                    if row.kind == RowKind::Merge {
                        return Err(merge_operand(&row.key));
                    }
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
        if let Some(r) = self.page.last() {
            self.last = Some(r.key.clone());
        }
        Ok(Poll::Ready(std::mem::take(&mut self.page)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::tests::{rows, World};
    use crate::read::{KeyRange, TableRef};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::ops::Bound;

    fn drain(w: &World, scan: &mut Scan, page: usize) -> (Vec<Row>, usize) {
        let mut out = Vec::new();
        let mut replies = None;
        let mut requests = 0;
        loop {
            match scan.next_page(page, replies.take()).unwrap() {
                Poll::Ready(rows) if rows.is_empty() => return (out, requests),
                Poll::Ready(rows) => out.extend(rows),
                Poll::Need(parts) => {
                    requests += 1;
                    let r = w.serve(&parts);
                    replies = Some((parts, r));
                }
            }
        }
    }

    /// A tree: a memtable, two L0 SSTs and a run of four, overlapping versions of 0..400.
    fn tree(w: &mut World) -> (Tree, BTreeMap<Bytes, Row>) {
        let mut mt = Memtable::new();
        for r in rows(100..120, 9) {
            mt.insert(&r, false);
        }
        mt.insert(&Row::tombstone(&b"k000150"[..], 9), false);
        let l0a = w.sst("l0a.sst", &rows(110..200, 7), 256);
        let l0b = w.sst("l0b.sst", &rows(0..50, 5), 256);
        let run: Vec<TableRef> =
            (0..4).map(|i| w.sst(&format!("r{i}.sst"), &rows(i * 100..i * 100 + 100, 1), 256)).collect();
        let mut model = BTreeMap::new();
        for r in rows(0..400, 1).into_iter().chain(rows(0..50, 5)).chain(rows(110..200, 7)).chain(rows(100..120, 9)) {
            model.insert(r.key.clone(), r);
        }
        model.remove(&Bytes::from_static(b"k000150"));
        let tree = Tree {
            memtables: vec![Arc::new(Mutex::new(mt))],
            levels: vec![
                (Bytes::new(), Level::Table(l0a)),
                (Bytes::new(), Level::Table(l0b)),
                (Bytes::new(), Level::Run(run)),
            ],
            tables: w.tables.clone(),
        };
        (tree, model)
    }

    fn key(i: u32) -> Bytes {
        Bytes::from(format!("k{i:06}").into_bytes())
    }

    proptest! {
        #[test]
        fn scans_match_the_model(lo in 0u32..420, len in 0u32..450, reverse: bool, page in 1usize..70, seek_at in prop::option::of(0u32..450)) {
            let mut w = World::new(4096);
            let (tree, model) = tree(&mut w);
            let (start, end) = (key(lo), key(lo + len));
            let span = Span { start: Some(start.clone()), end: Some(end.clone()), reverse };
            let mut scan = Scan::new(&tree, span, 100, 0);
            let mut expect: Vec<&Row> = model.range(start.clone()..end.clone().max(start.clone())).map(|(_, r)| r).collect();
            if reverse {
                expect.reverse();
            }
            let mut got = Vec::new();
            if let (Some(s), false) = (seek_at, reverse) {
                let target = key(s);
                let ok = scan.seek(&target);
                prop_assert_eq!(ok.is_ok(), target >= start && target < end);
                if ok.is_ok() {
                    expect.retain(|r| r.key >= target);
                }
            }
            let (rows, _) = drain(&w, &mut scan, page);
            got.extend(rows);
            let got: Vec<&Row> = got.iter().collect();
            prop_assert_eq!(got, expect);
        }
    }

    #[test]
    fn a_scan_reads_blocks_ahead_and_opens_run_ssts_lazily() {
        let mut w = World::new(0);
        let wide = |r: std::ops::Range<u32>| -> Vec<Row> {
            rows(r, 1)
                .into_iter()
                .map(|mut x| {
                    x.value = Bytes::from(vec![b'v'; 100]);
                    x
                })
                .collect()
        };
        // 2000 rows of ~110 bytes: larger than the tail an open reads.
        let run: Vec<TableRef> =
            (0..8).map(|i| w.sst(&format!("r{i}.sst"), &wide(i * 2000..i * 2000 + 2000), 4096)).collect();
        let tree = Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Run(run))], tables: w.tables.clone() };
        let mut scan = Scan::new(&tree, Span { start: Some(key(4100)), end: Some(key(4200)), reverse: false }, 9, 0);
        let (got, requests) = drain(&w, &mut scan, 1000);
        assert_eq!(got.len(), 100);
        assert_eq!(requests, 2, "one open and one ranged read");
        assert_eq!(w.tables.open_count().unwrap(), 1);
        // A full scan: per SST one open and about one request per MiB.
        let mut scan = Scan::new(&tree, Span::default(), 9, 0);
        let (got, requests) = drain(&w, &mut scan, 4096);
        assert_eq!(got.len(), 16_000);
        let bytes: usize = w.objects.values().map(bytes::Bytes::len).sum();
        assert!(requests <= 8 + 8 + bytes / (1 << 20) + 1, "{requests} requests for {bytes} bytes");
    }

    #[test]
    fn projections_clamp_scans() {
        let mut w = World::new(0);
        let mut t = w.sst("p.sst", &rows(0..100, 1), 256);
        t.visible = Some(KeyRange { start: Bound::Excluded(key(10)), end: Bound::Included(key(20)) });
        let tree = Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t))], tables: w.tables.clone() };
        for reverse in [false, true] {
            let mut scan = Scan::new(&tree, Span { reverse, ..Span::default() }, 9, 0);
            let (got, _) = drain(&w, &mut scan, 7);
            let mut keys: Vec<Bytes> = got.into_iter().map(|r| r.key).collect();
            if reverse {
                keys.reverse();
            }
            assert_eq!(keys, (11..=20).map(key).collect::<Vec<_>>());
        }
    }

    #[test]
    fn local_tables_are_read_natively() {
        let dir = std::env::temp_dir().join(format!("slatedb-py-scan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let data = crate::sst::encode_sst(
            &rows(0..3000, 1),
            crate::sst::SstOptions { block_size: 512, ..crate::sst::SstOptions::compacted() },
        )
        .unwrap();
        std::fs::write(dir.join("db/a.sst"), &data).unwrap();
        let tables = Arc::new(Tables::new(1 << 20, Some(dir.clone())));
        let t = TableRef {
            slot: tables.slot("db/a.sst").unwrap(),
            first: Some(key(0)),
            last: Some(key(2999)),
            visible: None,
        };
        let tree = Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t))], tables: tables.clone() };
        let mut scan = Scan::new(&tree, Span { reverse: true, ..Span::default() }, 9, 0);
        let Poll::Ready(page) = scan.next_page(5000, None).unwrap() else {
            panic!("a local scan never asks for bytes")
        };
        assert_eq!(page.len(), 3000);
        assert_eq!(page[0].key, key(2999));
        let mut get = crate::read::GetMany::new(vec![key(1234), key(5000)], 9, 0);
        let Poll::Ready(found) = get.poll(&tree, None).unwrap() else { panic!("a local get never asks for bytes") };
        assert_eq!(found[0], crate::read::Found::Value(Bytes::from_static(b"v1234-1")));
        assert_eq!(found[1], crate::read::Found::Absent);
        std::fs::remove_dir_all(&dir).unwrap();
        // A file that vanished (collected) is a missing object, named.
        let mut get = crate::read::GetMany::new(vec![key(7)], 9, 0);
        let tables2 = Arc::new(Tables::new(0, Some(dir.clone())));
        let t2 = TableRef { slot: tables2.slot("db/a.sst").unwrap(), first: None, last: None, visible: None };
        let tree2 = Tree { memtables: vec![], levels: vec![(Bytes::new(), Level::Table(t2))], tables: tables2 };
        assert!(matches!(get.poll(&tree2, None), Err(CoreError::Missing(p)) if p == "db/a.sst"));
    }
}
