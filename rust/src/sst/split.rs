//! `SplitWriter`: a sorted row stream written as consecutive SSTs, an output cut once its
//! data reaches `max_sst_size` (a compaction's outputs), and only between two keys: the
//! versions of one key stay in one SST, since a read of a sorted run bisects on the SSTs' key
//! ranges and looks in one SST only.
//!
//! Each SST leaves in pieces (`next_piece`): its data `piece_size` bytes at a time as blocks
//! are finished, then its last bytes with its metadata, opened. Memory holds one piece of
//! data, plus the index and filter of the SST being written, whatever `max_sst_size` is; an
//! SST smaller than `piece_size` leaves as one piece.

use bytes::Bytes;

use crate::error::CoreResult;
use crate::format::row::Row;

use super::{SstBuilder, SstFile, SstOptions};

/// Room for the blocks that overshoot a piece, so a piece does not regrow by doubling.
const PIECE_SLACK: usize = 256 * 1024;

/// Pieces up to this size get their room up front; larger ones (an SST in one piece) grow.
const MAX_RESERVED: usize = 64 << 20;

/// The least room of a piece's buffer: glibc maps an allocation this large with mmap
/// whatever its adaptive threshold (which stops at 32 MiB), so a piece's memory goes back to
/// the system once uploaded. Smaller pieces would come from the heap once a freed 32 MiB
/// buffer (a filter's hashes) raised the threshold, and the heap keeps what it was given.
/// Only the pages written count: the rest of the room is address space.
const MIN_ROOM: usize = 32 << 20;

/// Part of an SST being written.
pub enum Piece {
    /// The SST's next bytes (whole data blocks); more follow.
    Data(Vec<u8>),
    /// The SST's last bytes, and the SST opened from its metadata: it is complete.
    Last(Vec<u8>, SstFile),
}

pub struct SplitWriter {
    opts: SstOptions,
    max_sst_size: usize,
    piece_size: usize,
    builder: Option<SstBuilder>,
    /// The key whose row filled the current SST: it takes that key's older versions too.
    full_at: Option<Bytes>,
    /// The last piece of an SST cut by `add` or `finish`, not yet handed out.
    done: Option<Piece>,
}

impl SplitWriter {
    /// `piece_size` >= 1: the data handed out at a time (`usize::MAX`: each SST in one piece).
    pub fn new(opts: SstOptions, max_sst_size: usize, piece_size: usize) -> Self {
        SplitWriter { opts, max_sst_size, piece_size: piece_size.max(1), builder: None, full_at: None, done: None }
    }

    /// Adds a row. When the current SST was full and this row starts a new key, that SST is
    /// finished (its last piece waits in `next_piece`) and this row starts the next one.
    /// Pieces must be taken (`next_piece` until None) before the next row.
    pub fn add(&mut self, row: &Row) -> CoreResult<()> {
        if self.full_at.as_ref().is_some_and(|last| *last != row.key) {
            self.finish()?;
        }
        if self.builder.is_none() {
            let mut b = SstBuilder::new(self.opts.clone())?;
            let piece = self.piece_size.min(self.max_sst_size);
            if piece <= MAX_RESERVED {
                b.reserve((piece + PIECE_SLACK).max(MIN_ROOM));
            }
            self.builder = Some(b);
        }
        let Some(b) = &mut self.builder else { return Ok(()) };
        b.add(row)?;
        if self.full_at.is_none() && b.estimated_size() >= self.max_sst_size {
            self.full_at = Some(row.key.clone());
        }
        Ok(())
    }

    /// Finishes the SST being written (nothing when it holds no row); its last piece waits
    /// in `next_piece`.
    pub fn finish(&mut self) -> CoreResult<()> {
        self.full_at = None;
        if let Some(b) = self.builder.take() {
            debug_assert!(self.done.is_none(), "pieces are taken before the next SST ends");
            let t = b.finish_tail()?;
            let file = t.open_meta()?;
            self.done = Some(Piece::Last(t.rest, file));
        }
        Ok(())
    }

    /// Whether `next_piece` has a piece to hand out.
    pub fn has_piece(&self) -> bool {
        self.done.is_some() || self.builder.as_ref().is_some_and(|b| b.ready_len() >= self.piece_size)
    }

