//! `Counters`: a fixed set of u64 counters that any thread adds to without a lock, for the
//! metrics of a database handle (`slatedb_py.metrics`). A Python int under a lock would cost
//! more on the read hot path, and a bare `+=` loses updates between threads.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

#[pyclass(frozen, module = "slatedb_py._native", name = "Counters")]
pub struct PyCounters {
    values: Box<[AtomicU64]>,
}

#[pymethods]
impl PyCounters {
    #[new]
    fn new(n: usize) -> Self {
        PyCounters { values: (0..n).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Adds `n` to counter `i`.
    fn add(&self, i: usize, n: u64) -> PyResult<()> {
        let c = self.values.get(i).ok_or_else(|| PyIndexError::new_err(format!("no counter {i}")))?;
        // Relaxed: each counter is independent; a snapshot need not be one instant.
        c.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Adds `a` to counter `i` and `b` to counter `j`: the count and the bytes of one
    /// operation, in one call from a hot path.
    fn add2(&self, i: usize, a: u64, j: usize, b: u64) -> PyResult<()> {
        self.add(i, a)?;
        self.add(j, b)
    }

    /// Every counter's value, in order.
    fn values(&self) -> Vec<u64> {
        self.values.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}
