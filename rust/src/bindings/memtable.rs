//! The native memtable used by the engine (`slatedb_py.db`).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::{lock, IntoPyResult};
use super::pieces::PySstPieces;
use super::row::{PyRow, PyRowList};
use crate::batch::PreparedBatch;
use crate::error::CoreError;
use crate::flush::L0Pieces;
use crate::format::codec::Compression;
use crate::format::row::RowKind;
use crate::memtable::{wal_rows_after, Memtable, WalRows};
use crate::sst::SstOptions;

#[pyclass(frozen, module = "slatedb_py._native", name = "Memtable")]
pub struct PyMemtable {
    inner: Arc<Mutex<Memtable>>,
    /// Memory at which writes report the memtable full (see `fill`).
    memory_limit: usize,
}

/// What a write reports: the encoded-size estimate, or `usize::MAX` once the memtable holds
/// `memory_limit` bytes of memory, so one comparison with the L0 size tells the writer to
/// freeze it.
fn fill(m: &Memtable, memory_limit: usize) -> usize {
    if m.memory_bytes() >= memory_limit {
        usize::MAX
    } else {
        m.size_bytes()
    }
}

impl PyMemtable {
    /// The memtable itself, for the reads that search it (`read::Tree`).
    pub fn shared(&self) -> Arc<Mutex<Memtable>> {
        self.inner.clone()
    }
}

#[pymethods]
impl PyMemtable {
    #[new]
    #[pyo3(signature = (memory_limit = usize::MAX))]
    fn new(memory_limit: usize) -> Self {
        PyMemtable { inner: Arc::new(Mutex::new(Memtable::new())), memory_limit }
    }

    /// Applies a `WriteBatch` with one `seq`; a later op on a key replaces an earlier one.
    /// Returns its fill (`fill`).
    #[pyo3(signature = (batch, seq, create_ts, default_ttl_ms = None, merge_operator = None))]
    fn apply(
        &self,
        batch: &Bound<'_, super::batch::PyWriteBatch>,
        seq: u64,
        create_ts: i64,
        default_ttl_ms: Option<i64>,
        merge_operator: Option<&Bound<'_, super::operator::PyOperator>>,
    ) -> PyResult<usize> {
        let b = batch.borrow();
        let op = super::operator::engine_op(merge_operator);
        // Prepared before the lock is taken: folding merge operands may call Python code.
        let prepared = PreparedBatch::new(&b.batch, seq, create_ts, default_ttl_ms, op.as_ref()).py_err(None)?;
        let mut m = lock(&self.inner)?;
        m.apply_batch(&prepared);
        Ok(fill(&m, self.memory_limit))
    }

    /// Ops `lo..hi` of a bulk write (`Bulk`) with one `seq`: puts expiring at `expire_ts`,
    /// or deletes when the bulk holds keys alone; a later op on a key replaces an earlier
    /// one. Returns its fill (`fill`).
    #[pyo3(signature = (bulk, lo, hi, seq, create_ts, expire_ts = None))]
    #[allow(clippy::too_many_arguments, reason = "a range of the bulk and the fields its rows share")]
    fn apply_bulk(
        &self,
        py: Python<'_>,
        bulk: &Bound<'_, super::bulk::PyBulk>,
        lo: usize,
        hi: usize,
        seq: u64,
        create_ts: i64,
        expire_ts: Option<i64>,
    ) -> PyResult<usize> {
        let b = bulk.get();
        let range = b.range(lo, Some(hi));
        // Copying the items into the arena needs no Python: other threads run meanwhile.
        py.detach(|| {
            let mut m = lock(&self.inner)?;
            m.apply_bulk(&b.keys, b.value_items(), range, seq, create_ts, expire_ts);
            Ok(fill(&m, self.memory_limit))
        })
    }

