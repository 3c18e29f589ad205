//! Writing an SST: `SstBuilder` (compacted and WAL flavours) and `encode_sst`.
//!
//! A large SST need not be held whole: `take_ready` hands out the bytes of the data blocks
//! finished so far (an upload sends them on as parts), and offsets keep counting from the file's start,
//! so the bytes are the same as when the file is built in one piece. The filter, index and
//! stats come after every data block, so they are only known, and written, at `finish`.

use std::borrow::Borrow;

use bytes::Bytes;

use super::{SstFile, TailOpen, SST_FORMAT_VERSION};
use crate::bloom::{encode_composite, BloomFilterBuilder, DEFAULT_FILTER_NAME};
use crate::error::{CoreError, CoreResult};
use crate::format::block::{BlockBuilder, MAX_BLOCK_SIZE};
use crate::format::codec::{crc32, write_section, Compression};
use crate::format::row::{show_key, Row, RowKind, RowRef};
use crate::format::tables::{
    encode_index, BlockMeta, BlockStats, SsTableInfo, SstStats, SstType, FILTER_FORMAT_COMPOSITE,
};

#[derive(Clone, Debug)]
pub struct SstOptions {
    pub sst_type: SstType,
    pub block_size: usize,
    pub compression: Compression,
    pub bloom_bits_per_key: u32,
    pub min_filter_keys: u64,
    /// Pads each data block with zeros to a multiple of `block_size` (SlateDB 0.18's
    /// `with_sst_block_alignment`); compacted SSTs only, and never with compression.
    pub block_alignment: bool,
}

impl SstOptions {
    pub fn compacted() -> Self {
        SstOptions {
            sst_type: SstType::Compacted,
            block_size: 4096,
            compression: Compression::None,
            bloom_bits_per_key: 10,
            min_filter_keys: 1000,
            block_alignment: false,
        }
    }

    pub fn wal() -> Self {
        SstOptions { sst_type: SstType::Wal, block_size: MAX_BLOCK_SIZE, ..Self::compacted() }
    }
}

