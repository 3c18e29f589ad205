//! A scan's page as two binary columns, laid out as Arrow lays them out (offsets, then the
//! bytes), filled straight from the blocks by a columnar scan (`Scan::next_columns`): no `Row`
//! and no Python object per row. The bindings hand the vectors to Arrow without a copy.

use crate::error::{CoreError, CoreResult};
use crate::format::row::{show_key, Row, RowRef};
use crate::source::RowSink;

/// The most bytes one column may hold: Arrow's binary offsets are `i32`.
const COLUMN_LIMIT: usize = i32::MAX as usize;

pub struct ColumnPage {
    pub keys: Vec<u8>,
    pub key_offsets: Vec<i32>,
    pub values: Vec<u8>,
    pub value_offsets: Vec<i32>,
    max_rows: usize,
    max_bytes: usize,
    /// A row was refused for lack of room: the page is done.
    full: bool,
}

impl ColumnPage {
    /// A page of up to `max_rows` rows and `max_bytes` bytes of keys and values (one row at
    /// least, however large), with room for `expect` (bytes of keys, of values: the last
    /// page's) reserved up front: growing a column by doubling moves it several times.
    pub fn new(max_rows: usize, max_bytes: usize, expect: (usize, usize)) -> Self {
        let rows = max_rows.min(1 << 16);
        let room = |n: usize| Vec::with_capacity(n.min(max_bytes).min(COLUMN_LIMIT));
        let mut key_offsets = Vec::with_capacity(rows + 1);
        let mut value_offsets = Vec::with_capacity(rows + 1);
        key_offsets.push(0);
        value_offsets.push(0);
        ColumnPage {
            keys: room(expect.0),
            key_offsets,
            values: room(expect.1),
            value_offsets,
            max_rows,
            max_bytes,
            full: false,
        }
    }

    pub fn len(&self) -> usize {
        self.key_offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.full || self.len() >= self.max_rows
    }

    /// Bytes of keys and values.
    pub fn data_len(&self) -> usize {
        self.keys.len() + self.values.len()
    }

    pub fn last_key(&self) -> Option<&[u8]> {
        let n = self.key_offsets.len();
        (n > 1).then(|| &self.keys[self.key_offsets[n - 2] as usize..])
    }

    /// The rows, back as `Row`s (what a row page takes over from a columnar page a failed
    /// fetch interrupted). Only visible values ever enter a page, so kind and seq are moot.
    pub fn into_rows(self) -> Vec<Row> {
        let keys = bytes::Bytes::from(self.keys);
        let values = bytes::Bytes::from(self.values);
        (0..self.key_offsets.len() - 1)
            .map(|i| {
                let k = keys.slice(self.key_offsets[i] as usize..self.key_offsets[i + 1] as usize);
                let v = values.slice(self.value_offsets[i] as usize..self.value_offsets[i + 1] as usize);
                Row::value(k, v, 0)
            })
            .collect()
    }

    /// Appends a row if it fits (false, and the page is full, when not). A row alone on its
    /// page that no Arrow binary column can hold is an error.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> CoreResult<bool> {
        let n = self.len();
        let grown = self.data_len() + key.len() + value.len();
        if n >= self.max_rows || (n > 0 && grown > self.max_bytes) {
            self.full = true;
            return Ok(false);
        }
        if self.keys.len() + key.len() > COLUMN_LIMIT || self.values.len() + value.len() > COLUMN_LIMIT {
            if n == 0 {
                return Err(CoreError::invalid(format!(
                    "the row of key {} has {} bytes: more than an Arrow binary column holds (2 GiB)",
                    show_key(key),
                    key.len() + value.len()
                )));
            }
            self.full = true;
            return Ok(false);
        }
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(value);
        // In range: both lengths were checked against `COLUMN_LIMIT` above.
        self.key_offsets.push(self.keys.len() as i32);
        self.value_offsets.push(self.values.len() as i32);
        Ok(true)
    }
}

impl RowSink for ColumnPage {
    fn offer(&mut self, row: &RowRef<'_>) -> bool {
        // A row too large for a column is refused here; `Scan::next_columns` meets it again
        // through `push` and reports it.
        self.push(row.key, row.value).unwrap_or(false)
    }
}