    /// One put (value) or delete (value None), or with `merge` one merge operand (value):
    /// the hot path, one crossing.
    #[pyo3(signature = (key, value, seq, create_ts, expire_ts = None, merge = false))]
    #[allow(clippy::too_many_arguments, reason = "a row's fields, passed as they are")]
    fn put(
        &self,
        key: &Bound<'_, PyBytes>,
        value: Option<&Bound<'_, PyBytes>>,
        seq: u64,
        create_ts: i64,
        expire_ts: Option<i64>,
        merge: bool,
    ) -> PyResult<usize> {
        let mut m = lock(&self.inner)?;
        match value {
            None => m.insert_parts(key.as_bytes(), &[], seq, RowKind::Tombstone, None, Some(create_ts), true),
            Some(v) => {
                let kind = if merge { RowKind::Merge } else { RowKind::Value };
                m.insert_parts(key.as_bytes(), v.as_bytes(), seq, kind, expire_ts, Some(create_ts), true);
            }
        }
        Ok(fill(&m, self.memory_limit))
    }

    /// Replays one WAL object: its rows with seq > `after_seq` join the memtable (not queued
    /// for the WAL again). A fence (0 bytes, or an old-style empty SST) adds nothing. With
    /// `upto_ms`, only the rows before the first one written after it, which ends the replay;
    /// rows without a write time get `upto_ms` (`wal_rows_after`). Returns `(rows added,
    /// highest seq taken or after_seq, whether the replay ended)`.
    #[pyo3(signature = (data, after_seq, name = None, upto_ms = None))]
    fn replay_wal(
        &self,
        py: Python<'_>,
        data: pyo3_bytes::PyBytes,
        after_seq: u64,
        name: Option<&str>,
        upto_ms: Option<i64>,
    ) -> PyResult<(usize, u64, bool)> {
        let bytes = data.into_inner();
        let (rows, ended) = py.detach(|| wal_rows_after(bytes, after_seq, upto_ms)).py_err(name)?;
        let (n, max_seq) = lock(&self.inner)?.replay(&rows, after_seq);
        Ok((n, max_seq, ended))
    }

    /// The newest version of `key` with seq <= snapshot_seq, or None.
    fn get(&self, py: Python<'_>, key: &Bound<'_, PyBytes>, snapshot_seq: u64) -> PyResult<Option<PyRow>> {
        let m = lock(&self.inner)?;
        Ok(m.get(key.as_bytes(), snapshot_seq).map(|r| PyRow::from_row(py, &r)))
    }

    #[pyo3(signature = (start = None, end = None))]
    fn range(&self, start: Option<&Bound<'_, PyBytes>>, end: Option<&Bound<'_, PyBytes>>) -> PyResult<PyRowList> {
        let m = lock(&self.inner)?;
        Ok(PyRowList {
            rows: m.range(
                start.map(pyo3::types::PyBytesMethods::as_bytes),
                end.map(pyo3::types::PyBytesMethods::as_bytes),
            ),
        })
    }

    /// The rows an L0 SST needs (rows expired at `now` become tombstones; with
    /// `retain_seq`, also every older version a snapshot at or after it reads), encoded as
    /// they are iterated: pieces of at least `piece_size` bytes (`SstPieces`); None when
    /// empty. With `merge_operator`, operands fold as a compaction folds them. The memtable
    /// must not change while the pieces are taken (it is frozen).
    #[pyo3(signature = (block_size, compression, bloom_bits_per_key, min_filter_keys, piece_size, now = None, retain_seq = None, merge_operator = None, block_alignment = false))]
    #[allow(clippy::too_many_arguments, reason = "mirrors the Python method's keyword arguments")]
    fn encode_l0(
        &self,
        py: Python<'_>,
        block_size: usize,
        compression: Option<&str>,
        bloom_bits_per_key: u32,
        min_filter_keys: u64,
        piece_size: usize,
        now: Option<i64>,
        retain_seq: Option<u64>,
        merge_operator: Option<&Bound<'_, super::operator::PyOperator>>,
        block_alignment: bool,
    ) -> PyResult<Option<PySstPieces>> {
        let opts = super::sst::compacted_options(
            block_size,
            compression,
            bloom_bits_per_key,
            min_filter_keys,
            block_alignment,
        )?;
        let inner = self.inner.clone();
        let op = super::operator::engine_op(merge_operator);
        let pieces = py
            .detach(move || -> Result<_, CoreError> {
                let m = inner.lock().map_err(|_| CoreError::poisoned("memtable"))?;
                if m.is_empty() {
                    return Ok(None);
                }
                let Some(op) = op else {
                    drop(m);
                    return Ok(Some(L0Pieces::of_memtable(inner, opts, now, retain_seq, piece_size)));
                };
                // Copied out and folded outside the lock (`L0Pieces::folded`).
                let rows = m.flush_rows(now, retain_seq);
                Ok(Some(L0Pieces::folded(rows, opts, now, retain_seq, op, piece_size)))
            })
            .py_err(None)?;
        Ok(pieces.map(PySstPieces::new))
    }

