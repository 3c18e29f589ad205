//! Keys and values handed in whole, for the many-key calls (`put_many`, `delete_many`,
//! `get_many`, a bloom filter's `might_contain_many`): numpy arrays, Arrow arrays through the
//! Arrow PyCapsule interface (pyarrow, polars, nanoarrow, arro3: no pyarrow needed), and
//! lists (or any iterable) of bytes. Each argument crosses once into a `Column`: numpy and
//! Arrow buffers are borrowed where they lie, a list's items are copied into one buffer, so
//! a million keys cost no Python object per key afterwards.
//!
//! What each input means, item by item:
//! - numpy `S` (fixed-width bytes): numpy pads shorter items with NUL bytes and drops
//!   trailing NULs when it hands an item out (`arr[i]`); so do we, so `b"ab"` in an `S4`
//!   array is the key `b"ab"`. Keys that end in NUL bytes need a `V` array or one of the
//!   other forms;
//! - numpy `V` (void) of any width, and 2-D C-ordered `uint8` arrays (one row per item):
//!   every byte as it is;
//! - numpy arrays of objects, lists, tuples and other iterables: each item bytes-like;
//! - Arrow binary, large binary, binary view and fixed-size binary arrays, and chunked
//!   arrays or streams of them (`__arrow_c_stream__`). A null item is refused.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray, BinaryViewArray, FixedSizeBinaryArray, LargeBinaryArray};
use arrow_schema::DataType;
use bytes::Bytes;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};
use pyo3_arrow::{PyArray, PyChunkedArray};

use super::errors::invalid;
use crate::format::row::{show_key, MAX_KEY_LEN, MAX_VALUE_LEN};

pyo3::import_exception!(slatedb_py.errors, BulkItemError);
pyo3::import_exception!(slatedb_py.errors, BulkItemTypeError);

/// One chunk of an Arrow column, by its binary layout.
enum Chunk {
    Binary(BinaryArray),
    Large(LargeBinaryArray),
    View(BinaryViewArray),
    Fixed(FixedSizeBinaryArray),
}

