//! `encode_sst`, `decode_sst` and the native SST handle.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::{invalid, poisoned, IntoPyResult};
use super::row::{extract_row, PyRow};
use crate::format::codec::Compression;
use crate::format::row::Row;
use crate::format::tables::{SsTableInfo, SstType, FILTER_FORMAT_COMPOSITE};
use crate::sst::{self, SstFile, SstIter, SstOptions};

/// Rows are converted per decoded block: big enough to amortise the crossing, small enough
/// to stream.
fn rows_to_py(py: Python<'_>, rows: &[Row]) -> PyResult<Vec<Py<PyRow>>> {
    rows.iter().map(|r| Py::new(py, PyRow::from_row(py, r))).collect()
}

/// Options of a compacted SST from the arguments Python passes (shared by every binding
/// that writes one).
pub fn compacted_options(
    block_size: usize,
    compression: Option<&str>,
    bloom_bits_per_key: u32,
    min_filter_keys: u64,
    block_alignment: bool,
) -> PyResult<SstOptions> {
    Ok(SstOptions {
        sst_type: SstType::Compacted,
        block_size,
        compression: Compression::from_name(compression).py_err(None)?,
        bloom_bits_per_key,
        min_filter_keys,
        block_alignment,
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments, reason = "the Python keyword arguments of `format.encode_sst`")]
#[pyo3(signature = (rows, kind = "compacted", block_size = None, compression = None, bloom_bits_per_key = 10, min_filter_keys = 1000, block_alignment = false))]
pub fn encode_sst<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    kind: &str,
    block_size: Option<i64>,
    compression: Option<&str>,
    bloom_bits_per_key: i64,
    min_filter_keys: i64,
    block_alignment: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let sst_type = SstType::from_name(kind).py_err(None)?;
    let base = match sst_type {
        SstType::Compacted => SstOptions::compacted(),
        SstType::Wal => SstOptions::wal(),
    };
    let block_size = match block_size {
        None => base.block_size,
        Some(b) if (1..=65536).contains(&b) => b as usize,
        Some(b) => return Err(invalid(format!("block_size must be 1..=65536 bytes, not {b}"), false)),
    };
    if !(0..=1_000_000).contains(&bloom_bits_per_key) {
        return Err(invalid(format!("bloom_bits_per_key must be 0..=1000000, not {bloom_bits_per_key}"), false));
    }
    if min_filter_keys < 0 {
        return Err(invalid(format!("min_filter_keys must be >= 0, not {min_filter_keys}"), false));
    }
    let opts = SstOptions {
        sst_type,
        block_size,
        compression: Compression::from_name(compression).py_err(None)?,
        bloom_bits_per_key: bloom_bits_per_key as u32,
        min_filter_keys: min_filter_keys as u64,
        block_alignment,
    };
    let mut native = Vec::new();
    for (i, item) in rows.try_iter()?.enumerate() {
        native.push(extract_row(py, &item?).map_err(|e| {
            let msg = format!("row {i}: {}", e.value(py));
            if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                invalid(msg, true)
            } else {
                invalid(msg, false)
            }
        })?);
    }
    let out = py.detach(|| sst::encode_sst(&native, opts)).py_err(None)?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, name = None))]
pub fn decode_sst(py: Python<'_>, data: pyo3_bytes::PyBytes, name: Option<String>) -> PyResult<PySstFile> {
    let bytes = data.into_inner();
    let file = py.detach(|| SstFile::open(bytes)).py_err(name.as_deref())?;
    Ok(PySstFile { file, name })
}

/// An SST's footer metadata (`SsTableInfo`), its format version and layout: what
/// `SstFile.info()` returns (`slatedb_py.format.SstInfo` and
/// `slatedb_py.manifest.model.SstTableInfo` are built from it).
#[pyclass(frozen, module = "slatedb_py._native", name = "SstInfo")]
pub struct PySstInfo {
    info: SsTableInfo,
    format_version: u16,
    metadata_offset: u64,
    size: usize,
}

#[pymethods]
impl PySstInfo {
    /// First user key (compacted SSTs), or the first seq as 8 BE bytes (WAL SSTs).
    #[getter]
    fn first_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.info.first_entry.as_ref().map(|b| PyBytes::new(py, b))
    }

    #[getter]
    fn last_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.info.last_entry.as_ref().map(|b| PyBytes::new(py, b))
    }

    /// "compacted" or "wal".
    #[getter]
    fn sst_type(&self) -> &'static str {
        self.info.sst_type.name()
    }

    /// None, "snappy", "zlib", "lz4" or "zstd".
    #[getter]
    fn compression(&self) -> Option<&'static str> {
        self.info.compression.name()
    }

    #[getter]
    fn format_version(&self) -> u16 {
        self.format_version
    }

    #[getter]
    fn index_offset(&self) -> u64 {
        self.info.index_offset
    }

    #[getter]
    fn index_len(&self) -> u64 {
        self.info.index_len
    }

    #[getter]
    fn filter_offset(&self) -> u64 {
        self.info.filter_offset
    }

    #[getter]
    fn filter_len(&self) -> u64 {
        self.info.filter_len
    }

    #[getter]
    fn stats_offset(&self) -> u64 {
        self.info.stats_offset
    }

    #[getter]
    fn stats_len(&self) -> u64 {
        self.info.stats_len
    }

    /// "composite" or "legacy".
    #[getter]
    fn filter_format(&self) -> &'static str {
        if self.info.filter_format == FILTER_FORMAT_COMPOSITE {
            "composite"
        } else {
            "legacy"
        }
    }

    #[getter]
    fn metadata_offset(&self) -> u64 {
        self.metadata_offset
    }

    /// The object's size in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.size
    }

    /// The first sequence number of a WAL SST (its `first_key` as 8 big-endian bytes).
    #[getter]
    fn first_seq(&self) -> Option<u64> {
        let first = self.info.first_entry.as_ref()?;
        let bytes: [u8; 8] = first.as_ref().try_into().ok()?;
        (self.info.sst_type == SstType::Wal).then(|| u64::from_be_bytes(bytes))
    }

    /// Bytes of data blocks (they end where the filter section starts).
    #[getter]
    fn data_len(&self) -> u64 {
        self.info.filter_offset
    }

    /// Equal when every field is: two opens of the same bytes give equal infos.
    fn __eq__(&self, other: &Self) -> bool {
        self.info == other.info
            && self.format_version == other.format_version
            && self.metadata_offset == other.metadata_offset
            && self.size == other.size
    }

    fn __hash__(&self) -> u64 {
        let i = &self.info;
        let mut h = DefaultHasher::new();
        (&i.first_entry, &i.last_entry, i.index_offset, i.index_len, i.filter_offset).hash(&mut h);
        (i.filter_len, i.stats_offset, i.stats_len, i.filter_format, self.sst_type()).hash(&mut h);
        (self.compression(), self.format_version, self.metadata_offset, self.size).hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!(
            "SstInfo(sst_type='{}', size={}, compression={}, format_version={})",
            self.sst_type(),
            self.size,
            self.compression().map_or_else(|| "None".to_string(), |c| format!("'{c}'")),
            self.format_version
        )
    }
}

