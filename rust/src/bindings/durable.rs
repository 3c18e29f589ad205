//! The durability watermark behind group commit.
//!
//! Writers waiting for their sequence number to reach the WAL sleep here with the GIL
//! released, on a Rust condition variable: waking 256 of them costs 256 GIL re-acquisitions,
//! not a convoy on a Python lock. One waiter at a time is elected to upload; it uploads
//! everything queued, so everyone who wrote meanwhile shares its upload.

use std::sync::{Condvar, Mutex};

use pyo3::prelude::*;

use super::errors::poisoned;

#[derive(Default)]
struct State {
    durable: u64,
    uploading: bool,
    failed: bool,
}

#[pyclass(frozen, module = "slatedb_py._native", name = "DurableWatermark")]
pub struct PyDurableWatermark {
    state: Mutex<State>,
    cv: Condvar,
}

#[pymethods]
impl PyDurableWatermark {
    #[new]
    fn new(durable: u64) -> Self {
        PyDurableWatermark { state: Mutex::new(State { durable, ..State::default() }), cv: Condvar::new() }
    }

    /// Blocks until `seq` is durable (returns 0), the writer failed (-1), or no upload is
    /// running, in which case the caller is elected to upload (1) and must call
    /// `finish_upload` afterwards.
    fn wait_or_claim(&self, py: Python<'_>, seq: u64) -> PyResult<i8> {
        py.detach(|| {
            let mut st = self.state.lock().map_err(|_| "poisoned")?;
            loop {
                if st.failed {
                    return Ok(-1);
                }
                if st.durable >= seq {
                    return Ok(0);
                }
                if !st.uploading {
                    st.uploading = true;
                    return Ok(1);
                }
                st = self.cv.wait(st).map_err(|_| "poisoned")?;
            }
        })
        .map_err(|_: &str| poisoned("durability watermark"))
    }

    /// `wait_or_claim` without the wait, for a caller that must not block (the asyncio
    /// twin's event loop): 0 durable, -1 failed, 1 elected to upload (call `finish_upload`
    /// afterwards), 2 another upload is running.
    fn try_claim(&self, seq: u64) -> PyResult<i8> {
        let mut st = self.state.lock().map_err(|_| poisoned("durability watermark"))?;
        Ok(if st.failed {
            -1
        } else if st.durable >= seq {
            0
        } else if st.uploading {
            2
        } else {
            st.uploading = true;
            1
        })
    }

    fn finish_upload(&self) -> PyResult<()> {
        let mut st = self.state.lock().map_err(|_| poisoned("durability watermark"))?;
        st.uploading = false;
        self.cv.notify_all();
        Ok(())
    }

    /// Everything up to `seq` is in the WAL now.
    fn advance(&self, seq: u64) -> PyResult<()> {
        let mut st = self.state.lock().map_err(|_| poisoned("durability watermark"))?;
        if seq > st.durable {
            st.durable = seq;
            self.cv.notify_all();
        }
        Ok(())
    }

    /// The writer failed (fenced, store error): every waiter wakes and sees it.
    fn fail(&self) -> PyResult<()> {
        let mut st = self.state.lock().map_err(|_| poisoned("durability watermark"))?;
        st.failed = true;
        self.cv.notify_all();
        Ok(())
    }

    #[getter]
    fn durable(&self) -> PyResult<u64> {
        Ok(self.state.lock().map_err(|_| poisoned("durability watermark"))?.durable)
    }
}
