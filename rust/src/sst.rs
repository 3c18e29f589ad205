//! SST files: the builder (compacted and WAL flavours) and a reader over an in-memory buffer.
//!
//! ```text
//! [data block 0 | crc] ... [data block n-1 | crc]
//! [filter block | crc]      compacted SSTs with >= min_filter_keys rows
//! [index block | crc]       FlatBuffer SsTableIndex
//! [stats block | crc]       compacted SSTs only
//! [SsTableInfo | crc]       the metadata block (never compressed)
//! u64 BE metadata offset | u16 BE SST format version (2)
//! ```
//!
//! Data block `i` spans `[index[i].offset, index[i+1].offset)`; the last one ends at
//! `filter_offset`, which is the end of the data even when there is no filter. Index keys of a
//! compacted SST are shortest separators (block 0: the empty key); a WAL SST's index keys and
//! `first_entry` are the 8-byte BE sequence number of the block's first row.

use bytes::Bytes;

use crate::bloom::{decode_composite, encode_composite, BloomFilter, BloomFilterBuilder, DEFAULT_FILTER_NAME};
use crate::error::{CoreError, CoreResult};
use crate::format::block::{Block, BlockBuilder, BlockFormat, BlockIter, MAX_BLOCK_SIZE};
use crate::format::codec::{crc32, read_section, write_section, Compression};
use crate::format::row::{show_key, Row, RowKind};
use crate::format::tables::{
    decode_index, encode_index, BlockMeta, BlockStats, SsTableInfo, SstStats, SstType, FILTER_FORMAT_COMPOSITE,
    FILTER_FORMAT_LEGACY,
};

pub const SST_FORMAT_VERSION: u16 = 2;
const FOOTER_LEN: usize = 10;

#[derive(Clone, Debug)]
pub struct SstOptions {
    pub sst_type: SstType,
    pub block_size: usize,
    pub compression: Compression,
    pub bloom_bits_per_key: u32,
    pub min_filter_keys: u64,
}

impl SstOptions {
    pub fn compacted() -> Self {
        SstOptions {
            sst_type: SstType::Compacted,
            block_size: 4096,
            compression: Compression::None,
            bloom_bits_per_key: 10,
            min_filter_keys: 1000,
        }
    }

    pub fn wal() -> Self {
        SstOptions { sst_type: SstType::Wal, block_size: MAX_BLOCK_SIZE, ..Self::compacted() }
    }
}

/// The shortest key that is > `prev` and <= `next` (SlateDB's `compute_index_key`), given
/// `prev < next`; equal keys (two versions of one key split across blocks) give the key.
fn separator(prev: &[u8], next: &[u8]) -> Bytes {
    for (i, (a, b)) in prev.iter().zip(next).enumerate() {
        if a != b {
            return Bytes::copy_from_slice(&next[..=i]);
        }
    }
    if prev.len() >= next.len() {
        Bytes::copy_from_slice(next)
    } else {
        Bytes::copy_from_slice(&next[..=prev.len()])
    }
}

pub struct SstBuilder {
    opts: SstOptions,
    out: Vec<u8>,
    block: BlockBuilder,
    block_stats: BlockStats,
    index: Vec<BlockMeta>,
    pending_index_key: Bytes,
    prev: Option<(Bytes, u64)>,
    first_key: Option<Bytes>,
    first_seq: Option<u64>,
    stats: SstStats,
    filter: Option<BloomFilterBuilder>,
}

impl SstBuilder {
    pub fn new(opts: SstOptions) -> CoreResult<Self> {
        if opts.block_size == 0 || opts.block_size > MAX_BLOCK_SIZE {
            return Err(CoreError::invalid(format!(
                "block_size must be between 1 and {MAX_BLOCK_SIZE} bytes, not {}",
                opts.block_size
            )));
        }
        let filter = (opts.sst_type == SstType::Compacted && opts.bloom_bits_per_key > 0)
            .then(|| BloomFilterBuilder::new(opts.bloom_bits_per_key));
        Ok(SstBuilder {
            block: BlockBuilder::new(opts.block_size),
            opts,
            out: Vec::new(),
            block_stats: BlockStats::default(),
            index: Vec::new(),
            pending_index_key: Bytes::new(),
            prev: None,
            first_key: None,
            first_seq: None,
            stats: SstStats::default(),
            filter,
        })
    }

