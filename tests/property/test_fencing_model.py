"""Model test of writer/collector interleavings (defect 1 of the adversarial review).

Any number of writers open the same database in turn (each one fences the ones before), put,
flush to L0, stall (the shared manual clock jumps) and close, while collectors run with zero
ages, with and without WAL fence deletion. The model is the set of acknowledged puts: whatever
the interleaving, every acknowledged put is read back by a writer opened at the end, and a
writer that learned it was fenced never acknowledges again. `slatedb_py.safety` says why this
holds. The database lives in a local folder so that a stall can age it on the store's clock
(`tests.support.pass_time`) as well as on the writers' and the collectors' clocks.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import ClosedError, FencedError, SlateDBError
from tests.support import pass_time

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
COLLECTORS = {
    "zero": GcOptions(min_age=timedelta(0)),
    "zero-fences": GcOptions(
        min_age=timedelta(0), delete_wal_fences=True, wal_fence_min_age=timedelta(0)
    ),
    "default": GcOptions(),
}
# Stalls: within the confirmation window, past it, past the collector's floor, an hour.
STALLS_MS = [1_000, 31_000, 6 * 60_000, 3_600_000]
# Collections with fence deletion on are the interesting ones: listed twice to run more often.
KINDS = ["zero", "zero-fences", "zero-fences", "default"]


class Writer:
    def __init__(self, db: Db) -> None:
        self.db = db
        self.fenced = False
        self.closed = False


class FencingModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.store = LocalStore(self.folder.name)
        self.clock = ManualClock(time.time_ns() // 1_000_000)
        self.writers: list[Writer] = []
        self.acked: dict[bytes, bytes] = {}
        self.puts = 0
        self.open_writer()
        self.open_writer()  # the first writer starts out fenced

    def _live(self) -> list[Writer]:
        return [w for w in self.writers if not w.closed]

    @rule()
    def open_writer(self) -> None:
        self.writers.append(Writer(Db.open("db", self.store, OPTS, clock=self.clock)))

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 100), rows=st.integers(1, 3), flush=st.booleans())
    def put(self, pick: int, rows: int, flush: bool) -> None:
        w = self._live()[pick % len(self._live())]
        for _ in range(rows):
            self.puts += 1
            key, value = b"k%06d" % self.puts, b"v%d" % self.puts
            try:
                w.db.put(key, value)
            except FencedError:
                w.fenced = True
                continue
            assert not w.fenced, "a writer that was told it is fenced acknowledged a write"
            self.acked[key] = value
        if flush and not w.fenced:
            self._flush(w)  # moves the replay point past the WAL (and its fences)

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 100))
    def flush_memtable(self, pick: int) -> None:
        self._flush(self._live()[pick % len(self._live())])

    @staticmethod
    def _flush(w: Writer) -> None:
        try:
            w.db.flush_memtable()
        except FencedError:
            w.fenced = True

    @precondition(lambda self: bool(self._live()))
    @rule(pick=st.integers(0, 100))
    def close(self, pick: int) -> None:
        w = self._live()[pick % len(self._live())]
        try:
            w.db.close()
        except (FencedError, ClosedError):
            w.fenced = True
        w.closed = True

    @rule(kind=st.sampled_from(KINDS))
    def collect(self, kind: str) -> None:
        admin.run_gc_once("db", self.store, COLLECTORS[kind], clock=self.clock)

    @rule(ms=st.sampled_from(STALLS_MS))
    def stall(self, ms: int) -> None:
        pass_time(Path(self.folder.name), ms, self.clock)

    def teardown(self) -> None:
        for w in self._live():
            try:
                w.db.close()
            except SlateDBError:
                pass
        with Db.open("db", self.store, OPTS, clock=self.clock) as db:
            got: dict[bytes, Any] = {k: db.get(k) for k in self.acked}
        self.folder.cleanup()
        lost = sorted(k for k, v in self.acked.items() if got[k] != v)
        assert lost == [], f"acknowledged puts lost: {lost[:10]} of {len(self.acked)}"


FencingModel.TestCase.settings = settings(settings.default, stateful_step_count=40)
test_fencing_model = FencingModel.TestCase
