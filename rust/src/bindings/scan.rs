//! `Scan`: a streaming scan of a `Tree`, a page of `(key, value)` pairs at a time.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::arrow::{columns_batch, PyRecordBatch};
use super::errors::{invalid, IntoPyResult};
use super::fetch::{finish, Cont};
use crate::error::CoreResult;
use crate::fetch::{Part, PartReply, Poll};
use crate::format::row::Row;
use crate::scan::Scan;

/// A streaming scan; pages of `(key, value)` cross into Python.
#[pyclass(frozen, module = "slatedb_py._native", name = "Scan")]
pub struct PyScan {
    pub(super) inner: Mutex<Scan>,
}

pub(super) fn page_to_py(py: Python<'_>, rows: &[Row]) -> PyResult<Py<PyAny>> {
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        items.push(PyTuple::new(py, [PyBytes::new(py, &r.key), PyBytes::new(py, &r.value)])?);
    }
    Ok(PyList::new(py, items)?.into_any().unbind())
}

impl PyScan {
    /// A page of up to `n` rows: a list of `(key, value)` pairs, or with `arrow` (its byte
    /// bound) a `RecordBatch`; or a Fetch that continues it.
    pub(super) fn page(
        &self,
        py: Python<'_>,
        me: &Py<PyScan>,
        n: usize,
        arrow: Option<usize>,
        replies: Option<(Vec<Part>, Vec<PartReply>)>,
    ) -> PyResult<Py<PyAny>> {
        // The lock is taken without the GIL: a thread holding it while it works without the
        // GIL must not wait on one holding the GIL while it waits for the lock.
        let polled = py.detach(|| -> CoreResult<Poll<Page>> {
            let mut scan = self.inner.lock().map_err(|_| crate::error::CoreError::poisoned("scan"))?;
            Ok(match arrow {
                Some(max_bytes) => match scan.next_columns(n, max_bytes, replies)? {
                    Poll::Need(parts) => Poll::Need(parts),
                    Poll::Ready(page) => Poll::Ready(Page::Arrow(columns_batch(page))),
                },
                None => match scan.next_page_sized(n, usize::MAX, replies)? {
                    Poll::Need(parts) => Poll::Need(parts),
                    Poll::Ready(rows) => Poll::Ready(Page::Rows(rows)),
                },
            })
        });
        match polled.py_err(None)? {
            Poll::Ready(Page::Rows(rows)) => page_to_py(py, &rows),
            Poll::Ready(Page::Arrow(batch)) => {
                let batch = batch.map_err(|e| invalid(e, false))?;
                Ok(Py::new(py, PyRecordBatch { batch })?.into_any())
            }
            Poll::Need(parts) => {
                let cont = Cont::Scan { scan: me.clone_ref(py), n, arrow, parts: parts.clone() };
                finish(py, Poll::Need(parts), cont)
            }
        }
    }
}

/// A page as the scan made it, before it becomes Python objects.
enum Page {
    Rows(Vec<Row>),
    Arrow(Result<arrow_array::RecordBatch, String>),
}

#[pymethods]
impl PyScan {
    /// Up to `n` `(key, value)` pairs (an empty list at the end), or a Fetch.
    fn next_page(slf: &Bound<'_, Self>, n: usize) -> PyResult<Py<PyAny>> {
        let me: Py<PyScan> = slf.clone().unbind();
        slf.get().page(slf.py(), &me, n.max(1), None, None)
    }

    /// Up to `n` rows of at most `max_bytes` of keys and values (one row at least) as a
    /// `RecordBatch` (empty at the end), or a Fetch.
    fn next_arrow(slf: &Bound<'_, Self>, n: usize, max_bytes: usize) -> PyResult<Py<PyAny>> {
        let me: Py<PyScan> = slf.clone().unbind();
        slf.get().page(slf.py(), &me, n.max(1), Some(max_bytes.max(1)), None)
    }

    fn seek(&self, py: Python<'_>, key: &Bound<'_, PyBytes>) -> PyResult<()> {
        let k = key.as_bytes();
        py.detach(|| -> CoreResult<()> {
            let mut scan = self.inner.lock().map_err(|_| crate::error::CoreError::poisoned("scan"))?;
            scan.seek(k)
        })
        .py_err(None)
    }
}
