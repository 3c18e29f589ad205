//! The read path's handles: `Tables` (opened SSTs and the block cache), `Tree` (what a read
//! searches), `Scan` (a streaming iterator) and `Fetch`, the one request for bytes every
//! native read returns when it cannot answer yet (`crate::fetch`).
//!
//! A call answers, or returns a `Fetch`: its `parts` name the bytes, and `resume(replies)`
//! continues the call where it stopped, returning what the call returns (or another Fetch).
//! `slatedb_py.fetch.drive` is the one loop that serves them.

use std::ops::Bound as KeyBound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::compaction::PyCompactionJob;
use super::errors::{invalid, lock, poisoned, IntoPyResult};
use super::memtable::PyMemtable;
use super::sst::PySstFile;
use crate::error::CoreResult;
use crate::fetch::Fetcher;
use crate::fetch::{Part, PartReply, Poll, Tables};
use crate::format::row::Row;
use crate::read::{Found, GetMany, GetState, KeyRange, Level, TableRef, Tree};
use crate::scan::{Scan, Span};

#[pyclass(frozen, module = "slatedb_py._native", name = "Tables")]
pub struct PyTables {
    pub inner: Arc<Tables>,
}

#[pymethods]
impl PyTables {
    /// `local_root`: the folder of a LocalStore (its SSTs are then read natively).
    #[new]
    #[pyo3(signature = (cache_bytes, local_root = None))]
    fn new(cache_bytes: usize, local_root: Option<PathBuf>) -> Self {
        PyTables { inner: Arc::new(Tables::new(cache_bytes, local_root)) }
    }

    /// Registers an SST this process just wrote from its bytes: its metadata is parsed from
    /// memory (no read back). Its blocks are not cached: a bulk load would only push them
    /// through the cache, and a later read finds them in the store (or the local file).
    fn add_written(&self, py: Python<'_>, path: &str, data: pyo3_bytes::PyBytes) -> PyResult<PySstFile> {
        let data = data.into_inner();
        let tables = self.inner.clone();
        let file = py
            .detach(|| -> CoreResult<crate::sst::SstFile> {
                let whole = crate::sst::SstFile::open(data.clone())?;
                // The metadata only, copied: the handle must not keep the data buffer alive.
                let from = whole.info().filter_offset as usize;
                let tail = Bytes::copy_from_slice(&data[from..]);
                let crate::sst::TailOpen::Opened(tail) = crate::sst::SstFile::open_tail(tail, data.len() as u64)?
                else {
                    return Err(crate::error::CoreError::invalid("metadata outside the SST"));
                };
                Ok(tables.slot(path)?.set(tail).clone())
            })
            .py_err(Some(path))?;
        Ok(PySstFile { file, name: Some(path.to_string()) })
    }

    /// Keeps only the SSTs at `paths` (the tree now read); returns how many were dropped.
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 extracts Python arguments into owned values")]
    fn retain(&self, paths: std::collections::HashSet<String>) -> PyResult<usize> {
        self.inner.retain(&paths).py_err(None)
    }

    fn forget(&self, path: &str) -> PyResult<()> {
        self.inner.forget(path).py_err(Some(path))
    }

    /// (hits, misses, blocks held, bytes held) of the block cache.
    fn cache_stats(&self) -> PyResult<(u64, u64, usize, usize)> {
        let c = self.inner.cache().py_err(None)?;
        let (h, m, n) = c.stats();
        Ok((h, m, n, c.used()))
    }

    #[getter]
    fn is_local(&self) -> bool {
        self.inner.is_local()
    }

    /// SSTs opened so far.
    fn open_count(&self) -> PyResult<usize> {
        self.inner.open_count().py_err(None)
    }
}

/// What a `Fetch` continues when resumed.
enum Cont {
    Get { tree: Arc<Tree>, call: GetMany, single: bool },
    Scan { scan: Py<PyScan>, n: usize, parts: Vec<Part> },
    Job { job: Py<PyCompactionJob> },
}

/// The answer of a call, or a Fetch holding its continuation.
fn finish(py: Python<'_>, poll: Poll<Py<PyAny>>, cont: Cont) -> PyResult<Py<PyAny>> {
    match poll {
        Poll::Ready(v) => Ok(v),
        Poll::Need(parts) => Ok(Py::new(py, PyFetch { parts, cont: Mutex::new(Some(cont)) })?.into_any()),
    }
}

/// How other bindings hand out a Fetch that continues them.
pub struct PyFetchCont;

impl PyFetchCont {
    pub fn job(py: Python<'_>, parts: Vec<Part>, job: Py<PyCompactionJob>) -> PyResult<Py<PyAny>> {
        finish(py, Poll::Need(parts), Cont::Job { job })
    }
}

/// A request for bytes: `parts` is `[(path, tail, [(start, end), ...])]`; for a part with
/// `tail` > 0 fetch the object's last `tail` bytes instead of ranges. `resume` takes one
/// `(buffers, object_size)` per part, in order, and continues the call that asked.
/// One part of a `Fetch` as Python sees it: `(path, tail, [(start, end), ...])`.
type FetchPart = (String, u64, Vec<(u64, u64)>);

