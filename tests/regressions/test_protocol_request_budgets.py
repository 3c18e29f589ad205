"""Request budgets of the fixed protocols (defects 1 and 3 of the adversarial review): a manifest
update no longer LISTs after its create, and the fencing fix costs a durable put nothing until
its writer has gone 30 s without confirming its epoch. A manifest update within 30 s of the
handle's last look is its PUT alone (`manifest.versioned`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import Store

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)


class CountingStore(Store):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()

    def _call(self, what: str, path: str, fn: Any) -> Any:
        self.calls[what] += 1
        return super()._call(what, path, fn)

    def take(self) -> dict[str, int]:
        out = dict(self.calls)
        self.calls.clear()
        return out


def test_durable_puts_and_flushes_stay_within_budget() -> None:
    store = CountingStore(MemoryStore())
    clock = ManualClock(time.time_ns() // 1_000_000)
    db = Db.open("db", store, OPTS, clock=clock)
    store.take()
    for i in range(10):
        db.put(b"k%d" % i, b"v")
    assert store.take() == {"put-if-absent": 10}, "a durable put is one PUT"

    clock.advance(int(CLIENT_WINDOW_S * 1000))
    db.put(b"after-a-pause", b"v")
    # One epoch confirmation: a short LIST that finds the manifest it holds (no GET).
    assert store.take() == {"put-if-absent": 1, "list": 1}, "one epoch confirmation"
    db.put(b"right-after", b"v")
    assert store.take() == {"put-if-absent": 1}

    db.flush_memtable()
    # The L0 SST, then one manifest update: the create alone, on the version the confirmation
    # just found current. No LIST before or after.
    assert store.take() == {"put": 1, "put-if-absent": 1}
    clock.advance(int(CLIENT_WINDOW_S * 1000))
    db.put(b"late", b"v", await_durable=False)
    db.flush_memtable()
    # After the window: its WAL object, one short LIST (the epoch confirmation, which the
    # manifest update then builds on), the L0 SST, the manifest.
    assert store.take() == {"put": 1, "put-if-absent": 2, "list": 1}
    db.close()


def test_an_update_on_a_held_version_that_another_process_moved_on_loses_nothing() -> None:
    store = CountingStore(MemoryStore())
    clock = ManualClock(time.time_ns() // 1_000_000)
    db = Db.open("db", store, OPTS, clock=clock)
    db.put(b"k", b"v", await_durable=False)
    # Another process (its own handle) adds a checkpoint: the writer still holds the version
    # before it, and its look is recent.
    cp = admin.create_checkpoint("db", Store(store.inner))
    store.take()
    db.flush_memtable()
    # The create on the held version finds its id taken, then looks, builds on the newer
    # version, and creates the next one: the checkpoint stays.
    assert store.take() == {"put-if-absent": 3, "put": 1, "list": 1, "get": 1}
    assert [c.id for c in admin.list_checkpoints("db", store)] == [cp.id]
    _, m = db.manifest()
    assert m.checkpoint(cp.id) is not None and len(m.l0) == 1
    db.close()