    /// The next piece to hand out: a finished SST's last one first, else `piece_size` bytes
    /// of the current SST's data once they are ready; None until then.
    pub fn next_piece(&mut self) -> Option<Piece> {
        if let Some(p) = self.done.take() {
            return Some(p);
        }
        let b = self.builder.as_mut()?;
        (b.ready_len() >= self.piece_size).then(|| Piece::Data(b.take_ready(self.piece_size)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// Every SST `w` hands out after `add`ing `input` and finishing, each reassembled from
    /// its pieces and checked against the metadata its last piece came with.
    fn write_all(w: &mut SplitWriter, input: &[Row]) -> Vec<Vec<u8>> {
        fn take(w: &mut SplitWriter, current: &mut Vec<u8>, outputs: &mut Vec<Vec<u8>>) {
            while let Some(p) = w.next_piece() {
                match p {
                    Piece::Data(d) => {
                        assert!(!d.is_empty());
                        current.extend_from_slice(&d);
                    }
                    Piece::Last(d, file) => {
                        current.extend_from_slice(&d);
                        let whole = SstFile::open(Bytes::from(current.clone())).unwrap();
                        assert_eq!(file.info(), whole.info());
                        assert_eq!(file.file_len(), whole.file_len());
                        assert_eq!(file.index(), whole.index());
                        outputs.push(std::mem::take(current));
                    }
                }
            }
        }
        let (mut outputs, mut current) = (Vec::new(), Vec::new());
        for r in input {
            w.add(r).unwrap();
            take(w, &mut current, &mut outputs);
        }
        w.finish().unwrap();
        take(w, &mut current, &mut outputs);
        assert!(current.is_empty() && w.next_piece().is_none(), "nothing pending after finish");
        outputs
    }

    fn rows_of(data: Vec<u8>) -> Vec<Row> {
        let f = SstFile::open(Bytes::from(data)).unwrap();
        let mut it = f.iter();
        let mut out = Vec::new();
        while let Some(r) = it.next_row().unwrap() {
            out.push(r);
        }
        out
    }

    #[test]
    fn cuts_an_output_at_max_sst_size_and_keeps_every_row() {
        let input: Vec<Row> =
            (0..3000u32).map(|i| Row::value(format!("key{i:06}").into_bytes(), vec![7u8; 40], 1)).collect();
        let mut w = SplitWriter::new(SstOptions::compacted(), 32 * 1024, usize::MAX);
        let outputs = write_all(&mut w, &input);
        assert!(outputs.len() > 3, "{} outputs", outputs.len());
        for data in &outputs[..outputs.len() - 1] {
            assert!(data.len() >= 32 * 1024 && data.len() < 40 * 1024, "{} bytes", data.len());
        }
        let got: Vec<Row> = outputs.into_iter().flat_map(rows_of).collect();
        assert_eq!(got, input);
    }

    #[test]
    fn pieces_are_the_bytes_of_the_sst_built_whole() {
        // The format is pinned byte for byte: handing an SST out in pieces changes nothing.
        let input: Vec<Row> = (0..20_000u32)
            .map(|i| Row::value(format!("key{i:07}").into_bytes(), format!("v{}", i * 7919).into_bytes(), 9))
            .collect();
        for codec in [crate::format::codec::Compression::None, crate::format::codec::Compression::Lz4] {
            let opts = SstOptions { compression: codec, ..SstOptions::compacted() };
            let whole = write_all(&mut SplitWriter::new(opts.clone(), 32 * 1024, usize::MAX), &input);
            assert!(whole.len() > 2);
            for piece_size in [1, 4096, 10_000, 1 << 20] {
                let pieces = write_all(&mut SplitWriter::new(opts.clone(), 32 * 1024, piece_size), &input);
                assert_eq!(pieces, whole, "piece_size {piece_size}");
            }
            let one = write_all(&mut SplitWriter::new(opts.clone(), usize::MAX, 4096), &input);
            assert_eq!(one, vec![crate::sst::encode_sst(&input, opts).unwrap()]);
        }
    }

    #[test]
    fn data_leaves_in_pieces_of_piece_size() {
        let input: Vec<Row> =
            (0..5000u32).map(|i| Row::value(format!("key{i:06}").into_bytes(), vec![5u8; 60], 1)).collect();
        let mut w = SplitWriter::new(SstOptions::compacted(), usize::MAX, 16 * 1024);
        let (mut data, mut last) = (Vec::new(), None);
        for r in &input {
            w.add(r).unwrap();
            while let Some(p) = w.next_piece() {
                match p {
                    Piece::Data(d) => data.push(d.len()),
                    Piece::Last(d, _) => last = Some(d.len()),
                }
            }
        }
        assert!(last.is_none());
        w.finish().unwrap();
        assert!(matches!(w.next_piece(), Some(Piece::Last(..))));
        assert!(data.len() > 10, "{data:?}");
        assert!(data.iter().all(|&n| n == 16 * 1024), "{data:?}");
    }

    #[test]
    fn outputs_are_cut_when_a_finished_block_reaches_the_size() {
        // Blocks of one row: adding b finishes a's block, which reaches the size; the SST is
        // handed out when the next key (c) arrives, and c starts the next one.
        let mut w = SplitWriter::new(SstOptions { block_size: 1, ..SstOptions::compacted() }, 1, usize::MAX);
        w.add(&Row::value(&b"a"[..], &b"1"[..], 1)).unwrap();
        assert!(w.next_piece().is_none());
        w.add(&Row::value(&b"b"[..], &b"2"[..], 1)).unwrap();
        assert!(w.next_piece().is_none());
        w.add(&Row::value(&b"c"[..], &b"3"[..], 1)).unwrap();
        let Some(Piece::Last(first, _)) = w.next_piece() else { panic!("the first SST is done") };
        assert!(w.next_piece().is_none());
        assert_eq!(rows_of(first).len(), 2);
        w.finish().unwrap();
        let Some(Piece::Last(second, _)) = w.next_piece() else { panic!("the second SST is done") };
        assert_eq!(rows_of(second)[0].key.as_ref(), b"c");
        w.finish().unwrap();
        assert!(w.next_piece().is_none());
    }

    #[test]
    fn never_cuts_between_versions_of_one_key() {
        // Each key has several versions (newest first), so that some cut lands inside them.
        let mut input = Vec::new();
        for k in 0..400u32 {
            for seq in (1..=u64::from(k % 7) + 1).rev() {
                input.push(Row::value(format!("key{k:05}").into_bytes(), vec![3u8; 30], seq));
            }
        }
        let outputs = write_all(&mut SplitWriter::new(SstOptions::compacted(), 2048, 1000), &input);
        assert!(outputs.len() > 5, "{} outputs", outputs.len());
        let per_sst: Vec<Vec<Row>> = outputs.into_iter().map(rows_of).collect();
        for pair in per_sst.windows(2) {
            let (last, first) = (&pair[0][pair[0].len() - 1].key, &pair[1][0].key);
            assert!(last < first, "a key's versions span two SSTs: {last:?}");
        }
        let got: Vec<Row> = per_sst.into_iter().flatten().collect();
        assert_eq!(got, input);
    }
}