/// The shortest key that is > `prev` and <= `next` (SlateDB's `compute_index_key`), given
/// `prev < next`; equal keys (two versions of one key split across blocks) give the key.
pub(super) fn separator(prev: &[u8], next: &[u8]) -> Bytes {
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
    /// Bytes handed out by `take_ready`: `out` starts at this file offset.
    handed: u64,
    block: BlockBuilder,
    block_stats: BlockStats,
    index: Vec<BlockMeta>,
    pending_index_key: Bytes,
    /// The previous row's key (copied) and seq: order checks and index keys read them.
    prev_key: Vec<u8>,
    prev_seq: Option<u64>,
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
        if opts.block_alignment && (opts.sst_type == SstType::Wal || opts.compression != Compression::None) {
            // 0.18 refuses the same: a padded block must not depend on how well it compresses,
            // and WAL blocks are never padded.
            return Err(CoreError::invalid("block alignment is for uncompressed compacted SSTs only"));
        }
        let filter = (opts.sst_type == SstType::Compacted && opts.bloom_bits_per_key > 0)
            .then(|| BloomFilterBuilder::new(opts.bloom_bits_per_key));
        Ok(SstBuilder {
            block: BlockBuilder::new(block_capacity(&opts)),
            opts,
            out: Vec::new(),
            handed: 0,
            block_stats: BlockStats::default(),
            index: Vec::new(),
            pending_index_key: Bytes::new(),
            prev_key: Vec::new(),
            prev_seq: None,
            first_key: None,
            first_seq: None,
            stats: SstStats::default(),
            filter,
        })
    }

    /// Writes into `buf` (emptied first), reusing its memory: a buffer an earlier SST left
    /// behind has its pages mapped already, where a fresh one faults in each page, zeroed.
    #[must_use]
    pub fn with_buffer(mut self, mut buf: Vec<u8>) -> Self {
        buf.clear();
        self.out = buf;
        self
    }

    /// Sets aside room for `bytes` of output up front, so a large SST grows in place instead
    /// of by repeated doubling (which would briefly hold twice its size).
    pub fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes.saturating_sub(self.out.len()));
    }

    /// Bytes written so far (finished data blocks), a lower bound of the final size.
    pub fn estimated_size(&self) -> usize {
        self.handed as usize + self.out.len()
    }

    /// File offset of the next byte written.
    fn pos(&self) -> u64 {
        self.handed + self.out.len() as u64
    }

    /// Finished bytes not handed out yet.
    pub fn ready_len(&self) -> usize {
        self.out.len()
    }

    /// Hands out the file's next `n` bytes (`n <= ready_len()`; they may end inside a block).
    /// The bytes after them move to a buffer with the same room, so a piece grows without
    /// copies, and pieces of one size stay apart: an upload part that is exactly one piece
    /// keeps no other piece alive.
    pub fn take_ready(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.out.len());
        let mut next = Vec::with_capacity(self.out.capacity());
        next.extend_from_slice(&self.out[n..]);
        self.out.truncate(n);
        self.handed += n as u64;
        std::mem::replace(&mut self.out, next)
    }

    pub fn num_rows(&self) -> u64 {
        self.stats.num_rows() + self.block.len() as u64
    }

    pub fn add(&mut self, row: &Row) -> CoreResult<()> {
        self.add_ref(row.as_ref())
    }

    /// `add` from borrowed fields.
    pub fn add_ref(&mut self, row: RowRef<'_>) -> CoreResult<()> {
        row.validate()?;
        let pk = &self.prev_key[..];
        match (self.prev_seq, self.opts.sst_type) {
            (Some(ps), SstType::Compacted) => {
                if !(pk < row.key || (pk == row.key && ps > row.seq)) {
                    return Err(CoreError::invalid(format!(
                        "rows of a compacted SST must be sorted by key, then by seq descending, \
                         without duplicates: key {} seq {} follows key {} seq {}",
                        show_key(row.key),
                        row.seq,
                        show_key(pk),
                        ps
                    )));
                }
            }
            (Some(ps), SstType::Wal) => {
                if row.seq < ps {
                    return Err(CoreError::invalid(format!(
                        "rows of a WAL SST must be in seq order: key {} seq {} follows seq {}",
                        show_key(row.key),
                        row.seq,
                        ps
                    )));
                }
            }
            (None, _) => {}
        }
        // The index key is only needed when the row starts a block.
        let index_key = || match (self.prev_seq, self.opts.sst_type) {
            (_, SstType::Wal) => Bytes::copy_from_slice(&row.seq.to_be_bytes()),
            (Some(_), SstType::Compacted) => separator(pk, row.key),
            (None, SstType::Compacted) => Bytes::new(),
        };
        if !self.block.would_fit(&row) {
            let key = index_key();
            self.finish_block()?;
            self.pending_index_key = key;
        } else if self.block.is_empty() {
            self.pending_index_key = index_key();
        }
        self.block.add(&row)?;
        match row.kind {
            RowKind::Value => self.block_stats.num_puts = self.block_stats.num_puts.saturating_add(1),
            RowKind::Tombstone => self.block_stats.num_deletes = self.block_stats.num_deletes.saturating_add(1),
            RowKind::Merge => self.block_stats.num_merges = self.block_stats.num_merges.saturating_add(1),
        }
        self.stats.raw_key_size += row.key.len() as u64;
        self.stats.raw_val_size += row.value.len() as u64;
        if let Some(f) = &mut self.filter {
            f.add_key(row.key);
        }
        if self.first_key.is_none() {
            self.first_key = Some(Bytes::copy_from_slice(row.key));
            self.first_seq = Some(row.seq);
        }
        self.prev_key.clear();
        self.prev_key.extend_from_slice(row.key);
        self.prev_seq = Some(row.seq);
        Ok(())
    }

    fn finish_block(&mut self) -> CoreResult<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, BlockBuilder::new(block_capacity(&self.opts)));
        let offset = self.pos();
        let start = self.out.len();
        let len = write_section(&mut self.out, self.opts.compression, &block.finish())?;
        let mut encoded_len = 0;
        if self.opts.block_alignment {
            let padded = len.next_multiple_of(self.opts.block_size as u64);
            if padded != len {
                // Blocks are at most 64 KiB plus one oversized row, whose length is a u32.
                encoded_len = u32::try_from(len).map_err(|_| CoreError::invalid("a padded block exceeds 4 GiB"))?;
                // `out` starts at file offset `handed` (`take_ready`), so pad relative to it.
                self.out.resize(start + padded as usize, 0);
            }
        }
        self.index.push(BlockMeta { offset, first_key: std::mem::take(&mut self.pending_index_key), encoded_len });
        let bs = std::mem::take(&mut self.block_stats);
        self.stats.num_puts += u64::from(bs.num_puts);
        self.stats.num_deletes += u64::from(bs.num_deletes);
        self.stats.num_merges += u64::from(bs.num_merges);
        self.stats.block_stats.push(bs);
        Ok(())
    }

    /// Finishes the file: its bytes, or with `take_ready` called before, the bytes after
    /// those handed out. An SST needs at least one row.
    pub fn finish(self) -> CoreResult<Vec<u8>> {
        self.finish_tail().map(|t| t.rest)
    }

    /// Finishes the file (`finish`), keeping where its metadata starts.
    pub fn finish_tail(mut self) -> CoreResult<FinishedSst> {
        self.finish_block()?;
        if self.index.is_empty() {
            return Err(CoreError::invalid("an SST needs at least one row"));
        }
        let codec = self.opts.compression;
        let data_end = self.pos();
        let compacted = self.opts.sst_type == SstType::Compacted;
        let mut filter_len = 0;
        // Taken: its key hashes (8 bytes a key) are freed before the index is encoded.
        if let Some(f) = self.filter.take() {
            if self.stats.num_rows() >= self.opts.min_filter_keys {
                let block = encode_composite(&[(DEFAULT_FILTER_NAME, &f.build())]);
                filter_len = write_section(&mut self.out, codec, &block)?;
            }
        }
        let index_offset = self.pos();
        let index_len = write_section(&mut self.out, codec, &encode_index(&std::mem::take(&mut self.index)))?;
        let (stats_offset, stats_len) = if compacted {
            let at = self.pos();
            (at, write_section(&mut self.out, codec, &self.stats.encode())?)
        } else {
            (0, 0)
        };
        let (first_entry, last_entry) = if compacted {
            (self.first_key.clone(), self.prev_seq.map(|_| Bytes::copy_from_slice(&self.prev_key)))
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
        let meta_offset = self.pos();
        let meta = info.encode();
        self.out.extend_from_slice(&meta);
        self.out.extend_from_slice(&crc32(&meta).to_be_bytes());
        self.out.extend_from_slice(&meta_offset.to_be_bytes());
        self.out.extend_from_slice(&SST_FORMAT_VERSION.to_be_bytes());
        let file_len = self.pos();
        // Only finished data blocks' bytes are handed out before this: the data ends in `rest`.
        let meta_at = (data_end - self.handed) as usize;
        Ok(FinishedSst { rest: self.out, file_len, meta_at })
    }
}

