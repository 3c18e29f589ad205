//! `Bulk`: the keys (and values) of a many-key call, read once from numpy, Arrow or lists
//! (`columns.rs`) and checked in one pass; the writes and reads then take them natively.

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::columns::{Column, Role};
use super::errors::invalid;
use crate::bulk::Items;

/// The keys (and, for puts, values) of a many-key call: `Bulk(keys)` or `Bulk(keys, values)`.
/// Every item is checked when it is made, pair by pair in index order (the key, then its
/// value), so the error names the first bad index; nothing is applied after an error.
#[pyclass(frozen, module = "slatedb_py._native", name = "Bulk")]
pub struct PyBulk {
    pub(super) keys: Column,
    pub(super) values: Option<Column>,
    /// Bytes of keys and values of each op, summed: `sizes[i]` is ops `..i`'s.
    sizes: Vec<u64>,
}

impl Items for Column {
    fn item(&self, i: usize) -> &[u8] {
        self.get(i).unwrap_or_default()
    }
}

impl PyBulk {
    pub fn new(keys: &Bound<'_, PyAny>, values: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let k = Column::parse(keys, "keys")?;
        let v = values.map(|v| Column::parse(v, "values")).transpose()?;
        if let Some(v) = &v {
            if v.len() != k.len() {
                let msg = format!("keys and values must have the same length, not {} and {}", k.len(), v.len());
                return Err(invalid(msg, false));
            }
        }
        let mut sizes = Vec::with_capacity(k.len() + 1);
        let mut total = 0u64;
        sizes.push(0);
        for i in 0..k.len() {
            total += k.check(i, Role::Key, "keys", None)? as u64;
            if let Some(v) = &v {
                total += v.check(i, Role::Value, "values", k.get(i))? as u64;
            }
            sizes.push(total);
        }
        Ok(PyBulk { keys: k, values: v, sizes })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Ops `lo..hi`, clamped to the ops there are.
    pub fn range(&self, lo: usize, hi: Option<usize>) -> std::ops::Range<usize> {
        let n = self.len();
        let hi = hi.unwrap_or(n).min(n);
        lo.min(hi)..hi
    }

    /// Bytes of keys and values in all.
    pub fn total_bytes(&self) -> u64 {
        self.sizes[self.len()]
    }

    pub fn value_items(&self) -> Option<&dyn Items> {
        self.values.as_ref().map(|v| v as &dyn Items)
    }
}

#[pymethods]
impl PyBulk {
    #[new]
    #[pyo3(signature = (keys, values = None))]
    fn py_new(keys: &Bound<'_, PyAny>, values: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::new(keys, values)
    }

    fn __len__(&self) -> usize {
        self.len()
    }

    /// Bytes of keys and values in all.
    #[getter]
    fn nbytes(&self) -> u64 {
        self.total_bytes()
    }

    /// True when it holds values (puts), False for keys alone (deletes, reads).
    #[getter]
    fn has_values(&self) -> bool {
        self.values.is_some()
    }

    /// Where to cut the ops into pieces of at most `limit` bytes of keys and values each
    /// (one op at least): `[0, ..., len]`.
    fn chunks(&self, limit: u64) -> Vec<usize> {
        let n = self.len();
        let mut cuts = vec![0];
        let mut at = 0;
        while at < n {
            let budget = self.sizes[at] + limit.max(1);
            // The last op whose end fits, and at least one op.
            let end = self.sizes.partition_point(|&s| s <= budget).saturating_sub(1).clamp(at + 1, n);
            cuts.push(end);
            at = end;
        }
        cuts
    }

    /// The keys of ops `lo..hi` as bytes.
    #[pyo3(signature = (lo = 0, hi = None))]
    fn keys<'py>(&self, py: Python<'py>, lo: usize, hi: Option<usize>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.range(lo, hi).map(|i| pyo3::types::PyBytes::new(py, self.keys.item(i))))
    }

    fn __repr__(&self) -> String {
        let what = if self.values.is_some() { "pairs" } else { "keys" };
        format!("Bulk({} {what}, {} bytes)", self.len(), self.total_bytes())
    }
}