    #[getter]
    fn memory_bytes(&self) -> PyResult<usize> {
        Ok(lock(&self.inner)?.memory_bytes())
    }

    /// Takes the rows written since the last call and encodes them as a WAL SST:
    /// `(data, first_seq, last_seq, rows)`, or None when nothing is pending.
    fn take_wal(&self, py: Python<'_>, compression: Option<&str>) -> PyResult<Option<EncodedWal>> {
        let rows = lock(&self.inner)?.take_wal();
        if rows.is_empty() {
            return Ok(None);
        }
        encode_wal(py, &rows, compression).map(Some)
    }

    /// Takes the rows written since the last call without encoding them (`WalRows.encode`
    /// does, later): a freeze queues them so, and the writer that froze goes on at once.
    /// None when nothing is pending.
    fn take_wal_rows(&self) -> PyResult<Option<PyWalRows>> {
        let rows = lock(&self.inner)?.take_wal();
        Ok((!rows.is_empty()).then_some(PyWalRows { rows }))
    }

    #[getter]
    fn wal_pending_bytes(&self) -> PyResult<usize> {
        Ok(lock(&self.inner)?.wal_pending().1)
    }

    #[getter]
    fn size_bytes(&self) -> PyResult<usize> {
        Ok(lock(&self.inner)?.size_bytes())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(lock(&self.inner)?.len())
    }

    #[getter]
    fn min_seq(&self) -> PyResult<Option<u64>> {
        Ok(lock(&self.inner)?.min_seq())
    }

    #[getter]
    fn max_seq(&self) -> PyResult<Option<u64>> {
        Ok(lock(&self.inner)?.max_seq())
    }

    #[getter]
    fn max_create_ts(&self) -> PyResult<Option<i64>> {
        Ok(lock(&self.inner)?.max_create_ts())
    }
}

/// An encoded WAL SST: `(data, first_seq, last_seq, rows)`.
type EncodedWal = (pyo3_bytes::PyBytes, u64, u64, usize);

/// Below this many key and value bytes, WAL rows are encoded with the GIL held.
///
/// The group commit's uploader encodes; with hundreds of writer threads queued on the GIL,
/// taking it back after a release costs it about a millisecond (the GIL hands itself to any
/// waiter, not to the one that released it), while encoding 256 KiB takes about 100 us.
const ENCODE_HOLDING_GIL: usize = 256 << 10;

/// Encodes WAL rows (at least one), big chunks with the GIL released; the bytes are handed
/// over without a copy (a buffer-protocol object the store uploads as is).
fn encode_wal(py: Python<'_>, rows: &WalRows, compression: Option<&str>) -> PyResult<EncodedWal> {
    let opts = SstOptions { compression: Compression::from_name(compression).py_err(None)?, ..SstOptions::wal() };
    let (first, last) = rows.seq_span().unwrap_or_default();
    let data = if rows.data_len() < ENCODE_HOLDING_GIL { rows.encode(opts) } else { py.detach(|| rows.encode(opts)) }
        .py_err(None)?;
    Ok((pyo3_bytes::PyBytes::new(Bytes::from(data)), first, last, rows.len()))
}

/// Rows taken from a memtable's WAL queue, not yet encoded (`Memtable.take_wal_rows`).
#[pyclass(frozen, module = "slatedb_py._native", name = "WalRows")]
pub struct PyWalRows {
    rows: WalRows,
}

#[pymethods]
impl PyWalRows {
    /// The rows as a WAL SST: `(data, first_seq, last_seq, rows)`, like `Memtable.take_wal`.
    #[pyo3(signature = (compression = None))]
    fn encode(&self, py: Python<'_>, compression: Option<&str>) -> PyResult<EncodedWal> {
        encode_wal(py, &self.rows, compression)
    }

    fn __len__(&self) -> usize {
        self.rows.len()
    }
}
