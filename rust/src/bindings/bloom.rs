//! A standalone bloom filter handle (the same filter SSTs carry), for inspection and
//! benchmarks.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::columns::{probe_many, Column, Role};
use super::errors::{invalid, IntoPyResult};
use crate::bloom::{filter_hash, BloomFilter, BloomFilterBuilder};

#[pyclass(frozen, module = "slatedb_py.format", name = "BloomFilter")]
pub struct PyBloomFilter {
    filter: BloomFilter,
    data: Bytes,
}

/// The filter hashes of `keys` (a list, numpy or Arrow array: `columns::Column`).
fn keys_of(keys: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let col = Column::parse(keys, "keys")?;
    col.check_all(Role::Probe, "keys")?;
    Ok((0..col.len()).map(|i| filter_hash(col.get(i).unwrap_or_default())).collect())
}

#[pymethods]
impl PyBloomFilter {
    /// Builds a filter over `keys` with SlateDB's policy (`bits_per_key`, default 10).
    #[staticmethod]
    #[pyo3(signature = (keys, bits_per_key = 10))]
    fn build(keys: &Bound<'_, PyAny>, bits_per_key: u32) -> PyResult<Self> {
        let mut b = BloomFilterBuilder::new(bits_per_key);
        for h in keys_of(keys)? {
            b.add_hash(h);
        }
        let data = Bytes::from(b.build());
        Ok(PyBloomFilter { filter: BloomFilter::decode(&data).py_err(None)?, data })
    }

    /// Reads filter data (`u16 num_probes | bits`).
    #[staticmethod]
    fn from_bytes(data: pyo3_bytes::PyBytes) -> PyResult<Self> {
        let data = data.into_inner();
        Ok(PyBloomFilter { filter: BloomFilter::decode(&data).py_err(None)?, data })
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    #[getter]
    fn num_probes(&self) -> u16 {
        self.filter.num_probes()
    }

    #[getter]
    fn num_bits(&self) -> u64 {
        self.filter.num_bits()
    }

    fn might_contain(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let b = key.cast::<PyBytes>().map_err(|_| invalid("key must be bytes".into(), true))?;
        Ok(self.filter.might_contain(b.as_bytes()))
    }

    /// One answer per key (a list, numpy or Arrow array), in one crossing: a numpy bool
    /// array.
    fn might_contain_many<'py>(&self, keys: &Bound<'py, PyAny>) -> PyResult<Bound<'py, numpy::PyArray1<bool>>> {
        probe_many(keys, |k| self.filter.might_contain(k))
    }

    /// How many of `keys` the filter may contain (for false-positive measurements).
    fn count_matches(&self, keys: &Bound<'_, PyAny>) -> PyResult<usize> {
        Ok(keys_of(keys)?.into_iter().filter(|&h| self.filter.might_contain_hash(h)).count())
    }
}
