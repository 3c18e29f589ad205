//! The durability watermark behind group commit.
//!
//! Writers waiting for their sequence number to reach the WAL sleep here with the GIL
//! released. One waiter at a time is elected to upload; it uploads everything queued, so
//! everyone who wrote meanwhile shares its upload.
//!
//! Each waiter parks on its own, and is woken only when it has something to do: when an
//! upload covers its sequence number, or when it is elected to upload next. A shared
//! condition variable woke every waiter twice per upload (once when the watermark moved,
//! once when the uploader finished), and with 256 writer threads those wake-ups, not the
//! uploads, were most of the CPU time of a durable put.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, Thread};

use pyo3::prelude::*;

use super::errors::poisoned;

const PARKED: u8 = 0;
/// Covered by an upload: it returns without taking the lock again.
const COVERED: u8 = 1;
/// Woken because no upload runs and it is next in line to run one.
const ELECTED: u8 = 2;
const FAILED: u8 = 3;

struct Waiter {
    seq: u64,
    ticket: u64,
    thread: Thread,
    signal: Arc<AtomicU8>,
}

impl Waiter {
    fn wake(self, how: u8) {
        self.signal.store(how, Ordering::Release);
        self.thread.unpark();
    }
}

// A min-heap on (seq, arrival): the lowest sequence numbers are covered first, and the
// longest waiter among them is elected first.
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.seq, other.ticket).cmp(&(self.seq, self.ticket))
    }
}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.ticket == other.ticket
    }
}
impl Eq for Waiter {}

#[derive(Default)]
struct State {
    durable: u64,
    uploading: bool,
    failed: bool,
    /// A waiter was elected and has not run yet: no second one is elected meanwhile.
    elect_pending: bool,
    waiters: BinaryHeap<Waiter>,
    tickets: u64,
}

impl State {
    fn finish_upload(&mut self) {
        self.uploading = false;
        self.elect_if_idle();
    }

    /// Moves the watermark; returns the waiters it covers, to be woken once the lock is
    /// released (woken under it, they would find it held).
    fn advance(&mut self, seq: u64) -> Vec<Waiter> {
        let mut covered = Vec::new();
        if seq > self.durable {
            self.durable = seq;
            while self.waiters.peek().is_some_and(|w| w.seq <= seq) {
                covered.extend(self.waiters.pop());
            }
        }
        covered
    }

    /// Keeps the watermark live: when no upload runs and none is about to, the first waiter
    /// is elected. Every waiter parked while an upload ran, and every path that ends an
    /// upload (or returns an elected waiter without one) comes through here.
    fn elect_if_idle(&mut self) {
        if !self.uploading && !self.elect_pending {
            if let Some(w) = self.waiters.pop() {
                self.elect_pending = true;
                w.wake(ELECTED);
            }
        }
    }
}

/// The watermark without Python: `-1` failed, `0` durable, `1` elected to upload, `2` (try
/// only) another upload runs.
pub(crate) struct Watermark {
    state: Mutex<State>,
}

#[derive(Debug)]
pub(crate) struct Poisoned;

