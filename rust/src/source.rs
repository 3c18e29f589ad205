//! What the merge iterator reads from, and what streaming readers ask for.
//!
//! `RowSource` is the interface of one sorted input of `merge::MergeIterator` (an SST
//! iterator, a memtable range, a streaming table source); `Part` and `PartReply` are the
//! byte requests of the fetch contract (`fetch`) a streaming source stops on. This module
//! depends on rows and errors only, so `sst` (which implements `RowSource`), `merge` and
//! `fetch` all depend on it and not on each other's internals.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{CoreError, CoreResult};
use crate::format::row::{show_key, Row, RowRef};

/// Bytes one object needs: `ranges` (`[start, end)`), or, when `tail` > 0, its last `tail`
/// bytes and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub path: Arc<str>,
    pub tail: u64,
    pub ranges: Vec<(u64, u64)>,
}

/// What the caller fetched for one `Part`: one buffer per range (or the tail), and the
/// object's size (known for a tail).
#[derive(Clone, Debug, Default)]
pub struct PartReply {
    pub buffers: Vec<Bytes>,
    pub size: u64,
}

pub trait RowSource: Send {
    /// The next row, `None` at the end, or `Err(CoreError::Pending)` when a streaming source
    /// needs more input first (the merge then stops and can be resumed).
    fn next_row(&mut self) -> CoreResult<Option<Row>>;

    /// Streaming sources, after `Pending`: the bytes to fetch (`fetch::Part`s).
    fn request(&mut self) -> Vec<Part> {
        Vec::new()
    }

    /// Streaming sources: the replies to `request`, in its order.
    fn feed(&mut self, _replies: Vec<PartReply>) -> CoreResult<()> {
        Err(CoreError::invalid("this merge source takes no input"))
    }

    /// Forward walks: continue from the first row whose key is >= `key`.
    fn seek(&mut self, _key: &[u8]) -> CoreResult<()> {
        Err(CoreError::invalid("this merge source cannot seek"))
    }

    /// Forward walks: offers `sink` the next rows whose keys are below `bound` (any key when
    /// None), in order, for as long as the sink takes them and this source has them without
    /// new input (decoded already, cached, or in a local file), without making a `Row` each.
    /// A row the sink refuses stays next. The default offers none: the merge then takes rows
    /// one by one with `next_row`, which is always correct, only slower.
    fn drain(&mut self, _bound: Option<&[u8]>, _sink: &mut dyn RowSink) -> CoreResult<()> {
        Ok(())
    }
}

/// Where a columnar scan's rows go straight from the blocks (`RowSource::drain`).
pub trait RowSink {
    /// Offers the next version in merge order: true when taken (handed out, or skipped as not
    /// visible), false when the sink takes no more, and the row stays where it was.
    fn offer(&mut self, row: &RowRef<'_>) -> bool;
}

/// Rows held in memory; their order is checked as they are read.
pub struct VecSource {
    rows: std::vec::IntoIter<Row>,
    prev: Option<(Bytes, u64)>,
    name: String,
}

impl VecSource {
    pub fn new(rows: Vec<Row>, name: impl Into<String>) -> Self {
        VecSource { rows: rows.into_iter(), prev: None, name: name.into() }
    }
}

impl RowSource for VecSource {
    fn next_row(&mut self) -> CoreResult<Option<Row>> {
        let Some(row) = self.rows.next() else {
            return Ok(None);
        };
        if let Some((pk, ps)) = &self.prev {
            if !(pk < &row.key || (pk == &row.key && *ps > row.seq)) {
                return Err(CoreError::invalid(format!(
                    "{}: rows must be sorted by key, then seq descending: key {} seq {} follows key {} seq {}",
                    self.name,
                    show_key(&row.key),
                    row.seq,
                    show_key(pk),
                    ps
                )));
            }
        }
        self.prev = Some((row.key.clone(), row.seq));
        Ok(Some(row))
    }
}