#[pyclass(frozen, module = "slatedb_py._native", name = "Fetch")]
pub struct PyFetch {
    parts: Vec<Part>,
    cont: Mutex<Option<Cont>>,
}

#[pymethods]
impl PyFetch {
    #[getter]
    fn parts(&self) -> Vec<FetchPart> {
        self.parts.iter().map(|p| (p.path.to_string(), p.tail, p.ranges.clone())).collect()
    }

    fn resume(&self, py: Python<'_>, replies: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let replies: Vec<(Vec<pyo3_bytes::PyBytes>, u64)> = replies.extract().map_err(|e| {
            invalid(format!("replies must be a list of (list of bytes-like buffers, object size >= 0): {e}"), true)
        })?;
        let cont = lock(&self.cont)?.take().ok_or_else(|| invalid("this Fetch was resumed already".into(), false))?;
        if replies.len() != self.parts.len() {
            return Err(invalid(format!("{} replies for {} parts", replies.len(), self.parts.len()), false));
        }
        // Copied into memory Rust owns: a buffer backed by a Python object would keep it alive
        // inside the cache and the SST handles, and dropping it (an eviction, a finished scan)
        // needs the GIL, which the dropping thread may not get while it holds the cache lock
        // another thread waits for with the GIL held: a deadlock.
        let replies: Vec<PartReply> = replies
            .into_iter()
            .map(|(bufs, size)| PartReply {
                buffers: bufs.into_iter().map(|b| Bytes::copy_from_slice(&b.into_inner())).collect(),
                size,
            })
            .collect();
        match cont {
            Cont::Get { tree, mut call, single } => {
                let poll = poll_get(py, &tree, &mut call, Some(replies), single)?;
                finish(py, poll, Cont::Get { tree, call, single })
            }
            Cont::Scan { scan, n, parts } => scan.get().page(py, &scan, n, Some((parts, replies))),
            Cont::Job { job } => job.get().run(py, &job, Some(replies)),
        }
    }
}

fn found_to_py(py: Python<'_>, f: Found) -> Py<PyAny> {
    match f {
        Found::Absent => py.None(),
        Found::Value(v) => PyBytes::new(py, &v).into_any().unbind(),
    }
}

fn poll_get(
    py: Python<'_>,
    tree: &Arc<Tree>,
    call: &mut GetMany,
    replies: Option<Vec<PartReply>>,
    single: bool,
) -> PyResult<Poll<Py<PyAny>>> {
    match py.detach(|| call.poll(tree, replies)).py_err(None)? {
        Poll::Need(parts) => Ok(Poll::Need(parts)),
        Poll::Ready(found) if single => {
            Ok(Poll::Ready(found.into_iter().next().map_or_else(|| py.None(), |f| found_to_py(py, f))))
        }
        Poll::Ready(found) => {
            let items: Vec<Py<PyAny>> = found.into_iter().map(|f| found_to_py(py, f)).collect();
            Ok(Poll::Ready(PyList::new(py, items)?.into_any().unbind()))
        }
    }
}

fn bound(kind: u8, key: Option<Bytes>) -> PyResult<KeyBound<Bytes>> {
    match (kind, key) {
        (0, _) => Ok(KeyBound::Unbounded),
        (1, Some(k)) => Ok(KeyBound::Included(k)),
        (2, Some(k)) => Ok(KeyBound::Excluded(k)),
        (k, _) => Err(invalid(format!("bound kind {k} without a key or unknown"), false)),
    }
}

type PyTableRef = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<(u8, Option<Vec<u8>>, u8, Option<Vec<u8>>)>);

fn table_ref(tables: &Tables, t: PyTableRef) -> PyResult<TableRef> {
    let (path, first, last, visible) = t;
    let visible = match visible {
        None => None,
        Some((sk, s, ek, e)) => {
            Some(KeyRange { start: bound(sk, s.map(Bytes::from))?, end: bound(ek, e.map(Bytes::from))? })
        }
    };
    Ok(TableRef {
        slot: tables.slot(&path).py_err(Some(&path))?,
        first: first.map(Bytes::from),
        last: last.map(Bytes::from),
        visible,
    })
}

/// What reads search: memtables (newest first), then levels (newest first), each
/// `(prefix, is_run, [(path, first_key, last_key, visible_range)])` where a visible range is
/// `(start_kind, start_key, end_kind, end_key)`, kinds 0 unbounded, 1 included, 2 excluded.
#[pyclass(frozen, module = "slatedb_py._native", name = "Tree")]
pub struct PyTree {
    inner: Arc<Tree>,
}

fn key_of(key: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    key.cast::<PyBytes>().map(|b| Bytes::copy_from_slice(b.as_bytes())).map_err(|_| {
        let tname = key.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        invalid(format!("key must be bytes, not {tname}"), true)
    })
}