    /// Sets aside room for `bytes` of output up front, so a large SST grows in place instead
    /// of by repeated doubling (which would briefly hold twice its size).
    pub fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes.saturating_sub(self.out.len()));
    }

    /// Bytes written so far (finished data blocks), a lower bound of the final size.
    pub fn estimated_size(&self) -> usize {
        self.out.len()
    }

    pub fn num_rows(&self) -> u64 {
        self.stats.num_rows() + self.block.len() as u64
    }

    pub fn add(&mut self, row: &Row) -> CoreResult<()> {
        row.validate()?;
        match (&self.prev, self.opts.sst_type) {
            (Some((pk, ps)), SstType::Compacted) => {
                if !(pk < &row.key || (pk == &row.key && *ps > row.seq)) {
                    return Err(CoreError::invalid(format!(
                        "rows of a compacted SST must be sorted by key, then by seq descending, \
                         without duplicates: key {} seq {} follows key {} seq {}",
                        show_key(&row.key),
                        row.seq,
                        show_key(pk),
                        ps
                    )));
                }
            }
            (Some((_, ps)), SstType::Wal) => {
                if row.seq < *ps {
                    return Err(CoreError::invalid(format!(
                        "rows of a WAL SST must be in seq order: key {} seq {} follows seq {}",
                        show_key(&row.key),
                        row.seq,
                        ps
                    )));
                }
            }
            (None, _) => {}
        }
        // The index key is only needed when the row starts a block.
        let index_key = |prev: &Option<(Bytes, u64)>| match (prev, self.opts.sst_type) {
            (_, SstType::Wal) => Bytes::copy_from_slice(&row.seq.to_be_bytes()),
            (Some((pk, _)), SstType::Compacted) => separator(pk, &row.key),
            (None, SstType::Compacted) => Bytes::new(),
        };
        if !self.block.would_fit(row) {
            let key = index_key(&self.prev);
            self.finish_block()?;
            self.pending_index_key = key;
        } else if self.block.is_empty() {
            self.pending_index_key = index_key(&self.prev);
        }
        self.block.add(row)?;
        match row.kind {
            RowKind::Value => self.block_stats.num_puts = self.block_stats.num_puts.saturating_add(1),
            RowKind::Tombstone => self.block_stats.num_deletes = self.block_stats.num_deletes.saturating_add(1),
            RowKind::Merge => self.block_stats.num_merges = self.block_stats.num_merges.saturating_add(1),
        }
        self.stats.raw_key_size += row.key.len() as u64;
        self.stats.raw_val_size += row.value.len() as u64;
        if let Some(f) = &mut self.filter {
            f.add_key(&row.key);
        }
        if self.first_key.is_none() {
            self.first_key = Some(row.key.clone());
            self.first_seq = Some(row.seq);
        }
        self.prev = Some((row.key.clone(), row.seq));
        Ok(())
    }

    fn finish_block(&mut self) -> CoreResult<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, BlockBuilder::new(self.opts.block_size));
        let offset = self.out.len() as u64;
        write_section(&mut self.out, self.opts.compression, &block.finish())?;
        self.index.push(BlockMeta { offset, first_key: std::mem::take(&mut self.pending_index_key) });
        let bs = std::mem::take(&mut self.block_stats);
        self.stats.num_puts += u64::from(bs.num_puts);
        self.stats.num_deletes += u64::from(bs.num_deletes);
        self.stats.num_merges += u64::from(bs.num_merges);
        self.stats.block_stats.push(bs);
        Ok(())
    }

    /// Finishes the file. An SST needs at least one row.
    pub fn finish(mut self) -> CoreResult<Vec<u8>> {
        self.finish_block()?;
        if self.index.is_empty() {
            return Err(CoreError::invalid("an SST needs at least one row"));
        }
        let codec = self.opts.compression;
        let data_end = self.out.len() as u64;
        let compacted = self.opts.sst_type == SstType::Compacted;
        let mut filter_len = 0;
        if let Some(f) = &self.filter {
            if self.stats.num_rows() >= self.opts.min_filter_keys {
                let block = encode_composite(&[(DEFAULT_FILTER_NAME, &f.build())]);
                filter_len = write_section(&mut self.out, codec, &block)?;
            }
        }
        let index_offset = self.out.len() as u64;
        let index_len = write_section(&mut self.out, codec, &encode_index(&self.index))?;
        let (stats_offset, stats_len) = if compacted {
            let at = self.out.len() as u64;
            (at, write_section(&mut self.out, codec, &self.stats.encode())?)
        } else {
            (0, 0)
        };
        let (first_entry, last_entry) = if compacted {
            (self.first_key.clone(), self.prev.map(|(k, _)| k))
        } else {
            (self.first_seq.map(|s| Bytes::copy_from_slice(&s.to_be_bytes())), None)
        };
        let info = SsTableInfo {
            first_entry,
            last_entry,
            index_offset,
            index_len,
            filter_offset: data_end,
            filter_len,
            compression: codec,
            sst_type: self.opts.sst_type,
            stats_offset,
            stats_len,
            // 0.17.0 marks WAL SSTs composite too, though they carry no filter.
            filter_format: FILTER_FORMAT_COMPOSITE,
        };
        let meta_offset = self.out.len() as u64;
        let meta = info.encode();
        self.out.extend_from_slice(&meta);
        self.out.extend_from_slice(&crc32(&meta).to_be_bytes());
        self.out.extend_from_slice(&meta_offset.to_be_bytes());
        self.out.extend_from_slice(&SST_FORMAT_VERSION.to_be_bytes());
        Ok(self.out)
    }
}

