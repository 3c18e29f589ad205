//! A standalone bloom filter handle (the same filter SSTs carry), for inspection and
//! benchmarks.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::errors::{invalid, IntoPyResult};
use crate::bloom::{filter_hash, BloomFilter, BloomFilterBuilder};

#[pyclass(frozen, module = "slatedb_py.format", name = "BloomFilter")]
pub struct PyBloomFilter {
    filter: BloomFilter,
    data: Bytes,
}

fn keys_of(keys: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let mut out = Vec::new();
    for k in keys.try_iter()? {
        let k = k?;
        let b = k.cast::<PyBytes>().map_err(|_| invalid("keys must be bytes".into(), true))?;
        out.push(filter_hash(b.as_bytes()));
    }
    Ok(out)
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

    /// One answer per key, in one crossing.
    fn might_contain_many<'py>(&self, py: Python<'py>, keys: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let answers: Vec<bool> = keys_of(keys)?.into_iter().map(|h| self.filter.might_contain_hash(h)).collect();
        PyList::new(py, answers)
    }

    /// How many of `keys` the filter may contain (for false-positive measurements).
    fn count_matches(&self, keys: &Bound<'_, PyAny>) -> PyResult<usize> {
        Ok(keys_of(keys)?.into_iter().filter(|&h| self.filter.might_contain_hash(h)).count())
    }
}
