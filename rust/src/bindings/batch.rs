//! `slatedb_py.WriteBatch`: puts and deletes applied atomically with one sequence number.
//! Native so that filling a batch of thousands of keys costs a native call per key, not a
//! Python method plus checks, or one call for them all (`put_many`, `delete_many`).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyMemoryView, PyType};

use super::bulk::PyBulk;
use super::errors::invalid;
use crate::batch::{Batch, OpKind};
use crate::bulk::Items;
use crate::format::row::{show_key, MAX_KEY_LEN, MAX_VALUE_LEN};

#[pyclass(module = "slatedb_py", name = "WriteBatch")]
#[derive(Default)]
pub struct PyWriteBatch {
    pub batch: Batch,
}

/// Length of a bytes-like argument, read without copying it (so an oversized value is
/// refused before anything is allocated).
fn buffer_len(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().len());
    }
    if obj.is_instance_of::<PyByteArray>() || obj.is_instance_of::<PyMemoryView>() {
        let view = obj.py().import("builtins")?.getattr("memoryview")?.call1((obj,))?;
        return view.getattr("nbytes")?.extract();
    }
    let tname = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(invalid(format!("{what} must be bytes, not {tname}"), true))
}

fn to_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    obj.py().import("builtins")?.getattr("bytes")?.call1((obj,))?.extract()
}

/// The length of a valid key (1..=65535 bytes of a bytes-like object), or the error.
fn check_key_len(key: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n = buffer_len(key, "key")?;
    if n == 0 {
        return Err(invalid("key must not be empty".into(), false));
    }
    if n > MAX_KEY_LEN {
        return Err(invalid(format!("key of {n} bytes is longer than the limit of {MAX_KEY_LEN} bytes"), false));
    }
    Ok(n)
}

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ONE_MS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The TTL rule of `slatedb_py.batch.ttl_ms`, mirrored exactly (same checks in the same
/// order, same messages; tests/regressions/test_ttl_rules.py holds the two together):
/// None is no TTL; a non-`timedelta` is an `InvalidTypeError`; TTLs are whole milliseconds,
/// `ttl // timedelta(milliseconds=1)` (finer parts truncated), and under 1 ms is refused.
fn ttl_ms(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(ttl) = ttl.filter(|t| !t.is_none()) else { return Ok(None) };
    let py = ttl.py();
    let td = TIMEDELTA.import(py, "datetime", "timedelta")?;
    if !ttl.is_instance(td)? {
        let tname = ttl.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        // Python's f"{ttl!r:.60}": the repr, cut to 60 characters.
        let shown: String = ttl.repr()?.to_string().chars().take(60).collect();
        return Err(invalid(format!("ttl must be a datetime.timedelta, not {tname} {shown}"), true));
    }
    let one_ms = ONE_MS
        .get_or_try_init(py, || td.call((), Some(&[("milliseconds", 1)].into_py_dict(py)?)).map(Bound::unbind))?
        .bind(py);
    let ms: i64 = ttl.floor_div(one_ms)?.extract()?;
    if ms < 1 {
        return Err(invalid(
            format!(
                "ttl must be at least 1 ms, not {}: TTLs are stored in whole milliseconds (finer parts are truncated)",
                ttl.str()?
            ),
            false,
        ));
    }
    Ok(Some(ms))
}

/// Checks a put's key and value as `put` does (the key first: bytes-like, 1 to 65535 bytes;
/// then the value: bytes-like, at most 2**32-1 bytes) and hands their bytes to `f`, borrowed
/// from `bytes` objects, copied from other buffers.
fn with_checked<R>(
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    f: impl FnOnce(&[u8], &[u8]) -> PyResult<R>,
) -> PyResult<R> {
    // The hot path: plain bytes within the limits.
    if let (Ok(k), Ok(v)) = (key.cast::<PyBytes>(), value.cast::<PyBytes>()) {
        let (k, v) = (k.as_bytes(), v.as_bytes());
        if !k.is_empty() && k.len() <= MAX_KEY_LEN && v.len() <= MAX_VALUE_LEN {
            return f(k, v);
        }
    }
    check_key_len(key)?;
    let vn = buffer_len(value, "value")?;
    if vn > MAX_VALUE_LEN {
        let key = to_bytes(key)?;
        return Err(invalid(
            format!("value of {vn} bytes for key {} is longer than the limit of {MAX_VALUE_LEN} bytes", show_key(&key)),
            false,
        ));
    }
    let (key, value) = (to_bytes(key)?, to_bytes(value)?);
    f(&key, &value)
}

impl PyWriteBatch {
    /// Adds a put, or a merge operand; returns the batch.
    fn push<'py>(
        mut slf: PyRefMut<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
        kind: OpKind,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let batch = &mut slf.batch;
        with_checked(key, value, |k, v| {
            batch.push(kind, k, v, ttl_ms(ttl)?);
            Ok(())
        })?;
        Ok(slf)
    }
}

