//! Merge operators seen from Python: the built-ins (`slatedb_py.merge.Concat`, `AddU64`,
//! `Max`, subclasses of `BuiltinOperator`) fold natively; any other callable
//! `(key, existing | None, operand) -> bytes` is called once per operand, with the GIL. A
//! `MergeOperator` wraps either once, for the engine to hand to reads, batches and
//! compactions.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::{invalid, IntoPyResult};
use crate::error::{CoreError, CoreResult};
use crate::operator::{Builtin, Cause, MergeOperator, Operator};

#[pyclass(module = "slatedb_py", name = "BuiltinOperator", subclass, frozen)]
pub struct PyBuiltin {
    op: Builtin,
}

fn builtin_named(name: &str) -> PyResult<Builtin> {
    match name {
        "concat" => Ok(Builtin::Concat),
        "add_u64" => Ok(Builtin::AddU64),
        "max" => Ok(Builtin::Max),
        other => Err(invalid(format!("no built-in merge operator {other:?} (concat, add_u64, max)"), false)),
    }
}

fn builtin_name(op: Builtin) -> &'static str {
    match op {
        Builtin::Concat => "concat",
        Builtin::AddU64 => "add_u64",
        Builtin::Max => "max",
    }
}

#[pymethods]
impl PyBuiltin {
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(PyBuiltin { op: builtin_named(name)? })
    }

    #[getter]
    fn name(&self) -> &'static str {
        builtin_name(self.op)
    }

    /// The operator as a plain callable: `existing` with `operand` applied.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        existing: Option<&[u8]>,
        operand: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.op.fold(key, existing, &[Bytes::copy_from_slice(operand)]).py_err(None)?;
        Ok(PyBytes::new(py, &out))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyBuiltin>().is_ok_and(|o| o.get().op == self.op)
    }

    fn __hash__(&self) -> u64 {
        self.op as u64
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!("{}()", slf.get_type().name()?))
    }
}

/// A Python callable as an operator. Its exception is kept whole, for the error the read or
/// compaction raises to chain.
struct Callable {
    f: Py<PyAny>,
}

impl MergeOperator for Callable {
    fn fold(&self, key: &[u8], existing: Option<&[u8]>, operands: &[Bytes]) -> CoreResult<Bytes> {
        Python::attach(|py| {
            let k = PyBytes::new(py, key);
            let mut acc: Option<Bound<'_, PyBytes>> = existing.map(|e| PyBytes::new(py, e));
            for operand in operands {
                let out = self.f.call1(py, (&k, acc.as_ref(), PyBytes::new(py, operand))).map_err(|e| {
                    let message = format!(
                        "the merge operator raised {}",
                        e.get_type(py).name().map_or_else(|_| "an exception".into(), |n| n.to_string())
                    );
                    CoreError::Operator {
                        key: crate::format::row::show_key(key),
                        message,
                        cause: Cause(Some(Arc::new(e))),
                    }
                })?;
                let bound = out.into_bound(py);
                let Ok(b) = bound.cast_into::<PyBytes>() else {
                    return Err(CoreError::operator(key, "the merge operator must return bytes"));
                };
                acc = Some(b);
            }
            acc.map(|b| Bytes::copy_from_slice(b.as_bytes()))
                .ok_or_else(|| CoreError::Internal("a fold of no operands".into()))
        })
    }
}

/// The operator an engine folds with; built once from what the options name.
#[pyclass(module = "slatedb_py", name = "MergeOperator", frozen)]
pub struct PyOperator {
    pub inner: Operator,
    source: Py<PyAny>,
}

#[pymethods]
impl PyOperator {
    #[new]
    fn new(op: &Bound<'_, PyAny>) -> PyResult<Self> {
        let inner: Operator = if let Ok(b) = op.cast::<PyBuiltin>() {
            Arc::new(b.get().op)
        } else if op.is_callable() {
            Arc::new(Callable { f: op.clone().unbind() })
        } else {
            let tname = op.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            return Err(invalid(
                format!("merge_operator must be a callable (key, existing, operand) -> bytes, not {tname}"),
                true,
            ));
        };
        Ok(PyOperator { inner, source: op.clone().unbind() })
    }

    /// What it was built from.
    #[getter]
    fn source(&self, py: Python<'_>) -> Py<PyAny> {
        self.source.clone_ref(py)
    }

    /// Folds `operands` (oldest first) onto `existing`, as reads do.
    fn fold<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if operands.is_empty() {
            return Err(invalid("fold needs at least one operand".into(), false));
        }
        let ops: Vec<Bytes> = operands.into_iter().map(Bytes::from).collect();
        let out = self.inner.fold(key, existing, &ops).py_err(None)?;
        Ok(PyBytes::new(py, &out))
    }
}

/// The engine operator of an optional `MergeOperator` argument.
pub fn engine_op(op: Option<&Bound<'_, PyOperator>>) -> Option<Operator> {
    op.map(|o| o.get().inner.clone())
}
