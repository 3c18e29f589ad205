"""Merges against a plain model: every key keeps its versions (value, tombstone, operand, each
with an expiry), and a read folds them newest to oldest down to a base, skipping expired
operands. Puts, deletes, merges with and without TTLs, batches that mix them, the clock
moving, L0 flushes, full compactions (which fold ahead of time), a reopen (WAL replay), and
snapshots taken along the way must all read as the model does. Run once with the native
`Concat` and once with the same operator written in Python."""

from __future__ import annotations

from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.merge import Concat

KEYS = st.sampled_from([b"k%d" % i for i in range(6)])
TTL = st.one_of(st.none(), st.integers(1, 30))
# (kind, value, expire_ts): kind "v" value, "t" tombstone, "m" operand; newest last.
Version = tuple[str, bytes, int | None]


def fold(versions: list[Version], now: int) -> bytes | None:
    ops: list[bytes] = []
    base: bytes | None = None
    for kind, value, expire in reversed(versions):
        expired = expire is not None and expire <= now
        if kind == "m":
            if not expired:
                ops.append(value)
            continue
        if kind == "v" and not expired:
            base = value
        break
    if not ops:
        return base
    return (base or b"") + b"".join(reversed(ops))


def py_concat(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
    return (existing or b"") + operand


class Merges(RuleBasedStateMachine):
    operator: object = Concat

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.clock = ManualClock()
        self.opts = DbOptions(
            flush_interval=None,
            compactor_enabled=False,
            gc_enabled=False,
            merge_operator=self.operator,
        )
        self.db = Db.open("db", self.store, self.opts, clock=self.clock)
        self.model: dict[bytes, list[Version]] = {}
        self.snaps: list[tuple[object, dict[bytes, list[Version]]]] = []
        self.n = 0

    def _expire(self, ttl: int | None) -> int | None:
        return None if ttl is None else self.clock.now_ms() + ttl

    def _value(self) -> bytes:
        self.n += 1
        return b"<%d>" % self.n

    @rule(key=KEYS, ttl=TTL)
    def put(self, key: bytes, ttl: int | None) -> None:
        v = self._value()
        self.db.put(
            key, v, ttl=None if ttl is None else timedelta(milliseconds=ttl), await_durable=False
        )
        self.model.setdefault(key, []).append(("v", v, self._expire(ttl)))

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.db.delete(key, await_durable=False)
        self.model.setdefault(key, []).append(("t", b"", None))

    @rule(key=KEYS, ttl=TTL)
    def merge(self, key: bytes, ttl: int | None) -> None:
        v = self._value()
        d = None if ttl is None else timedelta(milliseconds=ttl)
        self.db.merge(key, v, ttl=d, await_durable=False)
        self.model.setdefault(key, []).append(("m", v, self._expire(ttl)))

    @rule(key=KEYS, first=st.sampled_from(["put", "delete", "merge"]), merges=st.integers(1, 3))
    def batch(self, key: bytes, first: str, merges: int) -> None:
        # One seq for the whole batch: the key's ops fold into one version, as 0.17.0 does.
        b = WriteBatch()
        if first == "put":
            base: bytes | None = self._value()
            b.put(key, base)
        elif first == "delete":
            base = b""
            b.delete(key)
        else:
            base = None
        ops = [self._value() for _ in range(merges)]
        for o in ops:
            b.merge(key, o)
        self.db.write(b, await_durable=False)
        kind = "m" if base is None else "v"
        self.model.setdefault(key, []).append((kind, (base or b"") + b"".join(ops), None))

    @rule(ms=st.integers(1, 20))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def flush(self) -> None:
        self.db.flush_memtable()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def reopen(self) -> None:
        for snap, _ in self.snaps:
            snap.close()  # type: ignore[attr-defined]
        self.snaps.clear()
        self.db.flush()
        self.db._stop.set()  # abandon it: the next writer replays the WAL
        self.db = Db.open("db", self.store, self.opts, clock=self.clock)

    @precondition(lambda self: len(self.snaps) < 3)
    @rule()
    def take(self) -> None:
        frozen = {k: list(v) for k, v in self.model.items()}
        self.snaps.append((self.db.snapshot(), frozen))

    @precondition(lambda self: self.snaps)
    @rule(i=st.integers(0, 2))
    def release(self, i: int) -> None:
        snap, _ = self.snaps.pop(i % len(self.snaps))
        snap.close()  # type: ignore[attr-defined]

    def _expect(self, model: dict[bytes, list[Version]]) -> dict[bytes, bytes]:
        now = self.clock.now_ms()
        out = {k: fold(v, now) for k, v in sorted(model.items())}
        return {k: v for k, v in out.items() if v is not None}

    @invariant()
    def reads_fold_as_the_model(self) -> None:
        want = self._expect(self.model)
        assert dict(self.db.scan()) == want
        assert list(self.db.scan(reverse=True)) == sorted(want.items(), reverse=True)
        keys = [b"k%d" % i for i in range(6)]
        assert self.db.get_many(keys) == [want.get(k) for k in keys]
        assert [self.db.get(k) for k in keys] == [want.get(k) for k in keys]
        for snap, seen in self.snaps:
            assert dict(snap.scan()) == self._expect(seen)  # type: ignore[attr-defined]

    def teardown(self) -> None:
        for snap, _ in self.snaps:
            snap.close()  # type: ignore[attr-defined]
        self.db.close()


class PythonMerges(Merges):
    operator = staticmethod(py_concat)


SETTINGS = settings(max_examples=50, stateful_step_count=30, deadline=None)
Merges.TestCase.settings = SETTINGS
PythonMerges.TestCase.settings = SETTINGS
TestNativeConcat = Merges.TestCase
TestPythonConcat = PythonMerges.TestCase
