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
//! `filter_offset`, which is the end of the data even when there is no filter. SlateDB 0.18
//! can pad blocks with zeros to a multiple of the block size: a padded block then records its
//! own length (`BlockMeta.encoded_len`, CRC included) and the rest of its span is padding. Index keys of a
//! compacted SST are shortest separators (block 0: the empty key); a WAL SST's index keys and
//! `first_entry` are the 8-byte BE sequence number of the block's first row.

mod builder;
mod iter;
mod reader;
mod split;
#[cfg(test)]
mod tests;

pub use builder::{encode_sst, FinishedSst, SstBuilder, SstOptions};
pub use iter::SstIter;
pub use reader::{SstFile, TailOpen};
pub use split::{Piece, SplitWriter};

pub const SST_FORMAT_VERSION: u16 = 2;
const FOOTER_LEN: usize = 10;