#[pymethods]
impl PyWriteBatch {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Adds a put; returns the batch, so calls can be chained.
    #[pyo3(signature = (key, value, *, ttl = None))]
    fn put<'py>(
        slf: PyRefMut<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        Self::push(slf, key, value, ttl, OpKind::Put)
    }

    /// Adds a merge operand (folded by the database's merge operator); returns the batch.
    #[pyo3(signature = (key, operand, *, ttl = None))]
    fn merge<'py>(
        slf: PyRefMut<'py, Self>,
        key: &Bound<'py, PyAny>,
        operand: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        Self::push(slf, key, operand, ttl, OpKind::Merge)
    }

    /// Adds a put per pair of `keys` and `values` (each a list or iterable of bytes, a numpy
    /// array or an Arrow binary array: `Bulk`), each checked like `put`, all with `ttl`;
    /// returns the batch. All or nothing: after an error (which names the index) the batch is
    /// as it was.
    #[pyo3(signature = (keys, values, *, ttl = None))]
    fn put_many<'py>(
        mut slf: PyRefMut<'py, Self>,
        keys: &Bound<'py, PyAny>,
        values: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let ttl = ttl_ms(ttl)?;
        let bulk = PyBulk::new(keys, Some(values))?;
        let values = bulk.value_items().unwrap_or(&bulk.keys as &dyn Items);
        slf.batch.reserve(bulk.len(), bulk.total_bytes() as usize);
        for i in 0..bulk.len() {
            slf.batch.put(bulk.keys.item(i), values.item(i), ttl);
        }
        Ok(slf)
    }

    /// Adds a delete per key of `keys` (as `put_many` takes them), each checked like
    /// `delete`; returns the batch. All or nothing, like `put_many`.
    fn delete_many<'py>(mut slf: PyRefMut<'py, Self>, keys: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
        let bulk = PyBulk::new(keys, None)?;
        slf.batch.reserve(bulk.len(), bulk.total_bytes() as usize);
        for i in 0..bulk.len() {
            slf.batch.delete(bulk.keys.item(i));
        }
        Ok(slf)
    }

    /// Adds a delete; returns the batch.
    fn delete<'py>(mut slf: PyRefMut<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
        check_key_len(key)?;
        match key.cast::<PyBytes>() {
            Ok(k) => slf.batch.delete(k.as_bytes()),
            Err(_) => slf.batch.delete(&to_bytes(key)?),
        }
        Ok(slf)
    }

    fn __len__(&self) -> usize {
        self.batch.len()
    }

    /// The keys the batch writes, each once.
    fn keys<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        let b = &self.batch;
        let mut seen = std::collections::HashSet::with_capacity(b.len());
        (0..b.len()).map(|i| b.key(i)).filter(|k| seen.insert(*k)).map(|k| PyBytes::new(py, k)).collect()
    }

    /// The key of the first merge operand, if any (writing one needs a merge operator).
    #[getter]
    fn merge_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.batch.first_merge().map(|i| PyBytes::new(py, self.batch.key(i)))
    }

    fn clear(&mut self) {
        self.batch.clear();
    }

    fn __repr__(&self) -> String {
        format!("WriteBatch({} ops)", self.batch.len())
    }
}