/// Encodes `rows` as one SST.
pub fn encode_sst(rows: &[Row], opts: SstOptions) -> CoreResult<Vec<u8>> {
    let mut b = SstBuilder::new(opts)?;
    for (i, row) in rows.iter().enumerate() {
        b.add(row).map_err(|e| match e {
            CoreError::Invalid(m) => CoreError::Invalid(format!("row {i}: {m}")),
            other => other,
        })?;
    }
    b.finish()
}

/// A decoded SST. Footer, info, index, filter and stats are parsed and checked up front; data
/// blocks are decoded on demand. The buffer is either the whole file or only its tail (from
/// the data end on): then data blocks are supplied by the caller (`block_from_raw`), which
/// lets the engine fetch exactly the blocks it needs and cache them.
#[derive(Clone, Debug)]
pub struct SstFile {
    inner: std::sync::Arc<SstInner>,
}

#[derive(Debug)]
struct SstInner {
    data: Bytes,
    /// File offset of `data[0]`: 0 for a whole file.
    base: u64,
    file_len: u64,
    version: u16,
    info: SsTableInfo,
    meta_offset: u64,
    index: Vec<BlockMeta>,
    /// `find_block`'s search array (`KeyPrefixes`).
    prefixes: KeyPrefixes,
    filter: Option<BloomFilter>,
    stats: Option<SstStats>,
}

/// The index keys as 8-byte big-endian numbers taken after the bytes they all share: a
/// binary search over one contiguous array of integers instead of a pointer chase and a
/// `memcmp` per step (the index of a large SST is bigger than the CPU cache, and a point read
/// searches one per level). Comparing zero-padded prefixes agrees with comparing the keys
/// whenever the prefixes differ; equal prefixes fall back to the keys.
#[derive(Debug, Default)]
struct KeyPrefixes {
    shared: usize,
    values: Vec<u64>,
}

fn prefix_u64(key: &[u8], from: usize) -> u64 {
    let mut b = [0u8; 8];
    if from < key.len() {
        let tail = &key[from..];
        let n = tail.len().min(8);
        b[..n].copy_from_slice(&tail[..n]);
    }
    u64::from_be_bytes(b)
}