impl Watermark {
    fn new(durable: u64) -> Self {
        Watermark { state: Mutex::new(State { durable, ..State::default() }) }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, Poisoned> {
        self.state.lock().map_err(|_| Poisoned)
    }

    pub(crate) fn wait_or_claim(&self, seq: u64) -> Result<i8, Poisoned> {
        let mut st = self.lock()?;
        loop {
            if st.failed {
                return Ok(-1);
            }
            if st.durable >= seq {
                st.elect_if_idle(); // it may have been elected: pass that on
                return Ok(0);
            }
            if !st.uploading {
                st.uploading = true;
                return Ok(1);
            }
            let signal = Arc::new(AtomicU8::new(PARKED));
            let ticket = st.tickets;
            st.tickets += 1;
            st.waiters.push(Waiter { seq, ticket, thread: thread::current(), signal: signal.clone() });
            drop(st);
            // `park` may return without an `unpark`: the signal says whether it was meant.
            let how = loop {
                match signal.load(Ordering::Acquire) {
                    PARKED => thread::park(),
                    how => break how,
                }
            };
            match how {
                COVERED => return Ok(0),
                FAILED => return Ok(-1),
                _ => {
                    st = self.lock()?;
                    st.elect_pending = false;
                }
            }
        }
    }

    pub(crate) fn try_claim(&self, seq: u64) -> Result<i8, Poisoned> {
        let mut st = self.lock()?;
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

    pub(crate) fn finish_upload(&self) -> Result<(), Poisoned> {
        self.lock()?.finish_upload();
        Ok(())
    }

    pub(crate) fn advance(&self, seq: u64) -> Result<(), Poisoned> {
        let covered = self.lock()?.advance(seq);
        for w in covered {
            w.wake(COVERED);
        }
        Ok(())
    }

    pub(crate) fn fail(&self) -> Result<(), Poisoned> {
        let mut st = self.lock()?;
        st.failed = true;
        for w in std::mem::take(&mut st.waiters) {
            w.wake(FAILED);
        }
        Ok(())
    }

    fn durable(&self) -> Result<u64, Poisoned> {
        Ok(self.lock()?.durable)
    }

    fn waiting(&self) -> Result<usize, Poisoned> {
        Ok(self.lock()?.waiters.len())
    }
}

#[pyclass(frozen, module = "slatedb_py._native", name = "DurableWatermark")]
pub struct PyDurableWatermark {
    inner: Watermark,
}

fn py_err(_: Poisoned) -> PyErr {
    poisoned("durability watermark")
}

#[pymethods]
impl PyDurableWatermark {
    #[new]
    fn new(durable: u64) -> Self {
        PyDurableWatermark { inner: Watermark::new(durable) }
    }

    /// Blocks until `seq` is durable (returns 0), the writer failed (-1), or no upload is
    /// running, in which case the caller is elected to upload (1) and must call
    /// `finish_upload` afterwards.
    fn wait_or_claim(&self, py: Python<'_>, seq: u64) -> PyResult<i8> {
        py.detach(|| self.inner.wait_or_claim(seq)).map_err(py_err)
    }

    /// `wait_or_claim` without the wait, for a caller that must not block (the asyncio
    /// twin's event loop): 0 durable, -1 failed, 1 elected to upload (call `finish_upload`
    /// afterwards), 2 another upload is running.
    fn try_claim(&self, seq: u64) -> PyResult<i8> {
        self.inner.try_claim(seq).map_err(py_err)
    }

    fn finish_upload(&self) -> PyResult<()> {
        self.inner.finish_upload().map_err(py_err)
    }

    /// Everything up to `seq` is in the WAL now.
    fn advance(&self, seq: u64) -> PyResult<()> {
        self.inner.advance(seq).map_err(py_err)
    }

    /// The writer failed (fenced, store error): every waiter wakes and sees it.
    fn fail(&self) -> PyResult<()> {
        self.inner.fail().map_err(py_err)
    }

    /// Writers parked, none of them covered yet.
    #[getter]
    fn waiting(&self) -> PyResult<usize> {
        self.inner.waiting().map_err(py_err)
    }

    #[getter]
    fn durable(&self) -> PyResult<u64> {
        self.inner.durable().map_err(py_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Writers as the WAL writer drives them: take a seq, wait or upload. The "upload" covers
    /// everything taken so far, sometimes only part of it (a freeze's chunk), and a ticker
    /// advances the watermark without claiming, as `WalWriter.flush` does. Every writer must
    /// return, covered, and no two uploads may overlap.
    fn run(threads: u64, each: u64, ticker: bool) {
        let wm = Arc::new(Watermark::new(0));
        let last = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicU8::new(0));
        let tick = ticker.then(|| {
            let (wm, last, stop) = (wm.clone(), last.clone(), stop.clone());
            thread::spawn(move || {
                while stop.load(Ordering::Acquire) == 0 {
                    wm.advance(last.load(Ordering::Acquire)).unwrap();
                    thread::yield_now();
                }
            })
        });
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (wm, last, busy) = (wm.clone(), last.clone(), busy.clone());
                thread::spawn(move || {
                    for i in 0..each {
                        let seq = last.fetch_add(1, Ordering::AcqRel) + 1;
                        loop {
                            match wm.wait_or_claim(seq).unwrap() {
                                0 => break,
                                1 => {
                                    assert_eq!(busy.swap(1, Ordering::AcqRel), 0, "two uploads at once");
                                    let upto = last.load(Ordering::Acquire);
                                    // Every third upload covers only part of what is queued.
                                    let upto = if (t + i) % 3 == 0 { seq.max(upto / 2) } else { upto };
                                    wm.advance(upto).unwrap();
                                    busy.store(0, Ordering::Release);
                                    wm.finish_upload().unwrap();
                                }
                                r => panic!("unexpected {r}"),
                            }
                        }
                        assert!(wm.durable().unwrap() >= seq);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("writer");
        }
        stop.store(1, Ordering::Release);
        if let Some(h) = tick {
            h.join().expect("ticker");
        }
        assert!(wm.lock().unwrap().waiters.is_empty());
    }

    #[test]
    fn every_writer_returns_covered_with_one_upload_at_a_time() {
        run(64, 200, false);
    }

    #[test]
    fn a_ticker_advancing_without_a_claim_strands_no_one() {
        run(64, 200, true);
    }

    fn park_waiters(wm: &Arc<Watermark>, seqs: &[u64]) -> Vec<std::sync::mpsc::Receiver<i8>> {
        seqs.iter()
            .enumerate()
            .map(|(n, &seq)| {
                let (tx, rx) = std::sync::mpsc::channel();
                let w = wm.clone();
                thread::spawn(move || tx.send(w.wait_or_claim(seq).unwrap()));
                while wm.lock().unwrap().waiters.len() <= n {
                    thread::yield_now();
                }
                rx
            })
            .collect()
    }

    #[test]
    fn an_elected_waiter_covered_before_it_runs_passes_the_election_on() {
        let wm = Arc::new(Watermark::new(0));
        assert_eq!(wm.wait_or_claim(1).unwrap(), 1);
        let rx = park_waiters(&wm, &[2, 3]);
        {
            // The upload ends and elects the waiter for 2; a flush that claimed nothing (the
            // ticker's) covers it before it runs.
            let mut st = wm.lock().unwrap();
            st.finish_upload();
            for w in st.advance(2) {
                w.wake(COVERED);
            }
        }
        let limit = std::time::Duration::from_secs(20);
        assert_eq!(rx[0].recv_timeout(limit), Ok(0));
        assert_eq!(rx[1].recv_timeout(limit), Ok(1), "the waiter for 3 was never elected");
    }

    #[test]
    fn a_moving_watermark_wakes_only_the_waiters_it_covers() {
        let wm = Arc::new(Watermark::new(0));
        assert_eq!(wm.wait_or_claim(1).unwrap(), 1);
        let rx = park_waiters(&wm, &[5, 2, 9, 3]);
        wm.advance(5).unwrap();
        let limit = std::time::Duration::from_secs(20);
        for i in [0, 1, 3] {
            assert_eq!(rx[i].recv_timeout(limit), Ok(0));
        }
        let st = wm.lock().unwrap();
        assert_eq!(st.waiters.iter().map(|w| w.seq).collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn failure_wakes_every_waiter() {
        let wm = Arc::new(Watermark::new(0));
        assert_eq!(wm.wait_or_claim(1).ok(), Some(1)); // the upload that never finishes
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let wm = wm.clone();
                thread::spawn(move || wm.wait_or_claim(i + 2).ok())
            })
            .collect();
        while wm.lock().unwrap().waiters.len() < 16 {
            thread::yield_now();
        }
        wm.fail().unwrap();
        for h in hs {
            assert_eq!(h.join().expect("waiter"), Some(-1));
        }
    }
}
