//! `Tree`: what a read searches (memtables, then levels), and its point reads and scans.

use std::ops::Bound as KeyBound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::errors::{invalid, IntoPyResult};
use super::fetch::{finish, Cont};
use super::memtable::PyMemtable;
use super::scan::PyScan;
use super::tables::PyTables;
use crate::bulk::Items;
use crate::fetch::Fetcher;
use crate::fetch::{PartReply, Poll, Tables};
use crate::read::{Found, GetMany, GetState, KeyRange, Level, TableRef, Tree};
use crate::scan::{Scan, Span};

pub(super) fn found_to_py(py: Python<'_>, f: Found) -> Py<PyAny> {
    match f {
        Found::Absent => py.None(),
        Found::Value(v) => PyBytes::new(py, &v).into_any().unbind(),
    }
}

pub(super) fn poll_get(
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

pub(super) fn bound(kind: u8, key: Option<Bytes>) -> PyResult<KeyBound<Bytes>> {
    match (kind, key) {
        (0, _) => Ok(KeyBound::Unbounded),
        (1, Some(k)) => Ok(KeyBound::Included(k)),
        (2, Some(k)) => Ok(KeyBound::Excluded(k)),
        (k, _) => Err(invalid(format!("bound kind {k} without a key or unknown"), false)),
    }
}

pub(super) type PyTableRef =
    (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<(u8, Option<Vec<u8>>, u8, Option<Vec<u8>>)>);

pub(super) fn table_ref(tables: &Tables, t: PyTableRef) -> PyResult<TableRef> {
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

#[pymethods]
impl PyTree {
    #[new]
    #[pyo3(signature = (tables, memtables, levels, merge_operator = None))]
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 extracts Python arguments into owned values")]
    fn new(
        tables: &PyTables,
        memtables: Vec<Bound<'_, PyMemtable>>,
        levels: Vec<(Vec<u8>, bool, Vec<PyTableRef>)>,
        merge_operator: Option<&Bound<'_, super::operator::PyOperator>>,
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
        let op = super::operator::engine_op(merge_operator);
        Ok(PyTree { inner: Arc::new(Tree { memtables, levels: out, tables: t.clone(), op }) })
    }

    /// The value of `key` at `snapshot_seq` (None: absent, deleted or expired at `now`), or a
    /// Fetch.
    fn get(&self, py: Python<'_>, key: &Bound<'_, PyBytes>, snapshot_seq: u64, now: i64) -> PyResult<Py<PyAny>> {
        let k = key.as_bytes();
        // The common case, answered without making a call object: everything needed is in
        // memory (or in a local file).
        let mut state = GetState::default();
        let mut f = Fetcher::default();
        let step = py.detach(|| self.inner.get_step(k, snapshot_seq, now, &mut state, &mut f)).py_err(None)?;
        match step {
            Ok(found) => Ok(found_to_py(py, found)),
            Err(need) => {
                let (call, parts) = GetMany::stopped(Bytes::copy_from_slice(k), snapshot_seq, now, state, f, need);
                finish(py, Poll::Need(parts), Cont::Get { tree: self.inner.clone(), call, single: true })
            }
        }
    }

    /// Values of `keys` (a `Bulk`) in order (one list), or a Fetch: every key advances until it needs
    /// bytes, and all their needs go out as one request.
    fn get_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, super::bulk::PyBulk>,
        snapshot_seq: u64,
        now: i64,
    ) -> PyResult<Py<PyAny>> {
        let b = keys.get();
        let keys: Vec<Bytes> = (0..b.len()).map(|i| Bytes::copy_from_slice(b.keys.item(i))).collect();
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
