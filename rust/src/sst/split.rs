//! `SplitWriter`: a sorted row stream written as consecutive SSTs, an output cut once its
//! data reaches `max_sst_size` (a compaction's outputs), and only between two keys: the
//! versions of one key stay in one SST, since a read of a sorted run bisects on the SSTs' key
//! ranges and looks in one SST only.

use bytes::Bytes;

use crate::error::CoreResult;
use crate::format::row::Row;

use super::{SstBuilder, SstOptions};

pub struct SplitWriter {
    opts: SstOptions,
    max_sst_size: usize,
    builder: Option<SstBuilder>,
    /// The key whose row filled the current SST: it takes that key's older versions too.
    full_at: Option<Bytes>,
}

impl SplitWriter {
    pub fn new(opts: SstOptions, max_sst_size: usize) -> Self {
        SplitWriter { opts, max_sst_size, builder: None, full_at: None }
    }

    /// Adds a row; returns the previous SST when it was full and this row starts a new key
    /// (this row then starts the next SST).
    pub fn add(&mut self, row: &Row) -> CoreResult<Option<Vec<u8>>> {
        let done = match &self.full_at {
            Some(last) if *last != row.key => self.finish()?,
            _ => None,
        };
        if self.builder.is_none() {
            let mut b = SstBuilder::new(self.opts.clone())?;
            // Data up to max_sst_size, then filter, index and stats: ~5% more.
            b.reserve(self.max_sst_size.saturating_add(self.max_sst_size / 16).saturating_add(64 * 1024));
            self.builder = Some(b);
        }
        let Some(b) = &mut self.builder else { return Ok(done) };
        b.add(row)?;
        if self.full_at.is_none() && b.estimated_size() >= self.max_sst_size {
            self.full_at = Some(row.key.clone());
        }
        Ok(done)
    }

    /// The SST being written, finished; None when it holds no row.
    pub fn finish(&mut self) -> CoreResult<Option<Vec<u8>>> {
        self.full_at = None;
        self.builder.take().map(SstBuilder::finish).transpose()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sst::SstFile;

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
        let mut w = SplitWriter::new(SstOptions::compacted(), 32 * 1024);
        let mut outputs = Vec::new();
        for r in &input {
            if let Some(data) = w.add(r).unwrap() {
                outputs.push(data);
            }
        }
        outputs.extend(w.finish().unwrap());
        assert!(outputs.len() > 3, "{} outputs", outputs.len());
        for data in &outputs[..outputs.len() - 1] {
            assert!(data.len() >= 32 * 1024 && data.len() < 40 * 1024, "{} bytes", data.len());
        }
        let got: Vec<Row> = outputs.into_iter().flat_map(rows_of).collect();
        assert_eq!(got, input);
        assert_eq!(w.finish().unwrap(), None, "nothing pending after finish");
    }

    #[test]
    fn outputs_are_cut_when_a_finished_block_reaches_the_size() {
        // Blocks of one row: adding b finishes a's block, which reaches the size; the SST is
        // handed out when the next key (c) arrives, and c starts the next one.
        let mut w = SplitWriter::new(SstOptions { block_size: 1, ..SstOptions::compacted() }, 1);
        assert_eq!(w.add(&Row::value(&b"a"[..], &b"1"[..], 1)).unwrap(), None);
        assert_eq!(w.add(&Row::value(&b"b"[..], &b"2"[..], 1)).unwrap(), None);
        let first = w.add(&Row::value(&b"c"[..], &b"3"[..], 1)).unwrap().unwrap();
        assert_eq!(rows_of(first).len(), 2);
        assert_eq!(rows_of(w.finish().unwrap().unwrap())[0].key.as_ref(), b"c");
        assert_eq!(w.finish().unwrap(), None);
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
        let mut w = SplitWriter::new(SstOptions::compacted(), 2048);
        let mut outputs = Vec::new();
        for r in &input {
            outputs.extend(w.add(r).unwrap());
        }
        outputs.extend(w.finish().unwrap());
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
