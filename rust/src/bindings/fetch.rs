//! The read path's handles: `Tables` (opened SSTs and the block cache), `Tree` (what a read
//! searches), `Scan` (a streaming iterator) and `Fetch`, the one request for bytes every
//! native read returns when it cannot answer yet (`crate::fetch`).
//!
//! A call answers, or returns a `Fetch`: its `parts` name the bytes, and `resume(replies)`
//! continues the call where it stopped, returning what the call returns (or another Fetch).
//! `slatedb_py.fetch.drive` is the one loop that serves them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;

use super::compaction::PyCompactionJob;
use super::errors::{invalid, lock};
use super::scan::PyScan;
use super::tree::poll_get;
use crate::fetch::{Part, PartReply, Poll};
use crate::read::{GetMany, Tree};

/// What a `Fetch` continues when resumed.
pub(super) enum Cont {
    Get { tree: Arc<Tree>, call: GetMany, single: bool },
    Scan { scan: Py<PyScan>, n: usize, arrow: Option<usize>, parts: Vec<Part> },
    Job { job: Py<PyCompactionJob> },
}

/// The answer of a call, or a Fetch holding its continuation.
pub(super) fn finish(py: Python<'_>, poll: Poll<Py<PyAny>>, cont: Cont) -> PyResult<Py<PyAny>> {
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

/// One part of a `Fetch` as Python sees it: `(path, tail, [(start, end), ...])`.
pub(super) type FetchPart = (String, u64, Vec<(u64, u64)>);

/// A request for bytes: `parts` is `[(path, tail, [(start, end), ...])]`; for a part with
/// `tail` > 0 fetch the object's last `tail` bytes instead of ranges. `resume` takes one
/// `(buffers, object_size)` per part, in order, and continues the call that asked.
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
            Cont::Scan { scan, n, arrow, parts } => scan.get().page(py, &scan, n, arrow, Some((parts, replies))),
            Cont::Job { job } => job.get().run(py, &job, Some(replies)),
        }
    }
}
