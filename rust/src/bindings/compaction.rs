//! `CompactionJob`: the core's streaming compaction (`crate::compaction`), driven from Python
//! through the fetch contract.

use std::sync::Mutex;

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::fetch::PyFetchCont;
use super::pieces::piece_to_py;
use super::sst::compacted_options;
use super::tables::PyTables;
use crate::compaction::{CompactionJob, JobStep};
use crate::error::CoreError;
use crate::fetch::PartReply;
use crate::read::TableRef;

#[pyclass(frozen, module = "slatedb_py._native", name = "CompactionJob")]
pub struct PyCompactionJob {
    job: Mutex<CompactionJob>,
}

impl PyCompactionJob {
    pub fn run(
        &self,
        py: Python<'_>,
        me: &Py<PyCompactionJob>,
        replies: Option<Vec<PartReply>>,
    ) -> PyResult<Py<PyAny>> {
        // The lock is taken without the GIL, as a scan's: the step may call a Python merge
        // operator, which takes the GIL while the lock is held.
        let step = py.detach(|| {
            let mut job = self.job.lock().map_err(|_| CoreError::poisoned("compaction job"))?;
            job.step(replies)
        });
        match step.py_err(None)? {
            JobStep::Done => Ok(py.None()),
            JobStep::Piece(piece) => piece_to_py(py, piece),
            JobStep::Need(parts) => PyFetchCont::job(py, parts, me.clone_ref(py)),
        }
    }
}

#[pymethods]
impl PyCompactionJob {
    /// `inputs`: SST paths, newest first. See `MergeMode::Compaction`; outputs are cut at
    /// `max_sst_size` and handed out in pieces of `piece_size` bytes (`SplitWriter`).
    #[new]
    #[pyo3(signature = (tables, inputs, retain_seq, now, bottom, max_sst_size, piece_size, block_size = 4096, compression = None, bloom_bits_per_key = 10, min_filter_keys = 1000, merge_operator = None, block_alignment = false))]
    #[allow(clippy::too_many_arguments, reason = "mirrors the Python constructor's keyword arguments")]
    #[allow(clippy::needless_pass_by_value, reason = "PyO3 extracts Python arguments into owned values")]
    fn new(
        tables: &PyTables,
        inputs: Vec<String>,
        retain_seq: u64,
        now: Option<i64>,
        bottom: bool,
        max_sst_size: usize,
        piece_size: usize,
        block_size: usize,
        compression: Option<&str>,
        bloom_bits_per_key: u32,
        min_filter_keys: u64,
        merge_operator: Option<&Bound<'_, super::operator::PyOperator>>,
        block_alignment: bool,
    ) -> PyResult<Self> {
        let t = &tables.inner;
        let refs: Vec<TableRef> = inputs
            .iter()
            .map(|p| Ok(TableRef { slot: t.slot(p).py_err(Some(p))?, first: None, last: None, visible: None }))
            .collect::<PyResult<_>>()?;
        let opts = compacted_options(block_size, compression, bloom_bits_per_key, min_filter_keys, block_alignment)?;
        Ok(PyCompactionJob {
            job: Mutex::new(CompactionJob::new(
                t,
                &refs,
                retain_seq,
                now,
                bottom,
                max_sst_size,
                piece_size,
                opts,
                super::operator::engine_op(merge_operator),
            )),
        })
    }

    /// The next piece of output (`(data, None)`, or `(data, SstFile)` for an output's last
    /// piece), None when finished, or a Fetch whose resumption continues the job.
    fn step(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let me: Py<PyCompactionJob> = slf.clone().unbind();
        slf.get().run(slf.py(), &me, None)
    }
}
