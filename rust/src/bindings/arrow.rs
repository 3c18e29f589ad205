//! Scans out as Arrow: `RecordBatch` (columns `key: binary`, `value: binary`, filled from a
//! page of rows straight into Arrow's offset and value buffers, no Python object per row),
//! exported through the Arrow PyCapsule interface, and `arrow_stream`, the C stream over a
//! Python iterator's batches that pyarrow, polars and DuckDB read.

use std::sync::{Arc, OnceLock};

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch, StructArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyList, PyTuple};
use pyo3_arrow::ffi::{to_array_pycapsules, to_schema_pycapsule, to_stream_pycapsule, ArrayIterator, ArrayReader};

use super::errors::invalid;
use crate::scan::ColumnPage;

/// `key: binary, value: binary`, neither nullable: every batch a scan makes.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::Binary, false),
                Field::new("value", DataType::Binary, false),
            ]))
        })
        .clone()
}

/// The struct field a batch travels as in the C data interface.
fn struct_field() -> FieldRef {
    Arc::new(Field::new_struct("", schema().fields().clone(), false))
}

/// One binary column from `n` items: offsets and bytes laid down in one pass each.
fn binary<'a>(n: usize, items: impl Iterator<Item = &'a [u8]> + Clone) -> Result<ArrayRef, String> {
    let total: usize = items.clone().map(<[u8]>::len).sum();
    if i32::try_from(total).is_err() {
        return Err(format!(
            "{total} bytes in one column of a batch: more than an Arrow binary array holds (2 GiB); ask for smaller \
             batches (batch_bytes)"
        ));
    }
    let mut offsets = Vec::with_capacity(n + 1);
    let mut data = Vec::with_capacity(total);
    offsets.push(0i32);
    for item in items {
        data.extend_from_slice(item);
        offsets.push(data.len() as i32);
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(BinaryArray::new(offsets, Buffer::from_vec(data), None)))
}

/// A batch of a columnar scan's page: its vectors become the Arrow buffers, no copy.
pub fn columns_batch(page: ColumnPage) -> Result<RecordBatch, String> {
    let column = |offsets: Vec<i32>, data: Vec<u8>| -> ArrayRef {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        Arc::new(BinaryArray::new(offsets, Buffer::from_vec(data), None))
    };
    let keys = column(page.key_offsets, page.keys);
    let values = column(page.value_offsets, page.values);
    RecordBatch::try_new(schema(), vec![keys, values]).map_err(|e| e.to_string())
}

fn arrow_err(e: impl std::fmt::Display) -> PyErr {
    invalid(e.to_string(), false)
}

/// Arrow record batch of a scan: `key: binary, value: binary`. It speaks the Arrow
/// PyCapsule interface (`__arrow_c_array__`, `__arrow_c_stream__`), so `pyarrow.record_batch
/// (b)`, `polars.DataFrame(b)` or DuckDB take it without copying.
#[pyclass(frozen, module = "slatedb_py._native", name = "RecordBatch")]
pub struct PyRecordBatch {
    pub(super) batch: RecordBatch,
}

impl PyRecordBatch {
    fn binary_column(&self, i: usize) -> &BinaryArray {
        self.batch.column(i).as_any().downcast_ref::<BinaryArray>().expect("the schema's binary columns")
    }
}

#[pymethods]
impl PyRecordBatch {
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    #[getter]
    fn num_columns(&self) -> usize {
        self.batch.num_columns()
    }

    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Bytes of its buffers.
    #[getter]
    fn nbytes(&self) -> usize {
        self.batch.get_array_memory_size()
    }

    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }

    /// Row `i` (negative counts from the end) as `(key, value)`.
    fn row<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyTuple>> {
        let n = self.batch.num_rows() as isize;
        let at = if i < 0 { i + n } else { i };
        if !(0..n).contains(&at) {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!("row {i} of a batch of {n} rows")));
        }
        let at = at as usize;
        let (k, v) = (self.binary_column(0).value(at), self.binary_column(1).value(at));
        PyTuple::new(py, [PyBytes::new(py, k), PyBytes::new(py, v)])
    }

    /// The rows as `(key, value)` pairs.
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (k, v) = (self.binary_column(0), self.binary_column(1));
        let rows: PyResult<Vec<_>> = (0..k.len())
            .map(|i| PyTuple::new(py, [PyBytes::new(py, k.value(i)), PyBytes::new(py, v.value(i))]))
            .collect();
        PyList::new(py, rows?)
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        Ok(to_schema_pycapsule(py, self.batch.schema_ref().as_ref())?)
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let array = StructArray::from(self.batch.clone());
        Ok(to_array_pycapsules(py, struct_field(), &array, requested_schema)?)
    }

    /// This batch alone as an Arrow stream.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let one: ArrayRef = Arc::new(StructArray::from(self.batch.clone()));
        let reader = ArrayIterator::new(vec![Ok::<ArrayRef, ArrowError>(one)], struct_field());
        Ok(to_stream_pycapsule(py, Box::new(reader), requested_schema)?)
    }

    fn __repr__(&self) -> String {
        format!("RecordBatch(key: binary, value: binary; {} rows)", self.batch.num_rows())
    }
}

/// A batch of `rows`, `(key, value)` pairs of bytes (an iterator's rows already in Python).
#[pyfunction]
pub fn record_batch(rows: &Bound<'_, PyAny>) -> PyResult<PyRecordBatch> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut values: Vec<Vec<u8>> = Vec::new();
    for row in rows.try_iter()? {
        let (k, v): (Vec<u8>, Vec<u8>) = row?.extract()?;
        keys.push(k);
        values.push(v);
    }
    let n = keys.len();
    let k = binary(n, keys.iter().map(Vec::as_slice)).map_err(arrow_err)?;
    let v = binary(n, values.iter().map(Vec::as_slice)).map_err(arrow_err)?;
    Ok(PyRecordBatch { batch: RecordBatch::try_new(schema(), vec![k, v]).map_err(arrow_err)? })
}

/// The batches `next()` returns (a `RecordBatch`, or None at the end), pulled by whoever
/// reads the stream, from any thread.
struct PyBatches {
    next: Option<Py<PyAny>>,
}

impl Iterator for PyBatches {
    type Item = Result<ArrayRef, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next.as_ref()?;
        let got = Python::attach(|py| -> PyResult<Option<RecordBatch>> {
            let b = next.bind(py).call0()?;
            if b.is_none() {
                return Ok(None);
            }
            let b = b
                .cast::<PyRecordBatch>()
                .map_err(|_| invalid("a stream's batch must be a RecordBatch".into(), true))?;
            Ok(Some(b.get().batch.clone()))
        });
        match got {
            Ok(Some(b)) => Some(Ok(Arc::new(StructArray::from(b)) as ArrayRef)),
            Ok(None) => {
                self.next = None;
                None
            }
            Err(e) => {
                self.next = None;
                Some(Err(ArrowError::ExternalError(Box::new(e))))
            }
        }
    }
}

impl ArrayReader for PyBatches {
    fn field(&self) -> FieldRef {
        struct_field()
    }
}

/// An Arrow C stream (a PyCapsule) of the batches `next()` returns until it returns None.
#[pyfunction]
#[pyo3(signature = (next, requested_schema = None))]
pub fn arrow_stream<'py>(
    py: Python<'py>,
    next: Py<PyAny>,
    requested_schema: Option<Bound<'py, PyCapsule>>,
) -> PyResult<Bound<'py, PyCapsule>> {
    Ok(to_stream_pycapsule(py, Box::new(PyBatches { next: Some(next) }), requested_schema)?)
}
