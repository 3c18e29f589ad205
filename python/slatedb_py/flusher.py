"""Memtable to L0: a full memtable is frozen (its WAL rows cut and queued), then written as an
L0 SST and recorded in the manifest together with the WAL replay point it moves past.

Backpressure has two stages: a writer whose freeze would push unflushed memory past
`max_unflushed_bytes` flushes inline (or waits for the flush under way), and flushes wait while
L0 holds `l0_max_ssts` SSTs so that the compactor can drain it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from slatedb_py.errors import FencedError, SlateDBError, UnavailableError
from slatedb_py.manifest.model import I64_MIN, Manifest
from slatedb_py.memtable import Memtable, new_memtable
from slatedb_py.metrics import INDEX
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.seq_tracker import extended
from slatedb_py.sst import write_l0_sst

_log = logging.getLogger("slatedb_py.flush")

_L0, _L0_BYTES = INDEX["l0_flushes_total"], INDEX["l0_flush_bytes_total"]

if TYPE_CHECKING:  # the Db owns this flusher; only its type is named here
    from slatedb_py.db import Db

T = TypeVar("T")

# How long (in polls of 50 ms) a flush waits for the compactor to make room in L0.
L0_ROOM_POLLS = 600


@dataclass
class Frozen:
    memtable: Memtable
    last_wal_id: int  # every row of the memtable is in WAL objects <= this id
    # Its sequence-tracker points (seq, Unix second), for the manifest at its L0 flush.
    seq_points: list[tuple[int, int]] = field(default_factory=list)


class Flusher:
    def __init__(self, db: Db) -> None:
        self.db = db
        self.frozen: list[Frozen] = []  # newest first
        self.lock = threading.Lock()  # one L0 flush at a time, oldest memtable first
        self.wanted = threading.Event()

    def unflushed_memory(self) -> int:
        """What the memtables not yet in L0 SSTs really hold (`max_unflushed_bytes`)."""
        with self.db._lock:
            mts = [self.db._active, *(f.memtable for f in self.frozen)]
        return sum(m.memory_bytes for m in mts)

    def freeze(self, claim: Callable[[], T | None] | None = None) -> T | None:
        """Moves the active memtable to the frozen list; its WAL rows are queued first, so
        the frozen memtable knows the last WAL id holding its rows. The queue is uploaded by
        the next WAL flush, or before the L0 SST is recorded: not here, so a writer that
        fills a memtable does not wait for a WAL upload.

        `claim` runs in the same critical section, before the swap (an ingest takes its
        sequence number there: every older row is in the memtable frozen here, every newer
        one goes to the next); when it returns None nothing is frozen. Returns its result."""
        db, wal = self.db, self.db._wal
        with wal.lock:
            wal.check()
            with db._lock:
                claimed = None if claim is None else claim()
                if claim is not None and claimed is None:
                    return None
                # One critical section: no write lands in the old memtable's WAL queue after
                # its last chunk is cut (such a row would be acknowledged as durable while it
                # sat only in memory), and reads see it in the frozen list at once.
                if len(db._active) == 0:
                    return claimed
                upto = db._last_seq
                old = db._active
                db._active = new_memtable(db._memtable_memory)
                last_wal = wal.last_id_after_queue(old.wal_pending_bytes > 0)
                self.frozen.insert(0, Frozen(old, last_wal, db._seq_points))
                db._seq_points, db._seq_due = [], I64_MIN
                db._view = db._make_view()
            # Taken outside `_lock` (nobody writes to `old` any more), and encoded when
            # uploaded: this writer goes on at once.
            wal.queue(old.take_wal_rows(), upto)
        return claimed

    def flush_frozen(self) -> None:
        """Writes frozen memtables (oldest first) as L0 SSTs and records them."""
        with self.lock:
            self.flush_frozen_locked()

    def flush_frozen_locked(self) -> None:
        """`flush_frozen`, for a caller that holds `lock` (an ingest)."""
        while True:
            with self.db._lock:
                if not self.frozen:
                    return
                oldest = self.frozen[-1]
            self._write_l0(oldest)

    def after_fill(self) -> None:
        """A write filled the active memtable: freeze it and let the flusher know. When the
        flusher is behind, and a full new memtable on top of the frozen ones would pass the
        budget, this writer helps (or waits for the flush under way) instead of letting
        unflushed memory grow."""
        self.freeze()
        self.wanted.set()
        db = self.db
        if self.unflushed_memory() + db._memtable_memory > db.options.max_unflushed_bytes:
            self.flush_frozen()

    def wait_for_l0_room(self) -> None:
        """With L0 at `l0_max_ssts`, flushes (and through them writers) wait for the compactor
        to drain it. Bounded: a stuck compactor slows writes, never stops them."""
        db = self.db
        if not db.options.compactor_enabled:
            return
        for _ in range(L0_ROOM_POLLS):
            # The version held is current: the embedded compactor commits through the same
            # handle (`Compactor.plan_age`), so this costs no request.
            _, m = db._manifests.require_latest(max_age=CLIENT_WINDOW_S)
            if len(m.l0) < db.options.l0_max_ssts:
                return
            db._compactor.wake.set()
            if db._stop.wait(0.05):
                return

    def _write_l0(self, frozen: Frozen) -> None:
        db, wal = self.db, self.db._wal
        # Its WAL rows go out first: the manifest update below moves the replay point past
        # WAL ids that must exist by then.
        with wal.lock:
            wal.check()
            wal.send_unsent()
        self.wait_for_l0_room()
        mt = frozen.memtable
        # Taken before the encode: a snapshot opened later reads at a higher seq, and every
        # version it can see is in this SST or newer.
        retain = db._snapshots.oldest()
        view = write_l0_sst(
            db._store, db._paths, mt, db.options, db._clock, db._tables, retain, db._operator
        )
        size = 0 if view is None else view.sst.info.estimated_size
        db._store.metrics.add2(_L0, 1, _L0_BYTES, size)
        _log.debug("flushed a memtable of %r to L0 SST %s (%d bytes)", db._paths.root,
                   None if view is None else view.id, size)  # fmt: skip
        next_wal = wal.next_id

        def record(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
            if view is not None and m.last_l0_seq >= (mt.max_seq or 0):
                # Already recorded (a re-application after an unknown outcome): this
                # writer's flushes are the only ones to raise last_l0_seq past its rows.
                return None, None
            last_seq = max(m.last_l0_seq, mt.max_seq or 0)
            return replace(
                m,
                l0=((view,) if view else ()) + m.l0,
                replay_after_wal_id=max(m.replay_after_wal_id, frozen.last_wal_id),
                wal_id_last_seen=max(m.wal_id_last_seen, next_wal - 1),
                last_l0_seq=last_seq,
                last_l0_clock_tick=max(
                    m.last_l0_clock_tick, mt.max_create_ts or m.last_l0_clock_tick
                ),
                recent_snapshot_min_seq=last_seq if retain is None else min(last_seq, retain),
                sequence_tracker=(
                    extended(m.sequence_tracker, frozen.seq_points)
                    if frozen.seq_points
                    else m.sequence_tracker
                ),
            ), None

        self.install(record, lambda: self.frozen.remove(frozen))
        db._compactor.wake.set()

    def install(
        self,
        record: Callable[[int, Manifest], tuple[Manifest | None, None]],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Applies `record` (an L0 addition) through the writer fence and reads from the new
        version; `then` runs in the same critical section as the view swap."""
        db = self.db
        try:
            mid, m, _ = db._fence.update(record)
        except FencedError as e:
            raise db._fail(e) from e
        with db._lock:
            # Only ever forward: a compactor may have committed on top of this version and
            # installed that already; its SSTs are what the collector keeps.
            if mid > db._manifest_id:
                db._manifest_id, db._manifest = mid, m
            if then is not None:
                then()
            db._view = db._make_view()

    def run(self, stop: threading.Event) -> None:
        """The flusher thread: writes frozen memtables out when a writer asks."""
        while not stop.is_set():
            self.wanted.wait(0.5)
            self.wanted.clear()
            try:
                self.flush_frozen()
            except UnavailableError:
                continue  # retried on the next round; the rows stay in memory and the WAL
            except SlateDBError:
                return
