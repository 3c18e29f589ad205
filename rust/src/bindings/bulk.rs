//! `Bulk`: the keys (and values) of a many-key call, read once from numpy, Arrow or lists
//! (`columns.rs`) and checked in one pass; the writes and reads then take them natively.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::columns::{Column, Role};
use super::errors::{invalid, IntoPyResult};
use super::sst::{compacted_options, PySstFile};
use crate::bulk::Items;
use crate::error::CoreResult;
use crate::format::row::{RowKind, RowRef};
use crate::sst::{SstBuilder, SstFile};

/// Room an ingested SST reserves beyond its target size: its last block, filter and index.
const SST_SLACK: usize = 4 << 20;

/// Buffers `Recycled` keeps at most.
const KEPT_BUFFERS: usize = 4;

/// Buffers of SSTs `encode_sst` handed out, given back when Python lets go of them (once
/// uploaded), for the next SSTs: tens of MiB of fresh memory per SST cost as much in page
/// faults (each page mapped and zeroed) as encoding the rows. An ingest holds a few SSTs at
/// once (some encoding, one uploading); as many buffers are kept.
#[derive(Default)]
struct Recycled(Mutex<Vec<Vec<u8>>>);

impl Recycled {
    fn take(&self) -> Vec<u8> {
        self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default()
    }
}

/// An SST's bytes on loan to Python: its buffer goes back to `home` when dropped.
struct Loaned {
    data: Vec<u8>,
    home: Arc<Recycled>,
}

impl AsRef<[u8]> for Loaned {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Loaned {
    fn drop(&mut self) {
        if let Ok(mut kept) = self.home.0.lock() {
            if kept.len() < KEPT_BUFFERS {
                kept.push(std::mem::take(&mut self.data));
            }
        }
    }
}

/// The keys (and, for puts, values) of a many-key call: `Bulk(keys)` or `Bulk(keys, values)`.
/// Every item is checked when it is made, pair by pair in index order (the key, then its
/// value), so the error names the first bad index; nothing is applied after an error.
#[pyclass(frozen, module = "slatedb_py._native", name = "Bulk")]
pub struct PyBulk {
    pub(super) keys: Column,
    pub(super) values: Option<Column>,
    /// Bytes of keys and values of each op, summed: `sizes[i]` is ops `..i`'s.
    sizes: Vec<u64>,
    recycled: Arc<Recycled>,
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
        Ok(PyBulk { keys: k, values: v, sizes, recycled: Arc::default() })
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

    /// True when the keys are strictly ascending (what an ingest needs: SST order, no key
    /// twice).
    fn ascending(&self, py: Python<'_>) -> bool {
        let k = &self.keys;
        py.detach(|| (1..k.len()).all(|i| k.item(i - 1) < k.item(i)))
    }

    /// Ops `lo..hi` of an ascending bulk (`ascending`) as one SST: puts (or deletes, without
    /// values) at `seq`, created at `create_ts`, puts expiring at `expire_ts`. Returns the
    /// SST's bytes and the SST opened from them. Encoded without the GIL, so several
    /// threads encode several ranges at once.
    #[pyo3(signature = (lo, hi, seq, create_ts, expire_ts, block_size, compression, bloom_bits_per_key, min_filter_keys, block_alignment))]
    #[allow(clippy::too_many_arguments, reason = "the rows' shared fields and the SST options, as they are")]
    fn encode_sst(
        &self,
        py: Python<'_>,
        lo: usize,
        hi: usize,
        seq: u64,
        create_ts: i64,
        expire_ts: Option<i64>,
        block_size: usize,
        compression: Option<&str>,
        bloom_bits_per_key: u32,
        min_filter_keys: u64,
        block_alignment: bool,
    ) -> PyResult<(pyo3_bytes::PyBytes, PySstFile)> {
        let opts = compacted_options(block_size, compression, bloom_bits_per_key, min_filter_keys, block_alignment)?;
        if lo >= hi || hi > self.len() {
            return Err(invalid(format!("ops {lo}..{hi} of a bulk of {}: nothing to encode", self.len()), false));
        }
        let (data, file) = py
            .detach(|| -> CoreResult<(Vec<u8>, SstFile)> {
                let mut b = SstBuilder::new(opts)?.with_buffer(self.recycled.take());
                let raw = (self.sizes[hi] - self.sizes[lo]) as usize;
                b.reserve(raw + raw / 8 + SST_SLACK);
                for at in lo..hi {
                    let key = self.keys.item(at);
                    let row = match &self.values {
                        Some(v) => RowRef {
                            key,
                            value: v.item(at),
                            seq,
                            kind: RowKind::Value,
                            expire_ts,
                            create_ts: Some(create_ts),
                        },
                        None => RowRef {
                            key,
                            value: &[],
                            seq,
                            kind: RowKind::Tombstone,
                            expire_ts: None,
                            create_ts: Some(create_ts),
                        },
                    };
                    b.add_ref(row)?;
                }
                let t = b.finish_tail()?;
                let file = t.open_meta()?;
                Ok((t.rest, file))
            })
            .py_err(None)?;
        let data = Bytes::from_owner(Loaned { data, home: self.recycled.clone() });
        Ok((pyo3_bytes::PyBytes::new(data), PySstFile { file, name: None }))
    }

    fn __repr__(&self) -> String {
        let what = if self.values.is_some() { "pairs" } else { "keys" };
        format!("Bulk({} {what}, {} bytes)", self.len(), self.total_bytes())
    }
}
