"""Bulk ingest: a large `put_many` / `delete_many` with `atomic=False` and keys in ascending
order is written straight as L0 SSTs, past the memtable and the WAL: its rows are encoded
once, from the arrays, instead of three times (WAL, memtable, L0). What RocksDB calls
ingesting external files, in SlateDB's own format; 0.17.0 reads the result as any L0 SST.

How it stays correct:
- **One sequence number, taken as the active memtable is frozen** (one critical section,
  `Flusher.freeze(claim)`): every older row is in a memtable flushed to L0 before the first
  ingested SST is recorded, every newer one in a memtable read before L0. The flush lock is
  held throughout, so no memtable holding newer rows reaches L0 ahead of the ingested SSTs
  (L0 is read newest first).
- **Stable reads wait for it.** A snapshot, scan or transaction started while it runs would
  read at a sequence number that covers the ingested rows before they are in the tree, and
  see them appear later: `Db._scan_state` and `Transaction` wait until it ends (point reads
  do not: they promise no stability, and see the SSTs as they are recorded).
- **Recorded SST by SST, in key order**, each once L0 has room: a reader sees a prefix of
  the keys, and a crash keeps a prefix (what `atomic=False` promises). An SST uploaded but
  not recorded is newer than every L0 SST, which keeps it from the collector until a later
  L0 SST is; then it goes.

Not taken (the memtable path writes it): inputs under `l0_sst_size_bytes`, keys not strictly
ascending, or an open transaction (its commit checks the keys written after its start, which
the ingest does not record). The ingested rows are in no WAL object, so `WalReader` (the change
stream) does not see them; they are durable when `put_many` returns, whatever `await_durable`.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING

from slatedb_py.batch import Bulk
from slatedb_py.manifest.model import Manifest, SstView
from slatedb_py.metrics import INDEX
from slatedb_py.seq_tracker import extended
from slatedb_py.sst import Piece, store_ssts

if TYPE_CHECKING:  # the Db whose rows these are; only its type is named here
    from slatedb_py.db import Db

_log = logging.getLogger("slatedb_py.ingest")
_L0, _L0_BYTES = INDEX["l0_flushes_total"], INDEX["l0_flush_bytes_total"]

# SSTs encoded at once: the encode is CPU-bound native code run without the GIL, and the one
# upload thread beside it mostly waits on the store.
ENCODERS = 2


def ingest(db: Db, bulk: Bulk, ttl: int | None) -> bool:
    """Writes `bulk` as L0 SSTs (module docstring); False, having written nothing, when it
    does not qualify and the memtable path must write it."""
    o = db.options
    if bulk.nbytes < o.l0_sst_size_bytes or not bulk.ascending():
        return False
    flusher = db._flusher

    def claim() -> tuple[int, int, int | None] | None:
        # Under the writer's lock, in the freeze's critical section.
        if db._error is not None or db._closed:
            db._check_open()
        if db._txns.active:
            return None
        now = db._tick()
        expire = db._expire(now, ttl) if bulk.has_values else None
        seq = db._last_seq + 1
        db._last_seq = seq
        db._writes += 1
        db._writes_keys += len(bulk)
        db._ingesting += 1
        claimed.append((seq, now, expire))
        return seq, now, expire

    claimed: list[tuple[int, int, int | None]] = []
    with flusher.lock:
        try:
            if flusher.freeze(claim) is None:
                return False
            seq, now, expire = claimed[0]
            flusher.flush_frozen_locked()
            _write(db, bulk, seq, now, expire)
        finally:
            if claimed:  # whatever failed after the claim, stable reads wait no longer
                with db._lock:
                    db._ingesting -= 1
                    db._ingest_done.notify_all()
    db._compactor.wake.set()
    return True


def _write(db: Db, bulk: Bulk, seq: int, now: int, expire: int | None) -> None:
    """Cuts the rows into SSTs of about `l0_sst_size_bytes` of keys and values, encodes up to
    `ENCODERS` of them at once (the native encode lets go of the GIL), and uploads and
    records them in key order on one more thread: a few SSTs in memory at most."""
    o = db.options
    # Taken once: a snapshot opened later waits for this ingest (module docstring).
    retain = db._snapshots.oldest()
    ranges = list(pairwise(bulk.chunks(o.l0_sst_size_bytes)))

    def encode(lo: int, hi: int) -> Piece:
        return bulk.encode_sst(
            lo, hi, seq, now, expire, o.block_size, o.compression, o.bloom_bits_per_key,
            o.min_filter_keys, o.sst_block_alignment,
        )  # fmt: skip

    with (
        ThreadPoolExecutor(ENCODERS, thread_name_prefix="slatedb-ingest-encode") as encoders,
        ThreadPoolExecutor(1, thread_name_prefix="slatedb-ingest-upload") as uploader,
    ):
        encoded = deque(encoders.submit(encode, *r) for r in ranges[:ENCODERS])
        pending: Future[None] | None = None
        try:
            for i, (lo, hi) in enumerate(ranges):
                sst = encoded.popleft().result()
                if i + ENCODERS < len(ranges):
                    encoded.append(encoders.submit(encode, *ranges[i + ENCODERS]))
                if pending is not None:
                    pending.result()  # recorded in key order; a failure stops the ingest
                pending = uploader.submit(_store, db, sst, (lo, hi, len(bulk)), seq, now, retain)
                del sst
            if pending is not None:
                pending.result()
        finally:
            for f in encoded:  # after a failure: encodes not started yet are dropped
                f.cancel()


def _store(
    db: Db, sst: Piece, rows: tuple[int, int, int], seq: int, now: int, retain: int | None
) -> None:
    (view,) = store_ssts(db._store, db._paths, iter([sst]), db._clock, db._tables)
    del sst
    db._store.metrics.add2(_L0, 1, _L0_BYTES, view.sst.info.estimated_size)
    db._flusher.wait_for_l0_room()
    _record(db, view, seq, now, retain, rows[0] == 0)
    _log.debug("ingested rows %d..%d of %d into L0 SST %s at seq %d", *rows, view.id, seq)


def _record(db: Db, view: SstView, seq: int, now: int, retain: int | None, first: bool) -> None:
    """Puts `view` in front of L0, as a flush does, with the ingest's sequence number."""

    def record(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
        if view.sst.id in m.sst_ids():
            return None, None  # recorded already (re-applied after an unknown outcome)
        last_seq = max(m.last_l0_seq, seq)
        return replace(
            m,
            l0=(view, *m.l0),
            last_l0_seq=last_seq,
            last_l0_clock_tick=max(m.last_l0_clock_tick, now),
            recent_snapshot_min_seq=last_seq if retain is None else min(last_seq, retain),
            sequence_tracker=(
                extended(m.sequence_tracker, [(seq, now // 1000)]) if first else m.sequence_tracker
            ),
        ), None

    db._flusher.install(record)
