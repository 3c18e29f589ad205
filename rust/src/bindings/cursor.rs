//! `Cursor`: the rows of a Python iterator's pages, handed out one at a time natively.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::errors::{invalid, poisoned};

/// Hands out the rows of pages one at a time at C speed: `for k, v in db.scan()` costs no
/// Python frame per row. `refill()` (the Python iterator's page loader, which drives the
/// fetch contract and moves to a newer tree if needed) is called with the last key handed
/// out (or None) when a page runs out, and returns the next page, empty at the end.
///
/// Several threads may share one iterator: its state sits behind a mutex taken without the
/// GIL, so a thread waiting for a page another thread is loading just waits.
#[pyclass(frozen, module = "slatedb_py._native", name = "Cursor")]
pub struct PyCursor {
    state: Mutex<CursorState>,
    /// Set by `invalidate`: the buffered rows go at the next use. A flag, not the lock, so a
    /// `close()` never waits for a page load another thread has under way.
    stale: std::sync::atomic::AtomicBool,
}

pub(super) struct CursorState {
    page: Option<Py<PyList>>,
    at: usize,
    done: bool,
    /// The key of the last row handed out from an earlier page.
    prev_last: Option<Py<PyAny>>,
    /// None only after the garbage collector cleared a cycle through it.
    refill: Option<Py<PyAny>>,
}

impl PyCursor {
    /// The state, waiting for another thread's page load without holding the GIL (that
    /// thread needs the GIL to finish).
    fn locked<'a>(&'a self, py: Python<'_>) -> PyResult<std::sync::MutexGuard<'a, CursorState>> {
        loop {
            match self.state.try_lock() {
                Ok(mut g) => {
                    if self.stale.swap(false, std::sync::atomic::Ordering::AcqRel) {
                        g.drop_buffered(py)?;
                    }
                    return Ok(g);
                }
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned("iterator state")),
                Err(std::sync::TryLockError::WouldBlock) => {
                    py.detach(|| std::thread::sleep(std::time::Duration::from_micros(50)));
                }
            }
        }
    }
}

impl CursorState {
    fn drop_buffered(&mut self, py: Python<'_>) -> PyResult<()> {
        let last = self.last(py)?;
        self.page = None;
        self.at = 0;
        self.done = false;
        self.prev_last = last;
        Ok(())
    }

    fn last(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(p) = &self.page {
            if self.at > 0 {
                return Ok(Some(p.bind(py).get_item(self.at - 1)?.get_item(0)?.unbind()));
            }
        }
        Ok(self.prev_last.as_ref().map(|k| k.clone_ref(py)))
    }

    /// The current page with rows left, refilling as needed; None at the end.
    fn current<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        loop {
            if let Some(p) = &self.page {
                let p = p.bind(py);
                if self.at < p.len() {
                    return Ok(Some(p.clone()));
                }
            }
            if self.done {
                return Ok(None);
            }
            // The refill may move to a newer tree: it resumes after the last key handed out.
            let last = self.last(py)?;
            let refill = self.refill.as_ref().ok_or_else(|| invalid("this iterator was collected".into(), false))?;
            let next = refill.bind(py).call1((last,))?;
            let next = next.cast_into::<PyList>().map_err(|_| invalid("a page must be a list".into(), true))?;
            if let Some(old) = self.page.take() {
                if self.at > 0 {
                    self.prev_last = Some(old.bind(py).get_item(self.at - 1)?.get_item(0)?.unbind());
                }
            }
            self.at = 0;
            if next.is_empty() {
                self.done = true;
            }
            self.page = Some(next.unbind());
        }
    }
}

#[pymethods]
impl PyCursor {
    #[new]
    fn new(refill: Py<PyAny>) -> Self {
        PyCursor {
            state: Mutex::new(CursorState { page: None, at: 0, done: false, prev_last: None, refill: Some(refill) }),
            stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    // The refill is a bound method of the iterator that owns this cursor: a reference cycle
    // the garbage collector must see through, or every iterator (and the tree it reads)
    // would live forever.
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // A cursor in use is reachable from a running frame: nothing to collect this round.
        let Ok(st) = self.state.try_lock() else { return Ok(()) };
        if let Some(r) = &st.refill {
            visit.call(r)?;
        }
        if let Some(p) = &st.page {
            visit.call(p)?;
        }
        if let Some(k) = &st.prev_last {
            visit.call(k)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut st) = self.state.try_lock() {
            st.refill = None;
            st.page = None;
            st.prev_last = None;
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut st = self.locked(py)?;
        match st.current(py)? {
            Some(p) => {
                let item = p.get_item(st.at)?;
                st.at += 1;
                Ok(Some(item.unbind()))
            }
            None => Ok(None),
        }
    }

    /// Up to `n` rows (fewer only at the end). When loading a page fails after some rows
    /// were taken, those rows are returned and the failure comes with the next call: rows
    /// handed out are never dropped.
    fn take(&self, py: Python<'_>, n: usize) -> PyResult<Py<PyList>> {
        let mut st = self.locked(py)?;
        let out = PyList::empty(py);
        while out.len() < n {
            let p = match st.current(py) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(e),
            };
            let end = (st.at + n - out.len()).min(p.len());
            for i in st.at..end {
                out.append(p.get_item(i)?)?;
            }
            st.at = end;
        }
        Ok(out.unbind())
    }

    /// The rows of the current page not handed out yet, handed out now (no page is
    /// loaded): what a consumer taking over the scan (`to_arrow`) gets first.
    fn buffered(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let mut st = self.locked(py)?;
        let out = PyList::empty(py);
        if let Some(p) = &st.page {
            let p = p.bind(py).clone();
            for i in st.at..p.len() {
                out.append(p.get_item(i)?)?;
            }
            st.at = p.len();
        }
        Ok(out.unbind())
    }

    /// Skips buffered rows whose key is < `key`; True when a buffered row remains (the
    /// seek is then done without touching the native scan).
    fn skip_below(&self, py: Python<'_>, key: &Bound<'_, PyBytes>) -> PyResult<bool> {
        let mut st = self.locked(py)?;
        let Some(p) = &st.page else { return Ok(false) };
        let p = p.bind(py).clone();
        while st.at < p.len() {
            let k = p.get_item(st.at)?.get_item(0)?;
            if k.cast::<PyBytes>().is_ok_and(|b| b.as_bytes() >= key.as_bytes()) {
                return Ok(true);
            }
            st.at += 1;
        }
        Ok(false)
    }

    /// The key of the last row handed out, or None.
    #[getter]
    fn last(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.locked(py)?.last(py)
    }

    /// Drops the buffered rows at the next use: the next row then comes from `refill` (which
    /// raises once the database is closed). Never waits for a page load under way.
    fn invalidate(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::Release);
    }
}