impl KeyPrefixes {
    fn new(index: &[BlockMeta]) -> Self {
        // Block 0's index key is the empty key: the shared part comes from the others.
        let keys: Vec<&[u8]> = index.iter().skip(1).map(|m| m.first_key.as_ref()).collect();
        let shared = match (keys.first(), keys.last()) {
            (Some(a), Some(b)) => a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count(),
            _ => 0,
        };
        let values = index.iter().map(|m| prefix_u64(&m.first_key, shared)).collect();
        KeyPrefixes { shared, values }
    }
}

/// What `SstFile::open_tail` found.
pub enum TailOpen {
    Opened(SstFile),
    /// The tail must start at this file offset (or earlier) to hold all the metadata.
    NeedFrom(u64),
}

/// Reads a section given by file offsets from a buffer that starts at file offset `base`.
fn read_at(
    data: &Bytes,
    base: u64,
    offset: u64,
    len: u64,
    codec: Compression,
    what: &'static str,
) -> CoreResult<Bytes> {
    if offset < base {
        return Err(CoreError::invalid(format!("{what} at offset {offset} lies before the buffer start {base}")));
    }
    read_section(data, offset - base, len, codec, what).map_err(|e| e.shifted(base))
}

impl SstFile {
    /// Opens a whole file.
    pub fn open(data: Bytes) -> CoreResult<SstFile> {
        let len = data.len() as u64;
        match Self::open_tail(data, len)? {
            TailOpen::Opened(f) => Ok(f),
            TailOpen::NeedFrom(_) => Err(CoreError::invalid("a whole file cannot lack its metadata")),
        }
    }

    /// Opens from the last `tail.len()` bytes of a `file_len`-byte file.
    pub fn open_tail(tail: Bytes, file_len: u64) -> CoreResult<TailOpen> {
        let tlen = tail.len() as u64;
        if tlen > file_len {
            return Err(CoreError::invalid(format!("tail of {tlen} bytes is longer than the {file_len}-byte file")));
        }
        let base = file_len - tlen;
        if file_len <= FOOTER_LEN as u64 {
            return Err(CoreError::corrupt(
                0,
                format!("object of {file_len} bytes is an empty SST (a WAL fence), not a table"),
            ));
        }
        if tlen < FOOTER_LEN as u64 {
            return Ok(TailOpen::NeedFrom(file_len - FOOTER_LEN as u64));
        }
        let t = tail.len();
        let version = u16::from_be_bytes([tail[t - 2], tail[t - 1]]);
        BlockFormat::for_sst_version(version).map_err(|e| e.within(file_len - 2, "footer"))?;
        let mut mo = [0u8; 8];
        mo.copy_from_slice(&tail[t - FOOTER_LEN..t - 2]);
        let meta_offset = u64::from_be_bytes(mo);
        let meta_end = file_len - FOOTER_LEN as u64;
        if meta_offset >= meta_end || meta_end - meta_offset < 4 {
            return Err(CoreError::corrupt(
                meta_end,
                format!("metadata offset {meta_offset} is outside the {file_len}-byte file"),
            ));
        }
        if meta_offset < base {
            return Ok(TailOpen::NeedFrom(meta_offset));
        }
        let meta = read_at(&tail, base, meta_offset, meta_end - meta_offset, Compression::None, "SsTableInfo")?;
        let info = SsTableInfo::decode(&meta).map_err(|e| e.within(meta_offset, "SsTableInfo"))?;
        Self::check_layout(&info, meta_offset)?;
        let first_meta =
            [info.filter_offset, info.index_offset, if info.stats_len > 0 { info.stats_offset } else { u64::MAX }]
                .into_iter()
                .min()
                .unwrap_or(0);
        if first_meta < base {
            return Ok(TailOpen::NeedFrom(first_meta));
        }
        let codec = info.compression;
        let index_raw = read_at(&tail, base, info.index_offset, info.index_len, codec, "index block")?;
        let index = decode_index(&index_raw).map_err(|e| e.within(info.index_offset, "index block"))?;
        Self::check_index(&index, &info)?;
        let prefixes = KeyPrefixes::new(&index);
        let filter = if info.filter_len > 0 {
            let raw = read_at(&tail, base, info.filter_offset, info.filter_len, codec, "filter block")?;
            Self::pick_filter(&raw, info.filter_format).map_err(|e| e.within(info.filter_offset, "filter block"))?
        } else {
            None
        };
        let stats = if info.stats_len > 0 {
            let raw = read_at(&tail, base, info.stats_offset, info.stats_len, codec, "stats block")?;
            Some(SstStats::decode(&raw).map_err(|e| e.within(info.stats_offset, "stats block"))?)
        } else {
            None
        };
        Ok(TailOpen::Opened(SstFile {
            inner: std::sync::Arc::new(SstInner {
                data: tail,
                base,
                file_len,
                version,
                info,
                meta_offset,
                index,
                prefixes,
                filter,
                stats,
            }),
        }))
    }

