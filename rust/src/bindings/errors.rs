//! The single mapping from `CoreError` to the classes of `slatedb_py.errors`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::CoreError;

fn raise(py: Python<'_>, class: &str, message: String, kwargs: &[(&str, Option<Py<PyAny>>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("slatedb_py.errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        for (k, v) in kwargs {
            kw.set_item(*k, v)?;
        }
        let instance = cls.call((message.clone(),), Some(&kw))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{message} (and raising it failed: {e})")))
}

/// Converts a core error; `object` names the object (file) being decoded, when known. An
/// error that names its own object (`CoreError::InObject`) keeps that name.
pub fn to_py(err: CoreError, object: Option<&str>) -> PyErr {
    let (own, err) = err.split_object();
    let object = own.as_deref().or(object);
    Python::attach(|py| {
        let obj = object.map(|o| o.into_pyobject(py).map(|s| s.into_any().unbind()).ok()).flatten();
        let prefix = object.map(|o| format!("{o}: ")).unwrap_or_default();
        match &err {
            CoreError::Invalid(m) => raise(py, "InvalidArgumentError", m.clone(), &[]),
            CoreError::Pending => {
                raise(py, "InternalError", "a streaming merge stopped for input outside a compaction job".into(), &[])
            }
            CoreError::UnsupportedVersion { offset, .. } => {
                let off = offset.into_pyobject(py).ok().map(|o| o.into_any().unbind());
                raise(py, "UnsupportedFormatError", format!("{prefix}{err}"), &[("object", obj), ("offset", off)])
            }
            CoreError::Corrupt { offset, .. } | CoreError::Checksum { offset, .. } => {
                let off = offset.into_pyobject(py).ok().map(|o| o.into_any().unbind());
                raise(py, "DataError", format!("{prefix}{err}"), &[("object", obj), ("offset", off)])
            }
            CoreError::Missing(o) => raise(
                py,
                "MissingObjectError",
                format!("{err}"),
                &[("object", o.clone().into_pyobject(py).ok().map(|s| s.into_any().unbind()))],
            ),
            CoreError::Io { .. } => raise(py, "UnavailableError", format!("{err}"), &[]),
            // `split_object` unwrapped it; a nested one would be a bug, still a data error.
            CoreError::InObject { .. } => {
                raise(py, "DataError", format!("{prefix}{err}"), &[("object", obj), ("offset", None)])
            }
        }
    })
}

pub trait IntoPyResult<T> {
    fn py_err(self, object: Option<&str>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, CoreError> {
    fn py_err(self, object: Option<&str>) -> PyResult<T> {
        self.map_err(|e| to_py(e, object))
    }
}

/// An invalid-argument error raised as `slatedb_py.errors.InvalidArgumentError`, or as
/// `InvalidTypeError` (also a `TypeError`) when `type_error`.
pub fn invalid(message: String, type_error: bool) -> PyErr {
    Python::attach(|py| raise(py, if type_error { "InvalidTypeError" } else { "InvalidArgumentError" }, message, &[]))
}
