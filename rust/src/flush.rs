//! An L0 flush in pieces: a frozen memtable's rows (`Memtable::flush_step`), or those rows
//! with their merge operands folded, written as one SST that leaves in pieces
//! (`SplitWriter`), so the encoded SST is never held whole beside the memtable it comes from.

use std::sync::{Arc, Mutex};

use crate::error::{CoreError, CoreResult};
use crate::format::row::Row;
use crate::memtable::{FlushCursor, Memtable};
use crate::merge::{MergeIterator, MergeMode};
use crate::operator::Operator;
use crate::source::{RowSource, VecSource};
use crate::sst::{Piece, SplitWriter, SstOptions};

/// Where an L0 flush's rows come from.
enum L0Rows {
    /// Walked in steps; the memtable's lock is held only while a step walks.
    Memtable { mem: Arc<Mutex<Memtable>>, cursor: FlushCursor, now: Option<i64>, retain_seq: Option<u64> },
    /// Copied out and folded: the operator may be Python code, which takes the GIL, so it
    /// never runs under the memtable's lock.
    Folded(Box<MergeIterator>),
}

/// One L0 SST, handed out in pieces by `next_piece`.
pub struct L0Pieces {
    rows: L0Rows,
    out: SplitWriter,
    ended: bool,
}

impl L0Pieces {
    /// The rows an L0 SST of `mem` needs (`Memtable::for_each_flush_row`).
    pub fn of_memtable(
        mem: Arc<Mutex<Memtable>>,
        opts: SstOptions,
        now: Option<i64>,
        retain_seq: Option<u64>,
        piece_size: usize,
    ) -> Self {
        let rows = L0Rows::Memtable { mem, cursor: FlushCursor::default(), now, retain_seq };
        L0Pieces { rows, out: SplitWriter::new(opts, usize::MAX, piece_size), ended: false }
    }

    /// `rows` (`Memtable::flush_rows`) with their merge operands folded by `op` as a
    /// compaction folds them (`MergeMode::Compaction`, keeping what a snapshot at or after
    /// `retain_seq` reads), as SlateDB folds at flush: a counter's thousands of operands
    /// reach L0 as one row.
    pub fn folded(
        rows: Vec<Row>,
        opts: SstOptions,
        now: Option<i64>,
        retain_seq: Option<u64>,
        op: Operator,
        piece_size: usize,
    ) -> Self {
        let src: Vec<Box<dyn RowSource>> = vec![Box::new(VecSource::new(rows, "memtable"))];
        let mode = MergeMode::Compaction { retain_seq: retain_seq.unwrap_or(u64::MAX), now, bottom: false };
        let merge = MergeIterator::new(src, mode).with_operator(Some(op));
        L0Pieces {
            rows: L0Rows::Folded(Box::new(merge)),
            out: SplitWriter::new(opts, usize::MAX, piece_size),
            ended: false,
        }
    }

    /// The SST's next piece; None after its last (at once when there is no row).
    pub fn next_piece(&mut self) -> CoreResult<Option<Piece>> {
        loop {
            if let Some(p) = self.out.next_piece() {
                return Ok(Some(p));
            }
            if self.ended {
                return Ok(None);
            }
            let ended = match &mut self.rows {
                L0Rows::Memtable { mem, cursor, now, retain_seq } => {
                    let m = mem.lock().map_err(|_| CoreError::poisoned("memtable"))?;
                    let out = &mut self.out;
                    // A step stops at the first row that makes a piece ready.
                    m.flush_step(cursor, *now, *retain_seq, |r| {
                        out.add(r)?;
                        Ok(!out.has_piece())
                    })?
                }
                L0Rows::Folded(merge) => match merge.next_row()? {
                    Some(row) => {
                        self.out.add(&row)?;
                        false
                    }
                    None => true,
                },
            };
            if ended {
                self.out.finish()?;
                self.ended = true;
            }
        }
    }

    /// The whole SST (its pieces joined), None when there is no row.
    pub fn whole(mut self) -> CoreResult<Option<Vec<u8>>> {
        let mut data = Vec::new();
        while let Some(p) = self.next_piece()? {
            match p {
                Piece::Data(d) => data.extend_from_slice(&d),
                Piece::Last(d, _) => {
                    data.extend_from_slice(&d);
                    return Ok(Some(data));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sst::SstFile;

    fn memtable(n: u32) -> Arc<Mutex<Memtable>> {
        let mut m = Memtable::new();
        for i in 0..n {
            // Two versions of each key: the flush keeps the newest.
            m.insert(&Row::value(format!("key{i:06}").into_bytes(), vec![1u8; 50], u64::from(i) + 1), false);
            m.insert(&Row::value(format!("key{i:06}").into_bytes(), vec![2u8; 50], u64::from(i) + 100_000), false);
        }
        Arc::new(Mutex::new(m))
    }

    #[test]
    fn an_l0_in_pieces_is_the_l0_built_whole() {
        let mem = memtable(5000);
        let whole = L0Pieces::of_memtable(mem.clone(), SstOptions::compacted(), None, None, usize::MAX)
            .whole()
            .unwrap()
            .unwrap();
        let f = SstFile::open(Bytes::from(whole.clone())).unwrap();
        assert_eq!(f.stats().unwrap().num_rows(), 5000);
        let mut pieces = L0Pieces::of_memtable(mem, SstOptions::compacted(), None, None, 8 * 1024);
        let (mut joined, mut n, mut meta) = (Vec::new(), 0, None);
        while let Some(p) = pieces.next_piece().unwrap() {
            n += 1;
            match p {
                Piece::Data(d) => joined.extend_from_slice(&d),
                Piece::Last(d, file) => {
                    joined.extend_from_slice(&d);
                    meta = Some(file);
                }
            }
        }
        assert!(n > 20, "{n} pieces");
        assert_eq!(joined, whole);
        assert_eq!(meta.unwrap().info(), f.info());
    }

    #[test]
    fn padded_blocks_cut_into_pieces_are_the_padded_sst_built_whole() {
        // Pieces end mid-block and mid-padding: each block's padding must land after its own
        // bytes, counted from the file's start, not from the piece's.
        let mem = memtable(3000);
        let opts = SstOptions { block_size: 1024, block_alignment: true, ..SstOptions::compacted() };
        let want = crate::sst::encode_sst(mem.lock().unwrap().flush_rows(None, None), opts.clone()).unwrap();
        let got = L0Pieces::of_memtable(mem, opts, None, None, 1000).whole().unwrap().unwrap();
        assert_eq!(got, want);
        let f = SstFile::open(Bytes::from(got)).unwrap();
        assert!((0..f.num_blocks()).any(|i| f.block_padding(i) > 0));
    }

    #[test]
    fn an_empty_memtable_has_no_piece() {
        let mem = Arc::new(Mutex::new(Memtable::new()));
        assert!(L0Pieces::of_memtable(mem, SstOptions::compacted(), None, None, 1).whole().unwrap().is_none());
    }
}