impl Chunk {
    fn of(array: &ArrayRef) -> Option<Chunk> {
        Some(match array.data_type() {
            DataType::Binary => Chunk::Binary(array.as_binary::<i32>().clone()),
            DataType::LargeBinary => Chunk::Large(array.as_binary::<i64>().clone()),
            DataType::BinaryView => Chunk::View(array.as_binary_view().clone()),
            DataType::FixedSizeBinary(_) => Chunk::Fixed(array.as_fixed_size_binary().clone()),
            _ => return None,
        })
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            Chunk::Binary(a) => (!a.is_null(i)).then(|| a.value(i)),
            Chunk::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Chunk::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            Chunk::Fixed(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

enum Items {
    /// Items of `width` bytes back to back; with `strip`, trailing NUL bytes are numpy's
    /// padding of an `S` item, not part of it.
    Fixed { data: Bytes, width: usize, strip: bool },
    /// Item i ends at `ends[i]` in `data` (a list's items, copied once).
    Packed { data: Vec<u8>, ends: Vec<usize> },
    /// Arrow chunks; `starts[c]` is the index of chunk c's first item.
    Arrow { chunks: Vec<Chunk>, starts: Vec<usize> },
}

/// The items of one argument of a many-key call, read once (module docs).
pub struct Column {
    items: Items,
    len: usize,
    /// The first item that is not bytes-like, and its type's name: items from there on are
    /// not read, and checking reaches it as an error.
    bad: Option<(usize, String)>,
}

/// What the items of a column are, for the checks and the messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Key,
    Value,
    /// A key looked up in a filter: any bytes (no length limits), only nulls and non-bytes
    /// refused.
    Probe,
}

impl Role {
    fn noun(self) -> &'static str {
        if self == Role::Value {
            "value"
        } else {
            "key"
        }
    }
}

static ASCONTIGUOUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

impl Column {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Item `i` (< len, and before any bad item); None for an Arrow null.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match &self.items {
            Items::Fixed { data, width, strip } => {
                let item = &data[i * width..(i + 1) * width];
                if *strip {
                    Some(&item[..item.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)])
                } else {
                    Some(item)
                }
            }
            Items::Packed { data, ends } => Some(&data[if i == 0 { 0 } else { ends[i - 1] }..ends[i]]),
            Items::Arrow { chunks, starts } => {
                let c = if chunks.len() == 1 { 0 } else { starts.partition_point(|&s| s <= i) - 1 };
                chunks[c].get(i - starts[c])
            }
        }
    }

    /// Reads `obj` (module docs); `what` names the argument in errors ("keys", "values").
    pub fn parse(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Column> {
        let py = obj.py();
        if let Ok(list) = obj.cast::<PyList>() {
            return Self::objects(list.iter().map(Ok), list.len());
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            return Self::objects(t.iter().map(Ok), t.len());
        }
        let single = obj.is_instance_of::<PyBytes>()
            || obj.is_instance_of::<PyByteArray>()
            || obj.is_instance_of::<PyMemoryView>()
            || obj.is_instance_of::<PyString>();
        if !single {
            if obj.hasattr(intern!(py, "__arrow_c_array__"))? {
                let a: PyArray = obj.extract()?;
                return Self::arrow(std::slice::from_ref(a.array()), a.field().data_type(), what);
            }
            if obj.hasattr(intern!(py, "__arrow_c_stream__"))? {
                let c: PyChunkedArray = obj.extract()?;
                return Self::arrow(c.chunks(), c.data_type(), what);
            }
            if obj.hasattr(intern!(py, "__array_interface__"))? && obj.hasattr(intern!(py, "dtype"))? {
                return Self::numpy(obj, what);
            }
            if let Ok(it) = obj.try_iter() {
                return Self::objects(it, 0);
            }
        }
        Err(invalid(format!("{what} must be an iterable of bytes, not {}", type_name(obj)), true))
    }

    fn objects<'py>(items: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>, hint: usize) -> PyResult<Column> {
        let mut data = Vec::new();
        let mut ends = Vec::with_capacity(hint);
        let mut bad = None;
        let mut len = 0;
        for item in items {
            let item = item?;
            len += 1;
            if bad.is_some() {
                continue; // counted only: the lengths are compared before the bad item is named
            }
            if let Ok(b) = item.cast::<PyBytes>() {
                data.extend_from_slice(b.as_bytes());
            } else if let Ok(b) = item.cast::<PyByteArray>() {
                data.extend_from_slice(&b.to_vec());
            } else if item.is_instance_of::<PyMemoryView>() {
                let copied = item.py().import("builtins")?.getattr("bytes")?.call1((&item,))?;
                data.extend_from_slice(copied.cast::<PyBytes>()?.as_bytes());
            } else {
                bad = Some((len - 1, type_name(&item)));
                continue;
            }
            ends.push(data.len());
        }
        Ok(Column { items: Items::Packed { data, ends }, len, bad })
    }

    fn arrow(arrays: &[ArrayRef], dtype: &DataType, what: &str) -> PyResult<Column> {
        let refuse = || {
            invalid(
                format!(
                    "{what} must be an Arrow binary, large_binary, binary_view or fixed_size_binary array, not one of \
                     type {dtype} (cast it to binary)"
                ),
                true,
            )
        };
        if !matches!(
            dtype,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_)
        ) {
            return Err(refuse());
        }
        let mut chunks = Vec::with_capacity(arrays.len());
        let mut starts = Vec::with_capacity(arrays.len());
        let mut len = 0;
        for a in arrays {
            chunks.push(Chunk::of(a).ok_or_else(refuse)?);
            starts.push(len);
            len += a.len();
        }
        Ok(Column { items: Items::Arrow { chunks, starts }, len, bad: None })
    }

    fn numpy(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Column> {
        let py = obj.py();
        let dtype = obj.getattr(intern!(py, "dtype"))?;
        let kind: String = dtype.getattr(intern!(py, "kind"))?.extract()?;
        let itemsize: usize = dtype.getattr(intern!(py, "itemsize"))?.extract()?;
        let shape: Vec<usize> = obj.getattr(intern!(py, "shape"))?.extract()?;
        let (len, width, strip) = match (kind.as_str(), shape.as_slice()) {
            ("S", &[n]) => (n, itemsize, true),
            ("V", &[n]) => (n, itemsize, false),
            ("u", &[n, w]) if itemsize == 1 => (n, w, false),
            ("O", &[n]) => return Self::objects(obj.try_iter()?, n),
            _ => {
                return Err(invalid(
                    format!(
                        "{what} must be a 1-D numpy array of dtype S (bytes), V (void) or object, or a 2-D uint8 \
                         array (one row per item), not an array of dtype {} and shape {:?}",
                        dtype.str()?,
                        shape
                    ),
                    true,
                ))
            }
        };
        if len == 0 || width == 0 {
            // No bytes to borrow (and an empty buffer may have no address to borrow from).
            return Ok(Column { items: Items::Fixed { data: Bytes::new(), width, strip }, len, bad: None });
        }
        // One flat run of bytes, borrowed (copied only when the array is not C-ordered).
        let contiguous = ASCONTIGUOUS.get_or_try_init(py, || {
            py.import("numpy").and_then(|m| m.getattr("ascontiguousarray")).map(Bound::unbind)
        })?;
        let flat = contiguous.bind(py).call1((obj,))?.call_method1("view", ("u1",))?.call_method1("reshape", (-1,))?;
        let data: pyo3_bytes::PyBytes = flat.extract()?;
        Ok(Column { items: Items::Fixed { data: data.into_inner(), width, strip }, len, bad: None })
    }

    /// The length of item `i` once checked as `role`; `what` names the argument and `key`
    /// is the pair's key (for a value) in errors.
    pub fn check(&self, i: usize, role: Role, what: &str, key: Option<&[u8]>) -> PyResult<usize> {
        let noun = role.noun();
        if let Some((at, tname)) = &self.bad {
            if *at == i {
                let msg = format!("{what}[{i}]: {noun} must be bytes, not {tname}");
                return Err(item_error(true, what, i, key, msg));
            }
        }
        let Some(item) = self.get(i) else {
            return Err(item_error(false, what, i, key, format!("{what}[{i}]: {noun} is null")));
        };
        let n = item.len();
        let key = if role == Role::Value { key } else { Some(item) };
        match role {
            Role::Key if n == 0 => Err(item_error(false, what, i, key, format!("{what}[{i}]: key must not be empty"))),
            Role::Key if n > MAX_KEY_LEN => Err(item_error(
                false,
                what,
                i,
                key,
                format!("{what}[{i}]: key of {n} bytes is longer than the limit of {MAX_KEY_LEN} bytes"),
            )),
            Role::Value if n > MAX_VALUE_LEN => {
                let shown = key.map(show_key).unwrap_or_default();
                let msg = format!(
                    "{what}[{i}]: value of {n} bytes for key {shown} is longer than the limit of {MAX_VALUE_LEN} bytes"
                );
                Err(item_error(false, what, i, key, msg))
            }
            _ => Ok(n),
        }
    }

    /// Checks every item as `role`; returns their bytes in all.
    pub fn check_all(&self, role: Role, what: &str) -> PyResult<u64> {
        let mut total = 0;
        for i in 0..self.len {
            total += self.check(i, role, what, None)? as u64;
        }
        Ok(total)
    }
}

