"""Snapshots against a dict model: each open snapshot must read exactly the model as it was when
it was taken, whatever happens after: writes, deletes, L0 flushes, full compactions and a
collector with zero ages (which deletes the SSTs the snapshot's own view names, so its reads
move to the newer tree at the snapshot's sequence number)."""

from __future__ import annotations

from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.config import DbOptions, GcOptions

KEYS = st.sampled_from([b"k%02d" % i for i in range(12)])
OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))


class Snapshots(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.db = Db.open("db", self.store, OPTS)
        self.model: dict[bytes, bytes] = {}
        self.snaps: list[tuple[object, dict[bytes, bytes]]] = []
        self.n = 0

    @rule(key=KEYS)
    def put(self, key: bytes) -> None:
        self.n += 1
        value = b"v%d" % self.n
        self.db.put(key, value, await_durable=False)
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.db.delete(key, await_durable=False)
        self.model.pop(key, None)

    @rule()
    def flush(self) -> None:
        self.db.flush_memtable()

    @rule()
    def compact_and_collect(self) -> None:
        self.db.compact()
        admin.run_gc_once("db", self.store, ZERO)

    @precondition(lambda self: len(self.snaps) < 4)
    @rule()
    def take(self) -> None:
        self.snaps.append((self.db.snapshot(), dict(self.model)))

    @precondition(lambda self: self.snaps)
    @rule(i=st.integers(0, 3))
    def release(self, i: int) -> None:
        snap, _ = self.snaps.pop(i % len(self.snaps))
        snap.close()  # type: ignore[attr-defined]

    @invariant()
    def snapshots_read_their_instant(self) -> None:
        for snap, seen in self.snaps:
            assert dict(snap.scan()) == seen  # type: ignore[attr-defined]
            assert list(snap.scan(reverse=True)) == sorted(seen.items(), reverse=True)  # type: ignore[attr-defined]
            keys = sorted({b"k%02d" % i for i in range(12)})
            assert snap.get_many(keys) == [seen.get(k) for k in keys]  # type: ignore[attr-defined]
        assert dict(self.db.scan()) == self.model

    def teardown(self) -> None:
        for snap, _ in self.snaps:
            snap.close()  # type: ignore[attr-defined]
        self.db.close()


Snapshots.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestSnapshots = Snapshots.TestCase
