//! `Tables`: the SSTs a database has opened and their block cache (`crate::fetch::Tables`).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::sst::PySstFile;
use crate::fetch::Tables;

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

    /// Registers an SST this process just wrote at `path`, from the metadata its last piece
    /// came with (`SstPieces`, `CompactionJob.step`): reads need not fetch it back. Its
    /// blocks are not cached: a bulk load would only push them through the cache, and a
    /// later read finds them in the store (or the local file).
    fn add_written(&self, path: &str, file: &PySstFile) -> PyResult<PySstFile> {
        let file = self.inner.slot(path).py_err(Some(path))?.set(file.file.clone()).clone();
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