    fn check_layout(info: &SsTableInfo, meta_offset: u64) -> CoreResult<()> {
        let sections = [
            ("filter block", info.filter_offset, info.filter_len),
            ("index block", info.index_offset, info.index_len),
            ("stats block", info.stats_offset, info.stats_len),
        ];
        for (what, off, len) in sections {
            if off.checked_add(len).is_none_or(|end| end > meta_offset) {
                return Err(CoreError::corrupt(
                    meta_offset,
                    format!("SsTableInfo places the {what} at [{off}, +{len}), past the metadata at {meta_offset}"),
                ));
            }
        }
        if info.index_len == 0 {
            return Err(CoreError::corrupt(meta_offset, "SsTableInfo has an empty index"));
        }
        Ok(())
    }

    fn check_index(index: &[BlockMeta], info: &SsTableInfo) -> CoreResult<()> {
        if index.is_empty() {
            return Err(CoreError::corrupt(info.index_offset, "index lists no data blocks"));
        }
        let data_end = info.filter_offset;
        for (i, m) in index.iter().enumerate() {
            let next = index.get(i + 1).map_or(data_end, |n| n.offset);
            let ok = if i == 0 { m.offset == 0 } else { true } && m.offset < next;
            if !ok || next > data_end {
                return Err(CoreError::corrupt(
                    info.index_offset,
                    format!("index entry {i} places a data block at [{}, {next}), which is out of order or past the data end {data_end}", m.offset),
                ));
            }
        }
        Ok(())
    }

    fn pick_filter(raw: &Bytes, format: u8) -> CoreResult<Option<BloomFilter>> {
        if format == FILTER_FORMAT_LEGACY {
            return BloomFilter::decode(raw).map(Some);
        }
        for (name, data) in decode_composite(raw)? {
            if name == DEFAULT_FILTER_NAME {
                return BloomFilter::decode(&data).map(Some);
            }
        }
        // Filters of other policies (prefix extractors) cannot answer whole-key lookups.
        Ok(None)
    }

    pub fn info(&self) -> &SsTableInfo {
        &self.inner.info
    }

    pub fn format_version(&self) -> u16 {
        self.inner.version
    }

    pub fn meta_offset(&self) -> u64 {
        self.inner.meta_offset
    }

    pub fn index(&self) -> &[BlockMeta] {
        &self.inner.index
    }

    pub fn stats(&self) -> Option<&SstStats> {
        self.inner.stats.as_ref()
    }

    pub fn filter(&self) -> Option<&BloomFilter> {
        self.inner.filter.as_ref()
    }

    pub fn num_blocks(&self) -> usize {
        self.inner.index.len()
    }

    pub fn size(&self) -> usize {
        self.inner.file_len as usize
    }