#[pyclass(frozen, module = "slatedb_py._native", name = "SstFile")]
pub struct PySstFile {
    pub file: SstFile,
    pub name: Option<String>,
}

fn key_arg<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    key.cast::<PyBytes>().map(pyo3::types::PyBytesMethods::as_bytes).map_err(|_| {
        let tname = key.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        invalid(format!("key must be bytes, not {tname}"), true)
    })
}

#[pymethods]
impl PySstFile {
    /// The SsTableInfo fields, the footer version and the file's layout.
    fn info(&self) -> PySstInfo {
        PySstInfo {
            info: self.file.info().clone(),
            format_version: self.file.format_version(),
            metadata_offset: self.file.meta_offset(),
            size: self.file.size(),
        }
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = self.file.stats() else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("num_puts", s.num_puts)?;
        d.set_item("num_deletes", s.num_deletes)?;
        d.set_item("num_merges", s.num_merges)?;
        d.set_item("raw_key_size", s.raw_key_size)?;
        d.set_item("raw_val_size", s.raw_val_size)?;
        let blocks: Vec<(u16, u16, u16)> =
            s.block_stats.iter().map(|b| (b.num_puts, b.num_deletes, b.num_merges)).collect();
        d.set_item("block_stats", blocks)?;
        Ok(Some(d))
    }

    /// `[(offset, end, index_key)]` for every data block.
    fn blocks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<(u64, u64, Bound<'py, PyBytes>)> = (0..self.file.num_blocks())
            .map(|i| {
                let (s, e) = self.file.block_range(i);
                (s, e, PyBytes::new(py, &self.file.index()[i].first_key))
            })
            .collect();
        PyList::new(py, items)
    }

    /// Zero padding after each data block (0.18's block alignment; all 0 otherwise).
    fn block_paddings(&self) -> Vec<u64> {
        (0..self.file.num_blocks()).map(|i| self.file.block_padding(i)).collect()
    }

    #[getter]
    fn num_blocks(&self) -> usize {
        self.file.num_blocks()
    }

    #[getter]
    fn has_filter(&self) -> bool {
        self.file.filter().is_some()
    }

    fn rows(&self) -> PyRowIterator {
        PyRowIterator {
            state: Mutex::new(RowIterState { iter: self.file.iter(), buffer: Vec::new(), next: 0 }),
            name: self.name.clone(),
        }
    }

    fn block_rows(&self, py: Python<'_>, index: usize) -> PyResult<Vec<Py<PyRow>>> {
        let rows = py.detach(|| self.file.block(index).and_then(|b| b.rows())).py_err(self.name.as_deref())?;
        rows_to_py(py, &rows)
    }

    fn get(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<PyRow>> {
        let key = key_arg(key)?;
        let row = self.file.get(key).py_err(self.name.as_deref())?;
        Ok(row.map(|r| PyRow::from_row(py, &r)))
    }

    #[getter]
    fn is_whole(&self) -> bool {
        self.file.is_whole()
    }

    fn might_contain(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.file.might_contain(key_arg(key)?))
    }

    /// `might_contain` of each key (a list, numpy or Arrow array), as a numpy bool array.
    fn might_contain_many<'py>(&self, keys: &Bound<'py, PyAny>) -> PyResult<Bound<'py, numpy::PyArray1<bool>>> {
        super::columns::probe_many(keys, |k| self.file.might_contain(k))
    }
}

struct RowIterState {
    iter: SstIter,
    buffer: Vec<Row>,
    next: usize,
}

#[pyclass(frozen, module = "slatedb_py._native", name = "RowIterator")]
pub struct PyRowIterator {
    state: Mutex<RowIterState>,
    name: Option<String>,
}

#[pymethods]
impl PyRowIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRow>> {
        let mut st = self.state.lock().map_err(|_| poisoned("row iterator"))?;
        if st.next >= st.buffer.len() {
            let RowIterState { iter, buffer, next } = &mut *st;
            buffer.clear();
            *next = 0;
            while buffer.is_empty() {
                if !py.detach(|| iter.next_block_rows(buffer)).py_err(self.name.as_deref())? {
                    return Ok(None);
                }
            }
        }
        let i = st.next;
        st.next += 1;
        Ok(Some(PyRow::from_row(py, &st.buffer[i])))
    }
}
