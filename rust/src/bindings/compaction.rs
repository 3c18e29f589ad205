//! `CompactionJob`: a streaming compaction the Python side drives.
//!
//! Inputs are SSTs opened from their tails; their data blocks arrive as the merge needs
//! them, so memory holds a few fetched blocks per input plus one output SST, whatever the
//! input size. `step()` runs the merge without the GIL until it needs input, finishes an
//! output SST, or ends. A data error in an input (a corrupt block) names that input's object
//! and the block's offset: each input carries its name (`StreamingSst`).

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::prelude::*;

use super::errors::{invalid, IntoPyResult};
use super::sst::{compacted_options, PySstFile};
use crate::error::CoreError;
use crate::merge::{MergeIterator, MergeMode, RowSource};
use crate::sst::{SstBuilder, SstOptions, StreamingSst};

/// Bytes of input blocks fetched per request for one source.
const FETCH_BYTES: u64 = 1024 * 1024;

struct Job {
    merge: MergeIterator,
    opts: SstOptions,
    max_sst_size: usize,
    builder: Option<SstBuilder>,
    done: bool,
}

#[pyclass(frozen, module = "slatedb_py._native", name = "CompactionJob")]
pub struct PyCompactionJob {
    job: Mutex<Job>,
}

enum Step {
    Done,
    Output(Vec<u8>),
    Need(usize, Vec<(usize, u64, u64)>),
}

impl Job {
    fn step(&mut self) -> crate::error::CoreResult<Step> {
        if self.done {
            return Ok(Step::Done);
        }
        loop {
            if self.builder.as_ref().is_some_and(|b| b.estimated_size() >= self.max_sst_size) {
                let b = self.builder.take().ok_or_else(|| CoreError::invalid("no builder"))?;
                return Ok(Step::Output(b.finish()?));
            }
            match self.merge.next_row() {
                Ok(Some(row)) => {
                    if self.builder.is_none() {
                        let mut b = SstBuilder::new(self.opts.clone())?;
                        // Data up to max_sst_size, then filter, index and stats: ~5% more.
                        b.reserve(self.max_sst_size + self.max_sst_size / 16 + 64 * 1024);
                        self.builder = Some(b);
                    }
                    if let Some(b) = &mut self.builder {
                        b.add(&row)?;
                    }
                }
                Ok(None) => {
                    self.done = true;
                    return Ok(match self.builder.take() {
                        Some(b) => Step::Output(b.finish()?),
                        None => Step::Done,
                    });
                }
                Err(CoreError::Pending) => {
                    let src = self.merge.waiting().ok_or_else(|| CoreError::invalid("pending without a source"))?;
                    let wants = self.merge.source(src).map(|s| s.wants(FETCH_BYTES)).unwrap_or_default();
                    return Ok(Step::Need(src, wants));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[pymethods]
impl PyCompactionJob {
    /// `inputs`: SSTs (opened from their tails), newest first. See `MergeMode::Compaction`.
    #[new]
    #[pyo3(signature = (inputs, retain_seq, now, bottom, max_sst_size, block_size = 4096, compression = None, bloom_bits_per_key = 10, min_filter_keys = 1000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        inputs: Vec<Bound<'_, PySstFile>>,
        retain_seq: u64,
        now: Option<i64>,
        bottom: bool,
        max_sst_size: usize,
        block_size: usize,
        compression: Option<&str>,
        bloom_bits_per_key: u32,
        min_filter_keys: u64,
    ) -> PyResult<Self> {
        let sources: Vec<Box<dyn RowSource>> = inputs
            .iter()
            .map(|f| Box::new(StreamingSst::new(f.get().file.clone(), f.get().name.clone())) as Box<dyn RowSource>)
            .collect();
        let merge = MergeIterator::new(sources, MergeMode::Compaction { retain_seq, now, bottom });
        Ok(PyCompactionJob {
            job: Mutex::new(Job {
                merge,
                opts: compacted_options(block_size, compression, bloom_bits_per_key, min_filter_keys)?,
                max_sst_size,
                builder: None,
                done: false,
            }),
        })
    }

    /// `(0, None)`: finished. `(1, sst_bytes)`: an output SST to store. `(2, (source,
    /// [(block, start, end), ...]))`: fetch those blocks of input `source`, `feed` them, and
    /// call again.
    fn step(&self, py: Python<'_>) -> PyResult<(u8, Py<PyAny>)> {
        let mut job = self.job.lock().map_err(|_| invalid("compaction job poisoned".into(), false))?;
        let j: &mut Job = &mut job;
        match py.detach(|| j.step()).py_err(None)? {
            Step::Done => Ok((0, py.None())),
            // Handed over without a copy (a buffer-protocol object obstore can upload).
            Step::Output(data) => Ok((1, pyo3_bytes::PyBytes::new(Bytes::from(data)).into_pyobject(py)?.into_any().unbind())),
            Step::Need(src, wants) => Ok((2, (src, wants).into_pyobject(py)?.into_any().unbind())),
        }
    }

    fn feed(&self, py: Python<'_>, source: usize, blocks: Vec<(usize, pyo3_bytes::PyBytes)>) -> PyResult<()> {
        let blocks: Vec<(usize, Bytes)> = blocks.into_iter().map(|(i, b)| (i, b.into_inner())).collect();
        let mut job = self.job.lock().map_err(|_| invalid("compaction job poisoned".into(), false))?;
        let j: &mut Job = &mut job;
        py.detach(|| match j.merge.source_mut(source) {
            Some(s) => s.feed(blocks),
            None => Err(CoreError::invalid(format!("no input {source}"))),
        })
        .py_err(None)
    }
}
