//! `slatedb_py.format.Row`: one version of one key, created natively for speed (decoding
//! builds millions of them), and `RowList`, rows held natively (a `merge_rows` source).

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::errors::{invalid, IntoPyResult};
use crate::format::row::{Row, RowKind};

#[pyclass(frozen, eq, hash, module = "slatedb_py.format", name = "Row")]
pub struct PyRow {
    key: Py<PyBytes>,
    value: Option<Py<PyBytes>>,
    seq: u64,
    kind: RowKind,
    expire_ts: Option<i64>,
    create_ts: Option<i64>,
}

impl PartialEq for PyRow {
    fn eq(&self, other: &Self) -> bool {
        Python::attach(|py| {
            self.key.as_bytes(py) == other.key.as_bytes(py)
                && self.value.as_ref().map(|v| v.as_bytes(py)) == other.value.as_ref().map(|v| v.as_bytes(py))
                && (self.seq, self.kind, self.expire_ts, self.create_ts)
                    == (other.seq, other.kind, other.expire_ts, other.create_ts)
        })
    }
}

impl std::hash::Hash for PyRow {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Python::attach(|py| self.key.as_bytes(py).hash(state));
        self.seq.hash(state);
    }
}

impl PyRow {
    pub fn from_row(py: Python<'_>, row: &Row) -> PyRow {
        PyRow {
            key: PyBytes::new(py, &row.key).unbind(),
            value: (row.kind != RowKind::Tombstone).then(|| PyBytes::new(py, &row.value).unbind()),
            seq: row.seq,
            kind: row.kind,
            expire_ts: row.expire_ts,
            create_ts: row.create_ts,
        }
    }

    pub fn to_row(&self, py: Python<'_>) -> Row {
        Row {
            key: Bytes::copy_from_slice(self.key.as_bytes(py)),
            value: self.value.as_ref().map_or_else(Bytes::new, |v| Bytes::copy_from_slice(v.as_bytes(py))),
            seq: self.seq,
            kind: self.kind,
            expire_ts: self.expire_ts,
            create_ts: self.create_ts,
        }
    }
}

type RowArgs<'a, 'py> = (&'a Bound<'py, PyAny>, Option<&'a Bound<'py, PyAny>>, u64, &'a str, Option<i64>, Option<i64>);

fn bytes_arg<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyBytes>> {
    obj.cast::<PyBytes>().cloned().map_err(|_| {
        let tname = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        invalid(format!("{what} must be bytes, not {tname}"), true)
    })
}

/// A checked `PyRow` (what `Row(...)` does); `args` are `(key, value, seq, kind, expire_ts,
/// create_ts)`.
fn build(py: Python<'_>, args: RowArgs<'_, '_>) -> PyResult<PyRow> {
    let (key, value, seq, kind, expire_ts, create_ts) = args;
    let kind = RowKind::from_name(kind).py_err(None)?;
    let key = bytes_arg(key, "key")?;
    let value = match value {
        Some(v) if !v.is_none() => Some(bytes_arg(v, "value")?),
        _ => None,
    };
    match (kind, &value) {
        (RowKind::Tombstone, Some(v)) if !v.as_bytes().is_empty() => {
            return Err(invalid("a tombstone row has no value (pass None)".into(), false));
        }
        (RowKind::Value | RowKind::Merge, None) => {
            return Err(invalid(format!("a {} row needs a bytes value", kind.name()), false));
        }
        _ => {}
    }
    let row = PyRow {
        key: key.unbind(),
        value: if kind == RowKind::Tombstone { None } else { value.map(Bound::unbind) },
        seq,
        kind,
        expire_ts,
        create_ts,
    };
    row.to_row(py).validate().py_err(None)?;
    Ok(row)
}

/// Extracts a row from a `Row` or a tuple `(key, value, seq[, kind[, expire_ts[, create_ts]]])`.
pub fn extract_row(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Row> {
    if let Ok(r) = obj.cast::<PyRow>() {
        return Ok(r.get().to_row(py));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        let n = t.len();
        if (3..=6).contains(&n) {
            let kind: String = if n > 3 { t.get_item(3)?.extract()? } else { "value".into() };
            let opt = |i: usize| -> PyResult<Option<i64>> {
                if n > i {
                    t.get_item(i)?.extract()
                } else {
                    Ok(None)
                }
            };
            let value = t.get_item(1)?;
            let key = t.get_item(0)?;
            let args = (&key, Some(&value), t.get_item(2)?.extract()?, kind.as_str(), opt(4)?, opt(5)?);
            return Ok(build(py, args)?.to_row(py));
        }
    }
    let tname = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(invalid(format!("a row must be a Row or a (key, value, seq, ...) tuple, not {tname}"), true))
}

#[pymethods]
impl PyRow {
    #[new]
    #[pyo3(signature = (key, value, seq, kind = "value", expire_ts = None, create_ts = None))]
    fn new(
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        seq: u64,
        kind: &str,
        expire_ts: Option<i64>,
        create_ts: Option<i64>,
    ) -> PyResult<Self> {
        build(py, (key, value, seq, kind, expire_ts, create_ts))
    }

    #[getter]
    fn key(&self, py: Python<'_>) -> Py<PyBytes> {
        self.key.clone_ref(py)
    }

    /// The value; None for a tombstone.
    #[getter]
    fn value(&self, py: Python<'_>) -> Option<Py<PyBytes>> {
        self.value.as_ref().map(|v| v.clone_ref(py))
    }

    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// "value", "tombstone" or "merge".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.name()
    }

    /// Unix milliseconds after which the row reads as absent, or None.
    #[getter]
    fn expire_ts(&self) -> Option<i64> {
        self.expire_ts
    }

    /// Unix milliseconds of the write (the DB clock), or None.
    #[getter]
    fn create_ts(&self) -> Option<i64> {
        self.create_ts
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let key = self.key.bind(py).repr()?.to_string();
        let value = match &self.value {
            Some(v) => v.bind(py).repr()?.to_string(),
            None => "None".into(),
        };
        let ts = |t: Option<i64>| t.map_or("None".to_string(), |t| t.to_string());
        Ok(format!(
            "Row(key={key}, value={value}, seq={}, kind='{}', expire_ts={}, create_ts={})",
            self.seq,
            self.kind.name(),
            ts(self.expire_ts),
            ts(self.create_ts)
        ))
    }
}

/// Rows held natively, usable as a `merge_rows` source (a memtable range, an SST range).
#[pyclass(frozen, module = "slatedb_py._native", name = "RowList")]
pub struct PyRowList {
    pub rows: Vec<Row>,
}

#[pymethods]
impl PyRowList {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    fn to_list(&self, py: Python<'_>) -> PyResult<Vec<Py<PyRow>>> {
        self.rows.iter().map(|r| Py::new(py, PyRow::from_row(py, r))).collect()
    }
}