/// A finished SST's last bytes: everything after what `take_ready` handed out.
pub struct FinishedSst {
    pub rest: Vec<u8>,
    pub file_len: u64,
    /// Where in `rest` the data ends and the metadata (filter, index, stats, info) starts.
    meta_at: usize,
}

impl FinishedSst {
    /// The SST opened from a copy of its metadata: what reads and the manifest need of it,
    /// without keeping its data (or `rest`) alive.
    pub fn open_meta(&self) -> CoreResult<SstFile> {
        let tail = Bytes::copy_from_slice(&self.rest[self.meta_at..]);
        match SstFile::open_tail(tail, self.file_len)? {
            TailOpen::Opened(f) => Ok(f),
            TailOpen::NeedFrom(_) => Err(CoreError::invalid("an SST's metadata lies before its data end")),
        }
    }
}

/// Bytes a data block holds before it is closed: with alignment, room is left for the CRC so a
/// full block fills exactly one `block_size` unit (0.18's `block_capacity`).
fn block_capacity(opts: &SstOptions) -> usize {
    if opts.block_alignment {
        opts.block_size.saturating_sub(4).max(1)
    } else {
        opts.block_size
    }
}

/// Encodes `rows` as one SST.
pub fn encode_sst<R: Borrow<Row>>(rows: impl IntoIterator<Item = R>, opts: SstOptions) -> CoreResult<Vec<u8>> {
    let mut b = SstBuilder::new(opts)?;
    for (i, row) in rows.into_iter().enumerate() {
        b.add(row.borrow()).map_err(|e| match e {
            CoreError::Invalid(m) => CoreError::Invalid(format!("row {i}: {m}")),
            other => other,
        })?;
    }
    b.finish()
}
