//! `SstIter`: an SST's rows in stored order, block by block.

use super::SstFile;
use crate::error::CoreResult;
use crate::format::block::BlockIter;
use crate::format::row::Row;
use crate::source::RowSource;

/// Rows of an SST in stored order, block by block.
pub struct SstIter {
    file: SstFile,
    next_block: usize,
    current: Option<BlockIter>,
}

impl SstIter {
    pub(super) fn new(file: SstFile) -> Self {
        SstIter { file, next_block: 0, current: None }
    }

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

impl RowSource for SstIter {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        SstIter::next_row(self)
    }
}
