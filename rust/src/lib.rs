//! The native core of slatedb_py: SlateDB 0.17's SST format (rows, blocks, compression,
//! checksums, FlatBuffer tables), bloom filters, and the merge iterator. Pure byte work: no
//! I/O, no clock, no threads. The PyO3 bindings live in `bindings/` behind the `python`
//! feature, so `cargo test` builds and tests the core without Python.

pub mod bloom;
pub mod cache;
pub mod error;
pub mod format;
pub mod memtable;
pub mod merge;
pub mod sst;

#[cfg(feature = "python")]
mod bindings;
