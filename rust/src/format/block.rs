//! Data blocks.
//!
//! Format V2 (SST format version 2, what 0.17.0 writes):
//!
//! ```text
//! entry_0 .. entry_{m-1} | restart_0 (u16 BE) .. restart_{r-1} (u16 BE) | r (u16 BE)
//! ```
//!
//! Entries use row codec V2, prefix-compressed against the previous key; every 16th entry is
//! a restart point holding its full key, and `restart_j` is its byte offset. A row is added
//! while `entries + 2*restarts + 2 (+2 if it opens a restart) + row <= block_size`; the first
//! row of a block is always accepted, however large.
//!
//! Format V1 (legacy, read only): one u16 offset per entry instead of restarts, row codec V0
//! with the prefix shared against the block's first key.

use bytes::Bytes;

use super::row::{decode_v0, decode_v2_entry, decode_v2_with, encode_v2, encoded_len_v2, Row, RowRef};
use crate::error::{CoreError, CoreResult};

pub const RESTART_INTERVAL: usize = 16;
/// Restart offsets are u16, so a block's entry area must stay addressable by them.
pub const MAX_BLOCK_SIZE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFormat {
    V1,
    V2,
}

impl BlockFormat {
    pub fn for_sst_version(version: u16) -> CoreResult<Self> {
        match version {
            1 => Ok(BlockFormat::V1),
            2 => Ok(BlockFormat::V2),
            other => Err(CoreError::UnsupportedVersion {
                offset: 0,
                what: "SST format",
                version: u32::from(other),
                supported: "1, 2",
            }),
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Builds one V2 data block.
pub struct BlockBuilder {
    data: Vec<u8>,
    restarts: Vec<u16>,
    block_size: usize,
    count: usize,
    /// The previous key, copied (prefix compression reads it).
    last_key: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(block_size: usize) -> Self {
        BlockBuilder {
            data: Vec::with_capacity(block_size.min(MAX_BLOCK_SIZE) + 64),
            restarts: Vec::new(),
            block_size,
            count: 0,
            last_key: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    fn at_restart(&self) -> bool {
        self.count % RESTART_INTERVAL == 0
    }

    fn shared_with_last(&self, row: &RowRef<'_>) -> usize {
        if self.at_restart() {
            0
        } else {
            common_prefix(&self.last_key, row.key)
        }
    }

    /// Would `row` fit? An empty block accepts anything.
    pub fn would_fit(&self, row: &RowRef<'_>) -> bool {
        if self.is_empty() {
            return true;
        }
        let current = self.data.len() + 2 * self.restarts.len() + 2;
        let restart = if self.at_restart() { 2 } else { 0 };
        current + encoded_len_v2(row, self.shared_with_last(row)) + restart <= self.block_size
    }

    /// Appends `row`; the caller checked `would_fit` (or the block is empty).
    pub fn add(&mut self, row: &RowRef<'_>) -> CoreResult<()> {
        let shared = self.shared_with_last(row);
        if self.at_restart() {
            let offset = u16::try_from(self.data.len())
                .map_err(|_| CoreError::invalid("block entry area outgrew the u16 restart offsets"))?;
            self.restarts.push(offset);
        }
        encode_v2(&mut self.data, row, shared);
        self.last_key.clear();
        self.last_key.extend_from_slice(row.key);
        self.count += 1;
        Ok(())
    }

    /// The raw (uncompressed) block bytes.
    pub fn finish(mut self) -> Vec<u8> {
        for r in &self.restarts {
            self.data.extend_from_slice(&r.to_be_bytes());
        }
        self.data.extend_from_slice(&(self.restarts.len() as u16).to_be_bytes());
        self.data
    }
}

/// A decoded (decompressed, checksum-verified) data block. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Block {
    data: Bytes,
    entries_end: usize,
    num_offsets: usize,
    format: BlockFormat,
}

impl Block {
    /// Validates the trailer of `raw`; offsets are positions within `raw`.
    pub fn decode(raw: Bytes, format: BlockFormat) -> CoreResult<Block> {
        let len = raw.len();
        if len < 2 {
            return Err(CoreError::corrupt(0, format!("block of {len} bytes has no trailer")));
        }
        let n = usize::from(u16::from_be_bytes([raw[len - 2], raw[len - 1]]));
        let trailer = 2 + 2 * n;
        if trailer > len {
            return Err(CoreError::corrupt(
                (len - 2) as u64,
                format!("block claims {n} offsets but is only {len} bytes long"),
            ));
        }
        let entries_end = len - trailer;
        if n == 0 && entries_end != 0 {
            return Err(CoreError::corrupt((len - 2) as u64, "block has entries but no offsets"));
        }
        let block = Block { data: raw, entries_end, num_offsets: n, format };
        let mut prev = None;
        for i in 0..n {
            let off = block.offset(i);
            let bad = match prev {
                None => off != 0,
                Some(p) => off <= p,
            } || off >= entries_end;
            if bad {
                return Err(CoreError::corrupt(
                    (entries_end + 2 * i) as u64,
                    format!("block offset {i} = {off} is out of order or out of range"),
                ));
            }
            prev = Some(off);
        }
        Ok(block)
    }

    fn offset(&self, i: usize) -> usize {
        let at = self.entries_end + 2 * i;
        usize::from(u16::from_be_bytes([self.data[at], self.data[at + 1]]))
    }

    pub fn format(&self) -> BlockFormat {
        self.format
    }

    #[allow(clippy::iter_not_returning_iterator, reason = "a cursor with a fallible `next`, not an Iterator")]
    pub fn iter(&self) -> BlockIter {
        BlockIter {
            entries: self.data.slice(..self.entries_end),
            block: self.clone(),
            pos: 0,
            next_offset: 0,
            key: Vec::new(),
            first_key: Vec::new(),
            keys: bytes::BytesMut::new(),
            peeked: None,
            undo: (0, 0),
        }
    }

    pub fn rows(&self) -> CoreResult<Vec<Row>> {
        let mut it = self.iter();
        let mut out = Vec::new();
        while let Some(row) = it.next_row()? {
            out.push(row);
        }
        Ok(out)
    }

    /// Key of the V2 restart entry `i`, borrowed from the block: a restart entry stores its
    /// whole key (shared length 0), so no key needs rebuilding.
    fn restart_key(&self, i: usize) -> CoreResult<&[u8]> {
        let pos = self.offset(i);
        let mut c = super::cursor::Cursor::at(&self.data[..self.entries_end], pos);
        let shared = c.varint32("shared key length")?;
        if shared != 0 {
            return Err(CoreError::corrupt(pos as u64, format!("restart entry shares {shared} key bytes")));
        }
        let unshared = c.varint32("unshared key length")? as usize;
        c.varint32("value length")?;
        c.take(unshared, "key")
    }
}

/// Walks a block's rows in stored order; `seek` jumps to the first key >= a target.
pub struct BlockIter {
    block: Block,
    /// The entry area, sliced once: rows decode against it (and their values borrow it).
    entries: Bytes,
    pos: usize,
    /// Index of the next restart (V2) or entry (V1) offset the walk must land on.
    next_offset: usize,
    key: Vec<u8>,
    first_key: Vec<u8>,
    /// Where decoded keys are kept (`decode_v2_with`).
    keys: bytes::BytesMut,
    /// The row `seek` stopped at, returned by the next `next_row`.
    peeked: Option<Row>,
    /// Where the walk was before the last `next_ref` (`pos`, `next_offset`): `unread`.
    undo: (usize, usize),
}

impl BlockIter {
    pub fn next_row(&mut self) -> CoreResult<Option<Row>> {
        if let Some(row) = self.peeked.take() {
            return Ok(Some(row));
        }
        let b = &self.block;
        if self.pos >= b.entries_end {
            if self.next_offset < b.num_offsets {
                return Err(CoreError::corrupt(self.pos as u64, "block ends before its last restart point"));
            }
            return Ok(None);
        }
        let entries = &self.entries;
        let start = self.pos;
        let at_offset = self.next_offset < b.num_offsets && b.offset(self.next_offset) == start;
        match b.format {
            BlockFormat::V2 => {
                if at_offset {
                    // A restart entry stores its whole key: decode against an empty key so a
                    // nonzero shared length is caught as corruption.
                    self.key.clear();
                    self.next_offset += 1;
                } else if self.next_offset < b.num_offsets && b.offset(self.next_offset) < start {
                    return Err(CoreError::corrupt(start as u64, "row straddles a restart point"));
                }
                let row = decode_v2_with(entries, &mut self.pos, &mut self.key, &mut self.keys)?;
                Ok(Some(row))
            }
            BlockFormat::V1 => {
                if !at_offset {
                    return Err(CoreError::corrupt(start as u64, "row does not start at its recorded offset"));
                }
                self.next_offset += 1;
                let row = decode_v0(entries, &mut self.pos, &self.first_key)?;
                if start == 0 {
                    self.first_key = row.key.to_vec();
                }
                Ok(Some(row))
            }
        }
    }

    /// Whether `next_ref` can walk this block (V2; and no row held back by `seek` or
    /// `put_back`, which `next_row` hands out first).
    pub fn borrows(&self) -> bool {
        self.block.format == BlockFormat::V2 && self.peeked.is_none()
    }

    /// Gives back the row `next_row` just returned: the next `next_row` returns it again.
    pub fn put_back(&mut self, row: Row) {
        self.peeked = Some(row);
    }

    /// `next_row` without making a `Row` (V2 blocks, nothing held back: `borrows`): the key
    /// is the walk's own buffer and the value a slice of the block. `unread` gives it back.
    /// A corrupt entry leaves the walk where it was, so a retry fails the same way.
    pub fn next_ref(&mut self) -> CoreResult<Option<RowRef<'_>>> {
        let b = &self.block;
        if b.format != BlockFormat::V2 || self.peeked.is_some() {
            return Err(CoreError::Internal("next_ref walks V2 blocks with no row held back".into()));
        }
        let start = self.pos;
        if start >= b.entries_end {
            if self.next_offset < b.num_offsets {
                return Err(CoreError::corrupt(start as u64, "block ends before its last restart point"));
            }
            return Ok(None);
        }
        self.undo = (start, self.next_offset);
        if self.next_offset < b.num_offsets {
            let restart = b.offset(self.next_offset);
            if restart == start {
                self.key.clear();
                self.next_offset += 1;
            } else if restart < start {
                return Err(CoreError::corrupt(start as u64, "row straddles a restart point"));
            }
        }
        match decode_v2_entry(&self.entries, &mut self.pos, &mut self.key) {
            Ok(e) => Ok(Some(RowRef {
                key: &self.key,
                value: &self.entries[e.value],
                seq: e.seq,
                kind: e.kind,
                expire_ts: e.expire_ts,
                create_ts: e.create_ts,
            })),
            Err(err) => {
                self.next_offset = self.undo.1;
                Err(err)
            }
        }
    }

    /// Undoes the last `next_ref`: its row comes again.
    pub fn unread(&mut self) {
        (self.pos, self.next_offset) = self.undo;
    }

    /// Positions the walk so that `next_row` returns the first row whose key is >= `target`.
    pub fn seek(&mut self, target: &[u8]) -> CoreResult<()> {
        if self.block.format == BlockFormat::V2 && self.block.num_offsets > 0 {
            // Last restart whose key is < target; rows before it are all < target too.
            let (mut lo, mut hi) = (0usize, self.block.num_offsets);
            while hi - lo > 1 {
                let mid = usize::midpoint(lo, hi);
                if self.block.restart_key(mid)? < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            self.pos = self.block.offset(lo);
            self.next_offset = lo;
            self.key.clear();
        }
        self.peeked = None;
        loop {
            match self.next_row()? {
                None => return Ok(()),
                Some(row) if row.key.as_ref() >= target => {
                    // Kept for the next `next_row`: no state to rewind.
                    self.peeked = Some(row);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Row> {
        (0..n).map(|i| Row::value(format!("key{i:05}").into_bytes(), vec![b'v'; i % 7], i as u64)).collect()
    }

    fn build(rows: &[Row], size: usize) -> Vec<Vec<u8>> {
        let mut blocks = Vec::new();
        let mut b = BlockBuilder::new(size);
        for r in rows {
            if !b.would_fit(&r.as_ref()) {
                blocks.push(std::mem::replace(&mut b, BlockBuilder::new(size)).finish());
            }
            b.add(&r.as_ref()).unwrap();
        }
        blocks.push(b.finish());
        blocks
    }

    #[test]
    fn round_trip_and_size_bound() {
        let input = rows(500);
        let blocks = build(&input, 512);
        assert!(blocks.len() > 5);
        let mut back = Vec::new();
        for raw in &blocks {
            assert!(raw.len() <= 512);
            back.extend(Block::decode(Bytes::from(raw.clone()), BlockFormat::V2).unwrap().rows().unwrap());
        }
        assert_eq!(back, input);
    }

    #[test]
    fn restart_points_every_16_rows() {
        let raw = build(&rows(40), 4096).pop().unwrap();
        let n = u16::from_be_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
        assert_eq!(n, 3);
    }

    #[test]
    fn seek_finds_first_key_at_or_after_target() {
        let input = rows(100);
        let raw = build(&input, 65536).pop().unwrap();
        let block = Block::decode(Bytes::from(raw), BlockFormat::V2).unwrap();
        for (i, r) in input.iter().enumerate() {
            let mut it = block.iter();
            it.seek(&r.key).unwrap();
            assert_eq!(it.next_row().unwrap().unwrap().key, r.key, "row {i}");
            let mut probe = r.key.to_vec();
            probe.push(0);
            let mut it = block.iter();
            it.seek(&probe).unwrap();
            assert_eq!(it.next_row().unwrap().map(|r| r.key), input.get(i + 1).map(|r| r.key.clone()));
        }
        let mut it = block.iter();
        it.seek(b"a").unwrap();
        assert_eq!(it.next_row().unwrap().unwrap().key, input[0].key);
    }

    #[test]
    fn corrupt_trailers_are_errors() {
        let raw = build(&rows(40), 4096).pop().unwrap();
        for cut in 0..raw.len() {
            let _ = Block::decode(Bytes::from(raw[..cut].to_vec()), BlockFormat::V2).and_then(|b| b.rows());
        }
        assert!(Block::decode(Bytes::from_static(&[0]), BlockFormat::V2).is_err());
        assert!(Block::decode(Bytes::from_static(&[0, 9]), BlockFormat::V2).is_err());
    }
}