#[pymethods]
impl PyTree {
    #[new]
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 extracts Python arguments into owned values")]
    fn new(
        tables: &PyTables,
        memtables: Vec<Bound<'_, PyMemtable>>,
        levels: Vec<(Vec<u8>, bool, Vec<PyTableRef>)>,
    ) -> PyResult<Self> {
        let t = &tables.inner;
        let mut out = Vec::with_capacity(levels.len());
        for (prefix, is_run, refs) in levels {
            let refs: Vec<TableRef> = refs.into_iter().map(|r| table_ref(t, r)).collect::<PyResult<_>>()?;
            let level = if is_run {
                Level::Run(refs)
            } else {
                let [one]: [TableRef; 1] =
                    refs.try_into().map_err(|_| invalid("an L0 level holds one SST".into(), false))?;
                Level::Table(one)
            };
            out.push((Bytes::from(prefix), level));
        }
        let memtables = memtables.iter().map(|m| m.get().shared()).collect();
        Ok(PyTree { inner: Arc::new(Tree { memtables, levels: out, tables: t.clone() }) })
    }

    /// The value of `key` at `snapshot_seq` (None: absent, deleted or expired at `now`), or a
    /// Fetch.
    fn get(&self, py: Python<'_>, key: &Bound<'_, PyBytes>, snapshot_seq: u64, now: i64) -> PyResult<Py<PyAny>> {
        let k = key.as_bytes();
        // The common case, answered without making a call object: everything needed is in
        // memory (or in a local file).
        let mut state = GetState::default();
        let mut f = Fetcher::default();
        let step = py.detach(|| self.inner.get_step(k, snapshot_seq, &mut state, &mut f)).py_err(None)?;
        match step {
            Ok(row) => Ok(found_to_py(py, crate::read::visible(row, now).py_err(None)?)),
            Err(need) => {
                let (call, parts) = GetMany::stopped(Bytes::copy_from_slice(k), snapshot_seq, now, state, f, need);
                finish(py, Poll::Need(parts), Cont::Get { tree: self.inner.clone(), call, single: true })
            }
        }
    }

    /// Values of `keys` in order (one list), or a Fetch: every key advances until it needs
    /// bytes, and all their needs go out as one request.
    fn get_many(&self, py: Python<'_>, keys: &Bound<'_, PyAny>, snapshot_seq: u64, now: i64) -> PyResult<Py<PyAny>> {
        let keys: Vec<Bytes> = keys.try_iter()?.map(|k| key_of(&k?)).collect::<PyResult<_>>()?;
        let mut call = GetMany::new(keys, snapshot_seq, now);
        let poll = poll_get(py, &self.inner, &mut call, None, false)?;
        finish(py, poll, Cont::Get { tree: self.inner.clone(), call, single: false })
    }

    #[pyo3(signature = (start, end, snapshot_seq, now, reverse = false))]
    fn scan(
        &self,
        start: Option<&Bound<'_, PyBytes>>,
        end: Option<&Bound<'_, PyBytes>>,
        snapshot_seq: u64,
        now: i64,
        reverse: bool,
    ) -> PyScan {
        let span = Span {
            start: start.map(|s| Bytes::copy_from_slice(s.as_bytes())),
            end: end.map(|e| Bytes::copy_from_slice(e.as_bytes())),
            reverse,
        };
        PyScan { inner: Mutex::new(Scan::new(&self.inner, span, snapshot_seq, now)) }
    }
}

/// A streaming scan; pages of `(key, value)` cross into Python.
#[pyclass(frozen, module = "slatedb_py._native", name = "Scan")]
pub struct PyScan {
    inner: Mutex<Scan>,
}

fn page_to_py(py: Python<'_>, rows: &[Row]) -> PyResult<Py<PyAny>> {
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        items.push(PyTuple::new(py, [PyBytes::new(py, &r.key), PyBytes::new(py, &r.value)])?);
    }
    Ok(PyList::new(py, items)?.into_any().unbind())
}

impl PyScan {
    fn page(
        &self,
        py: Python<'_>,
        me: &Py<PyScan>,
        n: usize,
        replies: Option<(Vec<Part>, Vec<PartReply>)>,
    ) -> PyResult<Py<PyAny>> {
        // The lock is taken without the GIL: a thread holding it while it works without the
        // GIL must not wait on one holding the GIL while it waits for the lock.
        let polled = py.detach(|| -> CoreResult<Poll<Vec<Row>>> {
            let mut scan = self.inner.lock().map_err(|_| crate::error::CoreError::poisoned("scan"))?;
            scan.next_page(n, replies)
        });
        match polled.py_err(None)? {
            Poll::Ready(rows) => page_to_py(py, &rows),
            Poll::Need(parts) => {
                let cont = Cont::Scan { scan: me.clone_ref(py), n, parts: parts.clone() };
                finish(py, Poll::Need(parts), cont)
            }
        }
    }
}

#[pymethods]
impl PyScan {
    /// Up to `n` `(key, value)` pairs (an empty list at the end), or a Fetch.
    fn next_page(slf: &Bound<'_, Self>, n: usize) -> PyResult<Py<PyAny>> {
        let me: Py<PyScan> = slf.clone().unbind();
        slf.get().page(slf.py(), &me, n.max(1), None)
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

struct CursorState {
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