    /// File range `[start, end)` of data block `i`.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let start = self.inner.index[i].offset;
        let end = self.inner.index.get(i + 1).map_or(self.inner.info.filter_offset, |m| m.offset);
        (start, end)
    }

    pub fn block(&self, i: usize) -> CoreResult<Block> {
        if i >= self.inner.index.len() {
            return Err(CoreError::invalid(format!("block {i} out of range ({} blocks)", self.inner.index.len())));
        }
        let (start, end) = self.block_range(i);
        if start < self.inner.base {
            return Err(CoreError::invalid(format!(
                "data block {i} is not in memory: this SST was opened from its tail"
            )));
        }
        let raw =
            read_at(&self.inner.data, self.inner.base, start, end - start, self.inner.info.compression, "data block")
                .map_err(|e| label_block(e, i))?;
        let format = BlockFormat::for_sst_version(self.inner.version)?;
        Block::decode(raw, format).map_err(|e| e.within(start, &format!("data block {i}")))
    }

    /// Decodes data block `i` from its stored bytes (`block_range(i)`, CRC included), fetched
    /// by the caller.
    pub fn block_from_raw(&self, i: usize, raw: &Bytes) -> CoreResult<Block> {
        if i >= self.inner.index.len() {
            return Err(CoreError::invalid(format!("block {i} out of range ({} blocks)", self.inner.index.len())));
        }
        let (start, end) = self.block_range(i);
        if raw.len() as u64 != end - start {
            return Err(CoreError::corrupt(
                start,
                format!("data block {i} should be {} bytes, got {}", end - start, raw.len()),
            ));
        }
        let payload = read_section(raw, 0, end - start, self.inner.info.compression, "data block")
            .map_err(|e| label_block(e.shifted(start), i))?;
        let format = BlockFormat::for_sst_version(self.inner.version)?;
        Block::decode(payload, format).map_err(|e| e.within(start, &format!("data block {i}")))
    }

    /// True when every data block is in memory (the SST was opened from the whole file).
    pub fn is_whole(&self) -> bool {
        self.inner.base == 0
    }

    pub fn file_len(&self) -> u64 {
        self.inner.file_len
    }

    pub fn might_contain(&self, key: &[u8]) -> bool {
        self.inner.filter.as_ref().is_none_or(|f| f.might_contain(key))
    }

    pub fn might_contain_hash(&self, h: u64) -> bool {
        self.inner.filter.as_ref().is_none_or(|f| f.might_contain_hash(h))
    }

    /// Index of the block where a search for `key` starts: the last block whose index key is
    /// < key (versions of one key may straddle a block boundary, newest first).
    pub fn find_block(&self, key: &[u8]) -> usize {
        let index = &self.inner.index;
        let p = &self.inner.prefixes;
        let shared_ok = index.len() > 1
            && key.len() >= p.shared
            && index[index.len() - 1].first_key.get(..p.shared) == key.get(..p.shared);
        let n = if shared_ok {
            // Every index key but block 0's (the empty key, always < key) starts with the
            // shared bytes, as `key` does: compare the numbers, then keys only where equal.
            let k = prefix_u64(key, p.shared);
            let lo = 1 + p.values[1..].partition_point(|&v| v < k);
            let hi = lo + p.values[lo..].partition_point(|&v| v == k);
            lo + index[lo..hi].partition_point(|m| m.first_key.as_ref() < key)
        } else {
            index.partition_point(|m| m.first_key.as_ref() < key)
        };
        n.saturating_sub(1)
    }

    #[allow(clippy::iter_not_returning_iterator, reason = "a cursor with a fallible `next`, not an Iterator")]
    pub fn iter(&self) -> SstIter {
        SstIter { file: self.clone(), next_block: 0, current: None }
    }

    /// The newest version of `key` in this SST (bloom filter first).
    pub fn get(&self, key: &[u8]) -> CoreResult<Option<Row>> {
        match self.inner.info.sst_type {
            SstType::Compacted => {
                if !self.might_contain(key) {
                    return Ok(None);
                }
                let mut it = self.iter();
                it.seek(key)?;
                Ok(it.next_row()?.filter(|r| r.key.as_ref() == key))
            }
            SstType::Wal => {
                // WAL rows are in seq order: the last match is the newest.
                let mut it = self.iter();
                let mut found = None;
                while let Some(row) = it.next_row()? {
                    if row.key.as_ref() == key {
                        found = Some(row);
                    }
                }
                Ok(found)
            }
        }
    }
}

