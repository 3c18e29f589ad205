//! SSTs handed to Python in pieces as they are written: `(data, None)` while more follow,
//! `(data, SstFile)` for an SST's last piece (its metadata, opened). A compaction step
//! returns them one at a time (`CompactionJob.step`); an L0 flush is an iterator of them
//! (`SstPieces`, from `Memtable.encode_l0`).

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::prelude::*;

use super::errors::{lock, IntoPyResult};
use super::sst::PySstFile;
use crate::flush::L0Pieces;
use crate::sst::Piece;

/// A piece as Python sees it. The data is handed over without a copy (a buffer-protocol
/// object obstore uploads as is).
pub fn piece_to_py(py: Python<'_>, piece: Piece) -> PyResult<Py<PyAny>> {
    let (data, file) = match piece {
        Piece::Data(d) => (d, None),
        Piece::Last(d, file) => (d, Some(PySstFile { file, name: None })),
    };
    let data = pyo3_bytes::PyBytes::new(Bytes::from(data));
    Ok((data, file).into_pyobject(py)?.into_any().unbind())
}

/// One L0 SST, written as it is iterated: each step encodes rows until a piece is ready.
#[pyclass(frozen, module = "slatedb_py._native", name = "SstPieces")]
pub struct PySstPieces {
    pieces: Mutex<L0Pieces>,
}

impl PySstPieces {
    pub fn new(pieces: L0Pieces) -> Self {
        PySstPieces { pieces: Mutex::new(pieces) }
    }
}

#[pymethods]
impl PySstPieces {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // Locked without the GIL: a step may fold merge operands with a Python operator.
        let piece = py.detach(|| lock(&self.pieces).and_then(|mut p| p.next_piece().py_err(None)))?;
        piece.map(|p| piece_to_py(py, p)).transpose()
    }
}