/// A `BulkItemError` (a `BulkItemTypeError` when `type_error`) for item `index` of `what`.
fn item_error(type_error: bool, what: &str, index: usize, key: Option<&[u8]>, message: String) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let cls = if type_error { py.get_type::<BulkItemTypeError>() } else { py.get_type::<BulkItemError>() };
            let kw = PyDict::new(py);
            kw.set_item("argument", what)?;
            kw.set_item("index", index)?;
            kw.set_item("key", key.map(|k| PyBytes::new(py, k)))?;
            Ok(PyErr::from_value(cls.call((message,), Some(&kw))?))
        };
        build().unwrap_or_else(|e| e)
    })
}

/// `test(key)` for every key of `keys` (any input `Column::parse` reads; any bytes, empty
/// too), as a numpy bool array: the many-key probes of bloom filters and SSTs.
pub fn probe_many<'py>(
    keys: &Bound<'py, PyAny>,
    test: impl Fn(&[u8]) -> bool,
) -> PyResult<Bound<'py, numpy::PyArray1<bool>>> {
    let col = Column::parse(keys, "keys")?;
    col.check_all(Role::Probe, "keys")?;
    let answers: Vec<bool> = (0..col.len()).map(|i| test(col.get(i).unwrap_or_default())).collect();
    Ok(numpy::PyArray1::from_vec(keys.py(), answers))
}
