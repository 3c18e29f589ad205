//! The sequence tracker (`crate::seq_tracker`) as a Python class.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::IntoPyResult;
use crate::seq_tracker::{SequenceTracker, CAPACITY, INTERVAL_SECS};

#[pyclass(module = "slatedb_py.seq_tracker", name = "SequenceTracker")]
#[derive(Clone)]
pub struct PySequenceTracker {
    inner: SequenceTracker,
}

#[pymethods]
impl PySequenceTracker {
    #[new]
    #[pyo3(signature = (capacity = CAPACITY, interval_secs = INTERVAL_SECS))]
    fn new(capacity: usize, interval_secs: i64) -> Self {
        PySequenceTracker { inner: SequenceTracker::with_config(capacity, interval_secs) }
    }

    /// Reads a manifest's tracker blob (SlateDB 0.17.0's format, version 1).
    #[staticmethod]
    fn decode(data: &[u8]) -> PyResult<Self> {
        Ok(PySequenceTracker { inner: SequenceTracker::decode(data).py_err(None)? })
    }

    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode())
    }

    /// Records (`seq`, `ts_secs`) under 0.17.0's rules; False when the point was dropped.
    fn insert(&mut self, seq: u64, ts_secs: i64) -> bool {
        self.inner.insert(seq, ts_secs)
    }

    /// Each point through `insert`, in order.
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 extracts Python arguments into owned values")]
    fn extend(&mut self, points: Vec<(u64, i64)>) {
        self.inner.extend_from(&points);
    }

    #[pyo3(signature = (ts_secs, round_up = false))]
    fn find_seq(&self, ts_secs: i64, round_up: bool) -> Option<u64> {
        self.inner.find_seq(ts_secs, round_up)
    }

    #[pyo3(signature = (seq, round_up = false))]
    fn find_ts(&self, seq: u64, round_up: bool) -> Option<i64> {
        self.inner.find_ts(seq, round_up)
    }

    #[getter]
    fn points(&self) -> Vec<(u64, i64)> {
        self.inner.seqs().iter().copied().zip(self.inner.times().iter().copied()).collect()
    }

    #[getter]
    fn last_recorded(&self) -> Option<i64> {
        self.inner.last_recorded()
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("SequenceTracker({} points, last_recorded={:?})", self.inner.len(), self.inner.last_recorded())
    }
}
