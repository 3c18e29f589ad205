//! `slatedb_py.WriteBatch`: puts and deletes applied atomically with one sequence number.
//! Native so that filling a batch of thousands of keys costs a native call per key, not a
//! Python method plus checks.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyMemoryView};

use super::errors::invalid;
use crate::format::row::{show_key, MAX_KEY_LEN, MAX_VALUE_LEN};

pub struct Op {
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub ttl_ms: Option<i64>,
}

#[pyclass(module = "slatedb_py", name = "WriteBatch")]
#[derive(Default)]
pub struct PyWriteBatch {
    pub ops: Vec<Op>,
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

fn to_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    let b: Vec<u8> = obj.py().import("builtins")?.getattr("bytes")?.call1((obj,))?.extract()?;
    Ok(Bytes::from(b))
}

pub fn check_key(key: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let n = buffer_len(key, "key")?;
    if n == 0 {
        return Err(invalid("key must not be empty".into(), false));
    }
    if n > MAX_KEY_LEN {
        return Err(invalid(format!("key of {n} bytes is longer than the limit of {MAX_KEY_LEN} bytes"), false));
    }
    to_bytes(key)
}

fn ttl_ms(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(ttl) = ttl.filter(|t| !t.is_none()) else { return Ok(None) };
    let td = ttl.py().import("datetime")?.getattr("timedelta")?;
    if !ttl.is_instance(&td)? {
        let tname = ttl.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(invalid(format!("ttl must be a datetime.timedelta, not {tname}"), true));
    }
    let ms: i64 = ttl.call_method1("__floordiv__", (td.call((), Some(&[("milliseconds", 1)].into_py_dict(ttl.py())?))?,))?.extract()?;
    if ms <= 0 {
        return Err(invalid(format!("ttl must be positive, not {}", ttl.str()?), false));
    }
    Ok(Some(ms))
}


#[pymethods]
impl PyWriteBatch {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Adds a put; returns the batch, so calls can be chained.
    #[pyo3(signature = (key, value, *, ttl = None))]
    fn put<'py>(mut slf: PyRefMut<'py, Self>, key: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>, ttl: Option<&Bound<'py, PyAny>>) -> PyResult<PyRefMut<'py, Self>> {
        let key = check_key(key)?;
        let n = buffer_len(value, "value")?;
        if n > MAX_VALUE_LEN {
            return Err(invalid(format!("value of {n} bytes for key {} is longer than the limit of {MAX_VALUE_LEN} bytes", show_key(&key)), false));
        }
        let ttl_ms = ttl_ms(ttl)?;
        let value = to_bytes(value)?;
        slf.ops.push(Op { key, value: Some(value), ttl_ms });
        Ok(slf)
    }

    /// Adds a delete; returns the batch.
    fn delete<'py>(mut slf: PyRefMut<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
        let key = check_key(key)?;
        slf.ops.push(Op { key, value: None, ttl_ms: None });
        Ok(slf)
    }

    fn __len__(&self) -> usize {
        self.ops.len()
    }

    fn clear(&mut self) {
        self.ops.clear();
    }

    fn __repr__(&self) -> String {
        format!("WriteBatch({} ops)", self.ops.len())
    }
}
