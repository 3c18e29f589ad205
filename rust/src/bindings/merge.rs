//! `merge_rows`: the native k-way merge over SSTs and in-memory row lists.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::errors::{invalid, poisoned, IntoPyResult};
use super::row::{extract_row, PyRow, PyRowList};
use super::sst::PySstFile;
use crate::merge::{MergeIterator, MergeMode};
use crate::source::{RowSource, VecSource};

/// `sources`, newest first: each a native `SstFile`, a `RowList`, or an iterable of rows
/// (`Row` or tuples) sorted by key, then seq descending.
#[pyfunction]
#[pyo3(signature = (sources, *, snapshot_seq = None, now = None, all_versions = false))]
pub fn merge_rows(
    py: Python<'_>,
    sources: &Bound<'_, PyAny>,
    snapshot_seq: Option<u64>,
    now: Option<i64>,
    all_versions: bool,
) -> PyResult<PyMergeIterator> {
    let mut boxed: Vec<Box<dyn RowSource>> = Vec::new();
    for (i, src) in sources.try_iter()?.enumerate() {
        let src = src?;
        if let Ok(f) = src.cast::<PySstFile>() {
            boxed.push(Box::new(f.get().file.iter()));
        } else if let Ok(list) = src.cast::<PyRowList>() {
            // Already in merge order (a memtable or SST range).
            boxed.push(Box::new(VecSource::new(list.get().rows.clone(), format!("source {i}"))));
        } else {
            let mut rows = Vec::new();
            for item in src
                .try_iter()
                .map_err(|_| invalid(format!("source {i} must be an SstFile or an iterable of rows"), true))?
            {
                rows.push(extract_row(py, &item?)?);
            }
            boxed.push(Box::new(VecSource::new(rows, format!("source {i}"))));
        }
    }
    let mode = if all_versions {
        if snapshot_seq.is_some() || now.is_some() {
            return Err(invalid(
                "all_versions=True returns every version; snapshot_seq and now do not apply".into(),
                false,
            ));
        }
        MergeMode::AllVersions
    } else {
        MergeMode::Visible { snapshot_seq: snapshot_seq.unwrap_or(u64::MAX), now }
    };
    Ok(PyMergeIterator { inner: Mutex::new(MergeIterator::new(boxed, mode)) })
}

#[pyclass(frozen, module = "slatedb_py._native", name = "MergeIterator")]
pub struct PyMergeIterator {
    inner: Mutex<MergeIterator>,
}

impl PyMergeIterator {
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut MergeIterator) -> crate::error::CoreResult<T> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        let mut guard = self.inner.lock().map_err(|_| poisoned("merge iterator"))?;
        let it: &mut MergeIterator = &mut guard;
        py.detach(|| f(it)).py_err(None)
    }
}

#[pymethods]
impl PyMergeIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRow>> {
        let row = self.with(py, MergeIterator::next_row)?;
        Ok(row.map(|r| PyRow::from_row(py, &r)))
    }

    /// Up to `n` rows (fewer only at the end) in one crossing.
    fn next_batch<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |m| m.next_batch(n))?;
        let items: PyResult<Vec<Py<PyRow>>> = rows.iter().map(|r| Py::new(py, PyRow::from_row(py, r))).collect();
        PyList::new(py, items?)
    }

    /// Up to `n` `(key, value)` pairs: what a scan yields. A merge operand among them is an
    /// error naming its key (folding needs a merge operator).
    fn next_kv_batch<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let rows = self.with(py, |m| m.next_batch(n))?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.kind == crate::format::row::RowKind::Merge {
                return Err(invalid(
                    format!(
                        "key {} holds merge operands; reading them needs a merge operator, which slatedb_py does not support yet",
                        crate::format::row::show_key(&r.key)
                    ),
                    false,
                ));
            }
            items.push(PyTuple::new(py, [PyBytes::new(py, &r.key), PyBytes::new(py, &r.value)])?);
        }
        PyList::new(py, items)
    }

    /// Consumes the rest natively and returns (rows, key bytes, value bytes): measures the
    /// merge itself without building Python objects.
    fn drain_count(&self, py: Python<'_>) -> PyResult<(u64, u64, u64)> {
        self.with(py, |m| {
            let (mut n, mut kb, mut vb) = (0u64, 0u64, 0u64);
            while let Some(r) = m.next_row()? {
                n += 1;
                kb += r.key.len() as u64;
                vb += r.value.len() as u64;
            }
            Ok((n, kb, vb))
        })
    }
}
