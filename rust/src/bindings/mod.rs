//! The only PyO3 code of the crate: thin wrappers over the pure core.
//!
//! Rules (DESIGN.md): convert Python arguments first, then run O(n) native work with the GIL
//! released, then convert results; cross the boundary once per SST, block or batch of rows.

mod arrow;
mod batch;
mod bloom;
mod bulk;
mod columns;
mod compaction;
mod counters;
mod cursor;
mod durable;
mod errors;
mod fetch;
mod memtable;
mod merge;
mod operator;
mod pieces;
mod row;
mod scan;
mod seq_tracker;
mod sst;
mod tables;
mod tree;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Benchmarks must not run on a debug build by accident; Python warns on this flag.
    m.add("DEBUG_BUILD", cfg!(debug_assertions))?;
    m.add_class::<row::PyRow>()?;
    m.add_class::<sst::PySstFile>()?;
    m.add_class::<sst::PySstInfo>()?;
    m.add_class::<sst::PyRowIterator>()?;
    m.add_class::<merge::PyMergeIterator>()?;
    m.add_class::<bloom::PyBloomFilter>()?;
    m.add_function(wrap_pyfunction!(sst::encode_sst, m)?)?;
    m.add_function(wrap_pyfunction!(sst::decode_sst, m)?)?;
    m.add_class::<memtable::PyMemtable>()?;
    m.add_class::<memtable::PyWalRows>()?;
    m.add_class::<row::PyRowList>()?;
    m.add_class::<tables::PyTables>()?;
    m.add_class::<tree::PyTree>()?;
    m.add_class::<scan::PyScan>()?;
    m.add_class::<fetch::PyFetch>()?;
    m.add_class::<cursor::PyCursor>()?;
    m.add_class::<batch::PyWriteBatch>()?;
    m.add_class::<bulk::PyBulk>()?;
    m.add_class::<arrow::PyRecordBatch>()?;
    m.add_function(wrap_pyfunction!(arrow::record_batch, m)?)?;
    m.add_function(wrap_pyfunction!(arrow::arrow_stream, m)?)?;
    m.add_class::<durable::PyDurableWatermark>()?;
    m.add_class::<compaction::PyCompactionJob>()?;
    m.add_class::<pieces::PySstPieces>()?;
    m.add_class::<operator::PyBuiltin>()?;
    m.add_class::<operator::PyOperator>()?;
    m.add_function(wrap_pyfunction!(merge::merge_rows, m)?)?;
    m.add_class::<seq_tracker::PySequenceTracker>()?;
    m.add_class::<counters::PyCounters>()?;
    Ok(())
}