impl SstFile {
    /// Indices of the data blocks that may hold keys in `[start, end)`.
    pub fn blocks_in_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> std::ops::Range<usize> {
        let first = start.map_or(0, |s| self.find_block(s));
        let last = match end {
            // Blocks whose index key is < end may hold keys < end.
            Some(e) => self.inner.index.partition_point(|m| m.first_key.as_ref() < e).max(first + 1),
            None => self.num_blocks(),
        };
        first..last.min(self.num_blocks())
    }
}

fn label_block(e: CoreError, i: usize) -> CoreError {
    match e {
        CoreError::Checksum { offset, stored, computed, .. } => CoreError::Corrupt {
            offset,
            message: format!("checksum mismatch in data block {i}: stored {stored:#010x}, computed {computed:#010x}"),
        },
        CoreError::Corrupt { offset, message } => {
            CoreError::Corrupt { offset, message: format!("data block {i}: {message}") }
        }
        other => other,
    }
}

/// Rows of an SST in stored order, block by block.
pub struct SstIter {
    file: SstFile,
    next_block: usize,
    current: Option<BlockIter>,
}

impl SstIter {
    pub fn next_row(&mut self) -> CoreResult<Option<Row>> {
        loop {
            if let Some(it) = &mut self.current {
                let start = self.file.inner.index[self.next_block - 1].offset;
                match it.next_row() {
                    Ok(Some(row)) => return Ok(Some(row)),
                    Ok(None) => self.current = None,
                    Err(e) => return Err(e.within(start, &format!("data block {}", self.next_block - 1))),
                }
            }
            if self.next_block >= self.file.inner.index.len() {
                return Ok(None);
            }
            self.current = Some(self.file.block(self.next_block)?.iter());
            self.next_block += 1;
        }
    }

    /// Positions the iterator at the first row whose key is >= `key` (compacted SSTs).
    pub fn seek(&mut self, key: &[u8]) -> CoreResult<()> {
        let b = self.file.find_block(key);
        let mut it = self.file.block(b)?.iter();
        let start = self.file.inner.index[b].offset;
        it.seek(key).map_err(|e| e.within(start, &format!("data block {b}")))?;
        self.current = Some(it);
        self.next_block = b + 1;
        Ok(())
    }

