//! A streaming compaction: inputs are SSTs read ahead up to a MiB at a time through the fetch
//! contract (`scan::TableSource`, bypassing the block cache; `READAHEAD_BUDGET`), merged with
//! `MergeMode::Compaction`, and cut into output SSTs of about `max_sst_size`, each handed
//! out in pieces of `piece_size` bytes as it is written (`SplitWriter`). Memory holds a
//! window of blocks per input plus one piece and the index and filter of the output being
//! written, whatever the input and output sizes. A data error in an input names that
//! input's object.

use std::sync::Arc;

use crate::error::{CoreError, CoreResult};
use crate::fetch::{Part, PartReply, Tables, READAHEAD_BYTES};
use crate::merge::{MergeIterator, MergeMode};
use crate::operator::Operator;
use crate::read::TableRef;
use crate::scan::{Span, TableSource};
use crate::source::RowSource;
use crate::sst::{Piece, SplitWriter, SstOptions};

/// What a compaction's inputs read ahead, together: each input reads `READAHEAD_BYTES` at a
/// time (fewer requests) while that fits, less when many inputs share it. A merge holds about
/// two windows per input (the one read, and the one its current row still points into), so
/// a full compaction of many L0 SSTs stays bounded too; an input reads no less than
/// `MIN_READAHEAD` at a time.
const READAHEAD_BUDGET: u64 = 32 << 20;
const MIN_READAHEAD: u64 = 128 << 10;

/// Each input's read-ahead when `inputs` share `READAHEAD_BUDGET`.
fn input_readahead(inputs: usize) -> u64 {
    (READAHEAD_BUDGET / inputs.max(1) as u64).clamp(MIN_READAHEAD, READAHEAD_BYTES)
}

pub struct CompactionJob {
    merge: MergeIterator,
    out: SplitWriter,
    done: bool,
}

pub enum JobStep {
    Done,
    /// The next piece of the output being written: upload it, then step again.
    Piece(Piece),
    Need(Vec<Part>),
}

impl CompactionJob {
    /// `inputs` newest first; see `MergeMode::Compaction` for `retain_seq`, `now`, `bottom`,
    /// and `op`, the merge operator operands fold with; `SplitWriter` for the sizes.
    #[allow(clippy::too_many_arguments, reason = "a job's settings, each used once")]
    pub fn new(
        tables: &Arc<Tables>,
        inputs: &[TableRef],
        retain_seq: u64,
        now: Option<i64>,
        bottom: bool,
        max_sst_size: usize,
        piece_size: usize,
        opts: SstOptions,
        op: Option<Operator>,
    ) -> Self {
        let readahead = input_readahead(inputs.len());
        let sources: Vec<Box<dyn RowSource>> = inputs
            .iter()
            .map(|t| {
                let source = TableSource::new(tables.clone(), t, Span::default(), false).with_readahead(readahead);
                Box::new(source) as Box<dyn RowSource>
            })
            .collect();
        CompactionJob {
            merge: MergeIterator::new(sources, MergeMode::Compaction { retain_seq, now, bottom }).with_operator(op),
            out: SplitWriter::new(opts, max_sst_size, piece_size),
            done: false,
        }
    }

    /// Runs until a piece of output is ready, input is needed, or the merge ends; `replies`
    /// answers the previous `Need`.
    pub fn step(&mut self, replies: Option<Vec<PartReply>>) -> CoreResult<JobStep> {
        if let Some(r) = replies {
            self.merge.feed(r)?;
        }
        loop {
            if let Some(p) = self.out.next_piece() {
                return Ok(JobStep::Piece(p));
            }
            if self.done {
                return Ok(JobStep::Done);
            }
            match self.merge.next_row() {
                Ok(Some(row)) => self.out.add(&row)?,
                Ok(None) => {
                    self.done = true;
                    self.out.finish()?;
                }
                Err(CoreError::Pending) => return Ok(JobStep::Need(self.merge.request()?)),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::row::Row;
    use crate::read::tests::{rows, World};
    use crate::sst::SstFile;
    use bytes::Bytes;

    #[test]
    fn many_inputs_share_one_read_ahead_budget() {
        // Up to 32 inputs read a MiB ahead each (as scans do); more share 32 MiB.
        assert_eq!(input_readahead(1), READAHEAD_BYTES);
        assert_eq!(input_readahead(32), READAHEAD_BYTES);
        assert_eq!(input_readahead(64), 512 << 10);
        assert_eq!(input_readahead(10_000), MIN_READAHEAD);
    }

    #[test]
    fn merges_inputs_into_bounded_outputs_and_names_a_corrupt_input() {
        let mut w = World::new(0);
        let newer = w.sst("new.sst", &rows(0..3000, 2), 512);
        let older = w.sst("old.sst", &rows(1000..5000, 1), 512);
        let mut job = CompactionJob::new(
            &w.tables,
            &[newer.clone(), older.clone()],
            10,
            None,
            true,
            64 * 1024,
            16 * 1024,
            SstOptions::compacted(),
            None,
        );
        let mut out: Vec<Row> = Vec::new();
        let mut replies = None;
        let mut data = Vec::new();
        let mut pieces = 0;
        loop {
            match job.step(replies.take()).unwrap() {
                JobStep::Done => break,
                JobStep::Piece(Piece::Data(d)) => {
                    pieces += 1;
                    data.extend_from_slice(&d);
                }
                JobStep::Piece(Piece::Last(d, file)) => {
                    data.extend_from_slice(&d);
                    assert!(data.len() < 80 * 1024);
                    assert_eq!(file.file_len(), data.len() as u64);
                    let f = SstFile::open(Bytes::from(std::mem::take(&mut data))).unwrap();
                    let mut it = f.iter();
                    while let Some(r) = it.next_row().unwrap() {
                        out.push(r);
                    }
                }
                JobStep::Need(parts) => replies = Some(w.serve(&parts)),
            }
        }
        assert!(pieces >= 3, "outputs leave in pieces: {pieces}");
        assert_eq!(out.len(), 5000, "the newest version of each key");
        assert!(out.iter().all(|r| (r.seq == 2) == (r.key.as_ref() < &b"k003000"[..])));

        // A flipped byte in a data block of the older input.
        let mut bad = w.objects["old.sst"].to_vec();
        bad[300] ^= 0xFF;
        w.objects.insert("old.sst".into(), Bytes::from(bad));
        let mut w2 = World::new(0);
        w2.objects = w.objects.clone();
        let (n, o) = (w2.tables.slot("new.sst").unwrap(), w2.tables.slot("old.sst").unwrap());
        let refs = [TableRef { slot: n, ..newer }, TableRef { slot: o, ..older }];
        let mut job =
            CompactionJob::new(&w2.tables, &refs, 0, None, true, 1 << 20, 1 << 20, SstOptions::compacted(), None);
        let mut replies = None;
        let err = loop {
            match job.step(replies.take()) {
                Ok(JobStep::Need(parts)) => replies = Some(w2.serve(&parts)),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        let (object, _) = err.split_object();
        assert_eq!(object.as_deref(), Some("old.sst"));
    }
}
