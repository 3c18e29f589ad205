//! The single mapping from `CoreError` to the classes of `slatedb_py.errors`. Which class,
//! message and attributes is decided by the pure `CoreError::report`; this file only builds
//! the exception.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{CoreError, ErrorClass, ErrorReport};

pyo3::import_exception!(slatedb_py.errors, DataError);
pyo3::import_exception!(slatedb_py.errors, InternalError);
pyo3::import_exception!(slatedb_py.errors, InvalidArgumentError);
pyo3::import_exception!(slatedb_py.errors, InvalidTypeError);
pyo3::import_exception!(slatedb_py.errors, MergeOperatorError);
pyo3::import_exception!(slatedb_py.errors, MissingObjectError);
pyo3::import_exception!(slatedb_py.errors, UnavailableError);
pyo3::import_exception!(slatedb_py.errors, UnsupportedFormatError);

fn class(py: Python<'_>, class: ErrorClass) -> Bound<'_, pyo3::types::PyType> {
    match class {
        ErrorClass::InvalidArgument => py.get_type::<InvalidArgumentError>(),
        ErrorClass::Internal => py.get_type::<InternalError>(),
        ErrorClass::Data => py.get_type::<DataError>(),
        ErrorClass::UnsupportedFormat => py.get_type::<UnsupportedFormatError>(),
        ErrorClass::MissingObject => py.get_type::<MissingObjectError>(),
        ErrorClass::Unavailable => py.get_type::<UnavailableError>(),
        ErrorClass::MergeOperator => py.get_type::<MergeOperatorError>(),
    }
}

fn raise(py: Python<'_>, report: &ErrorReport) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let kw = PyDict::new(py);
        if report.located {
            kw.set_item("object", report.object.as_deref())?;
            if report.class != ErrorClass::MissingObject {
                kw.set_item("offset", report.offset)?;
            }
        }
        let instance = class(py, report.class).call((report.message.as_str(),), Some(&kw))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("{} (and raising it failed: {e})", report.message))
    })
}

/// Converts a core error; `object` names the object (file) being decoded, when known.
pub fn to_py(err: CoreError, object: Option<&str>) -> PyErr {
    // A merge operator's own exception becomes the cause of the error raised for it.
    let cause = match &err {
        CoreError::Operator { cause, .. } => cause.0.clone(),
        _ => None,
    };
    let report = err.report(object);
    Python::attach(|py| {
        let e = raise(py, &report);
        if let Some(c) = cause.as_ref().and_then(|c| c.downcast_ref::<PyErr>()) {
            e.set_cause(py, Some(c.clone_ref(py)));
        }
        e
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
    if type_error {
        InvalidTypeError::new_err(message)
    } else {
        InvalidArgumentError::new_err(message)
    }
}

/// `InternalError` for a lock whose holder panicked; `what` names the state behind it.
pub fn poisoned(what: &str) -> PyErr {
    to_py(CoreError::poisoned(what), None)
}

/// Locks native state; a poisoned lock is an `InternalError`.
pub fn lock<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.lock().map_err(|_| poisoned("native state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Imports `slatedb_py.errors` from the source tree without running the package's
    /// `__init__` (which needs the built extension).
    fn with_errors_module<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
        Python::initialize();
        Python::attach(|py| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../python/slatedb_py");
            let modules = py.import("sys").and_then(|s| s.getattr("modules")).unwrap();
            if !modules.contains("slatedb_py").unwrap() {
                let pkg = pyo3::types::PyModule::new(py, "slatedb_py").unwrap();
                pkg.setattr("__path__", vec![dir]).unwrap();
                modules.set_item("slatedb_py", pkg).unwrap();
            }
            f(py)
        })
    }

    fn attr(py: Python<'_>, e: &PyErr, name: &str) -> String {
        e.value(py).getattr(name).unwrap().repr().unwrap().to_string()
    }

    #[test]
    fn each_variant_raises_its_class_with_its_attributes() {
        with_errors_module(|py| {
            let e = to_py(CoreError::corrupt(7, "bad"), Some("a.sst"));
            assert!(e.is_instance_of::<DataError>(py));
            assert_eq!(e.get_type(py).name().unwrap().to_string(), "DataError");
            assert_eq!(attr(py, &e, "object"), "'a.sst'");
            assert_eq!(attr(py, &e, "offset"), "7");
            assert_eq!(e.value(py).to_string(), "a.sst: corrupt data at offset 7: bad");

            let e = to_py(CoreError::UnsupportedVersion { offset: 4, what: "sst", version: 9, supported: "1" }, None);
            assert!(e.is_instance_of::<UnsupportedFormatError>(py));
            assert_eq!((attr(py, &e, "object"), attr(py, &e, "offset")), ("None".into(), "4".into()));

            let e = to_py(CoreError::Missing("b.sst".into()), None);
            assert!(e.is_instance_of::<MissingObjectError>(py));
            assert_eq!((attr(py, &e, "object"), attr(py, &e, "offset")), ("'b.sst'".into(), "None".into()));

            let e = to_py(CoreError::Io { object: "c".into(), message: "EIO".into() }, None);
            assert!(e.is_instance_of::<UnavailableError>(py));
            let e = to_py(CoreError::invalid("empty key"), None);
            assert!(e.is_instance_of::<InvalidArgumentError>(py));
            assert!(e.is_instance_of::<pyo3::exceptions::PyValueError>(py));
            assert!(to_py(CoreError::Pending, None).is_instance_of::<InternalError>(py));
            assert!(invalid("str key".into(), true).is_instance_of::<pyo3::exceptions::PyTypeError>(py));
        });
    }

    #[test]
    fn a_poisoned_lock_is_an_internal_error() {
        with_errors_module(|py| {
            let m = std::sync::Arc::new(Mutex::new(0));
            let m2 = m.clone();
            let _ = std::thread::spawn(move || {
                let _g = m2.lock().unwrap();
                panic!("poison it");
            })
            .join();
            let e = lock(&m).map(|_| ()).unwrap_err();
            assert!(e.is_instance_of::<InternalError>(py));
            assert!(!e.is_instance_of::<InvalidArgumentError>(py));
            assert_eq!(e.value(py).to_string(), "native state poisoned by an earlier panic");
        });
    }
}
