//! The native core of slatedb_py: SlateDB 0.17's SST format (rows, blocks, compression,
//! checksums, FlatBuffer tables), bloom filters, the merge iterator, and the engine's read
//! logic (point reads across the tree, streaming scans) behind one fetch contract
//! (`fetch`). Byte work: no clock, no threads, and no I/O except `pread` of SSTs in a local
//! folder. The PyO3 bindings live in `bindings/` behind the `python`
//! feature, so `cargo test` builds and tests the core without Python.

pub mod batch;
pub mod bloom;
pub mod bulk;
pub mod cache;
pub mod compaction;
pub mod error;
pub mod fetch;
pub mod flush;
pub mod format;
pub mod memtable;
pub mod merge;
pub mod operator;
pub mod read;
pub mod scan;
pub mod seq_tracker;
pub mod source;
pub mod sst;

#[cfg(feature = "python")]
mod bindings;