    /// Decodes the rest of the current block (or the next one) in one go.
    pub fn next_block_rows(&mut self, out: &mut Vec<Row>) -> CoreResult<bool> {
        if self.current.is_none() {
            if self.next_block >= self.file.inner.index.len() {
                return Ok(false);
            }
            self.current = Some(self.file.block(self.next_block)?.iter());
            self.next_block += 1;
        }
        let start = self.file.inner.index[self.next_block - 1].offset;
        if let Some(it) = &mut self.current {
            while let Some(row) =
                it.next_row().map_err(|e| e.within(start, &format!("data block {}", self.next_block - 1)))?
            {
                out.push(row);
            }
        }
        self.current = None;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u32) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let mut r =
                    Row::value(format!("key{i:07}").into_bytes(), format!("value-{i}").into_bytes(), u64::from(i) + 1);
                if i % 5 == 0 {
                    r = Row::tombstone(r.key, r.seq);
                }
                r.create_ts = Some(1000 + i64::from(i));
                r
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn find_block_agrees_with_a_plain_search(
            keys in proptest::collection::btree_set(proptest::collection::vec(proptest::prelude::prop_oneof![proptest::prelude::Just(0u8), proptest::prelude::Just(b'k'), 0u8..4, proptest::prelude::Just(255u8)], 1..14), 1..300),
            probes in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..14), 1..40),
            block_size in 40usize..300,
        ) {
            let rows: Vec<Row> = keys.iter().map(|k| Row::value(k.clone(), vec![1u8; 3], 1)).collect();
            let file = SstFile::open(Bytes::from(encode_sst(&rows, SstOptions { block_size, ..SstOptions::compacted() }).unwrap())).unwrap();
            for probe in probes.iter().chain(keys.iter()) {
                let plain = file.index().partition_point(|m| m.first_key.as_ref() < probe.as_slice()).saturating_sub(1);
                proptest::prop_assert_eq!(file.find_block(probe), plain);
            }
        }
    }

    #[test]
    fn separators() {
        assert_eq!(&separator(b"abc", b"abd")[..], b"abd");
        assert_eq!(&separator(b"abc", b"b")[..], b"b");
        assert_eq!(&separator(b"ab", b"abc")[..], b"abc");
        assert_eq!(&separator(b"ab", b"abcd")[..], b"abc");
        assert_eq!(&separator(b"abc", b"abc")[..], b"abc");
        assert_eq!(&separator(b"abzz", b"ac")[..], b"ac");
    }

    #[test]
    fn compacted_round_trip_get_and_filter() {
        for codec in [Compression::None, Compression::Snappy, Compression::Zlib, Compression::Lz4, Compression::Zstd] {
            let input = rows(3000);
            let opts = SstOptions { compression: codec, ..SstOptions::compacted() };
            let file = SstFile::open(Bytes::from(encode_sst(&input, opts).unwrap())).unwrap();
            assert!(file.filter().is_some());
            assert!(file.num_blocks() > 10);
            let mut it = file.iter();
            let mut back = Vec::new();
            while let Some(r) = it.next_row().unwrap() {
                back.push(r);
            }
            assert_eq!(back, input);
            for r in input.iter().step_by(7) {
                assert_eq!(file.get(&r.key).unwrap().as_ref(), Some(r));
            }
            assert_eq!(file.get(b"key").unwrap(), None);
            assert_eq!(file.get(b"zzz").unwrap(), None);
            let stats = file.stats().unwrap();
            assert_eq!(stats.num_deletes, 600);
            assert_eq!(stats.num_rows(), 3000);
        }
    }

    #[test]
    fn versions_straddling_blocks_get_the_newest() {
        let input: Vec<Row> = (0..400u64).rev().map(|s| Row::value(&b"same"[..], vec![b'x'; 30], s + 1)).collect();
        let mut all = vec![Row::value(&b"a"[..], &b"1"[..], 9)];
        all.extend(input);
        all.push(Row::value(&b"z"[..], &b"2"[..], 9));
        let file = SstFile::open(Bytes::from(
            encode_sst(&all, SstOptions { block_size: 256, ..SstOptions::compacted() }).unwrap(),
        ))
        .unwrap();
        assert!(file.num_blocks() > 20);
        assert_eq!(file.get(b"same").unwrap().unwrap().seq, 400);
        assert_eq!(file.get(b"z").unwrap().unwrap().seq, 9);
    }

    #[test]
    fn wal_flavour() {
        let mut input = rows(500);
        input.reverse();
        for (i, r) in input.iter_mut().enumerate() {
            r.seq = i as u64 / 3 + 1;
        }
        let file = SstFile::open(Bytes::from(encode_sst(&input, SstOptions::wal()).unwrap())).unwrap();
        assert_eq!(file.info().sst_type, SstType::Wal);
        assert!(file.filter().is_none() && file.stats().is_none());
        assert_eq!(file.info().first_entry.as_deref(), Some(&1u64.to_be_bytes()[..]));
        let r = &input[17];
        assert_eq!(file.get(&r.key).unwrap().as_ref(), Some(r));
    }

    #[test]
    fn unsorted_input_is_refused() {
        let mut input = rows(10);
        input.swap(3, 4);
        let err = encode_sst(&input, SstOptions::compacted()).unwrap_err();
        assert!(err.to_string().contains("row 4"), "{err}");
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_or_exact() {
        let input = rows(200);
        let data =
            encode_sst(&input, SstOptions { block_size: 512, min_filter_keys: 10, ..SstOptions::compacted() }).unwrap();
        for cut in 0..data.len() {
            assert!(SstFile::open(Bytes::from(data[..cut].to_vec())).is_err());
        }
        for i in (0..data.len()).step_by(3) {
            let mut bad = data.clone();
            bad[i] ^= 0x20;
            let result = SstFile::open(Bytes::from(bad)).and_then(|f| {
                let mut it = f.iter();
                let mut out = Vec::new();
                while let Some(r) = it.next_row()? {
                    out.push(r);
                }
                Ok(out)
            });
            if let Ok(out) = result {
                assert_eq!(out, input, "flip at {i} gave a wrong answer");
            }
        }
    }
}
