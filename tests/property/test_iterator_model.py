"""Lazy iterators, seek, reverse scans and get_many against a dict model: a hypothesis state
machine that keeps a few iterators open while it writes, flushes, compacts and reopens.

Each iterator snapshots the model when it is opened (`Db.scan` reads as of the call: later
writes, flushes and compactions must not change what it yields) and is advanced a row, a batch
or to the end at a time, or moved with `seek`, valid and invalid. Keys come from a four-symbol
alphabet (0x00, 'a', 'b', 0xff) and are 1 to 4 symbols long, so they collide often, prefix
one another and reach the edges of the byte order (`scan_prefix(b"\\xff")` has no upper
bound). Small blocks, L0 SSTs and compaction outputs spread a few hundred rows over many
blocks, L0 SSTs and sorted-run SSTs.

Runs on a local folder (SSTs read natively with pread) and on MemoryStore (every byte through
the Python fetch driver): both read paths are exercised.
"""

from __future__ import annotations

import bisect
import itertools
import random
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, WriteBatch
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import ClosedError, InvalidArgumentError

SYMBOLS = [b"\x00", b"a", b"b", b"\xff"]
keys = st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4).map(b"".join)
bounds = st.none() | keys
prefixes = st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=2).map(b"".join)
# Every key the alphabet makes (340).
ALL_KEYS = sorted(b"".join(p) for n in range(1, 5) for p in itertools.product(SYMBOLS, repeat=n))
values = st.binary(max_size=12) | st.binary(min_size=60, max_size=200)

OPTS = DbOptions(
    flush_interval=None,
    compactor_enabled=False,
    gc_enabled=False,
    block_size=256,
    l0_sst_size_bytes=4096,
    max_sst_size=1024,  # compaction outputs: a sorted run of many small SSTs
    min_filter_keys=4,
)
MAX_OPEN = 4


def _bucket(n: int, *edges: int) -> str:
    """`n` as a coarse class for hypothesis' statistics ("0", "1-9", "10-99", "100+")."""
    if n == 0:
        return "0"
    low = 1
    for e in edges:
        if n < e:
            return f"{low}-{e - 1}"
        low = e
    return f"{low}+"


@dataclass
class OpenIter:
    it: Any
    rows: list[tuple[bytes, bytes]]  # the model's answer at open time, in iteration order
    start: bytes | None
    end: bytes | None
    reverse: bool
    pos: int = 0  # rows[:pos] were returned or skipped by a seek
    last: bytes | None = None  # the last key returned
    sought: bytes | None = None  # the furthest key sought: iterators only move forward
    keys: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = [k for k, _ in self.rows]

    def took(self, got: list[tuple[bytes, bytes]]) -> None:
        assert got == self.rows[self.pos : self.pos + len(got)], (self.describe(), got)
        self.pos += len(got)
        if got:
            self.last = got[-1][0]

    def seek_valid(self, key: bytes) -> bool:
        if self.reverse:
            return False
        if self.start is not None and key < self.start:
            return False
        if self.end is not None and key >= self.end:
            return False
        if self.sought is not None and key < self.sought:
            return False
        return self.last is None or key > self.last

    def describe(self) -> str:
        where = f"{self.pos}/{len(self.rows)}"
        return f"scan({self.start!r}, {self.end!r}, reverse={self.reverse}) at {where}"


class IteratorModel(RuleBasedStateMachine):
    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.store = MemoryStore() if self.store_kind == "memory" else LocalStore(self.tmp.name)
        self.clock = ManualClock()
        self.db = Db.open("model/db", self.store, OPTS, clock=self.clock)
        self.model: dict[bytes, tuple[bytes, int | None]] = {}  # key -> (value, expire_ms)
        self.iters: list[OpenIter] = []

    # ------------------------------------------------------------------ the model

    def live(self) -> dict[bytes, bytes]:
        now = self.clock.now_ms()
        return {k: v for k, (v, exp) in self.model.items() if exp is None or exp > now}

    def expected(
        self, start: bytes | None, end: bytes | None, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        rows = sorted(
            (k, v)
            for k, v in self.live().items()
            if (start is None or k >= start) and (end is None or k < end)
        )
        return rows[::-1] if reverse else rows

    # ------------------------------------------------------------------ writes

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        share=st.sampled_from([0, 10, 50, 100]),
        layout=st.sampled_from(["memtable", "l0", "run", "run+l0+memtable"]),
    )
    def load(self, seed: int, share: int, layout: str) -> None:
        """A starting data set of up to every key (340 rows), laid out in the memtable, in L0
        SSTs, in one sorted run of many SSTs, or in all three with newer versions and
        tombstones on top of the run."""
        rng = random.Random(seed)
        chosen = [k for k in ALL_KEYS if rng.randrange(100) < share]
        rng.shuffle(chosen)
        for i in range(0, len(chosen), 40):
            b = WriteBatch()
            for k in chosen[i : i + 40]:
                v = rng.randbytes(rng.choice([rng.randrange(13), rng.randrange(60, 201)]))
                b.put(k, v)
                self.model[k] = (v, None)
            self.db.write(b, await_durable=False)
            if layout == "l0":
                self.db.flush_memtable()
        if layout.startswith("run"):
            self.db.compact()
        if layout == "run+l0+memtable":
            for flush in (True, False):
                for k in rng.sample(ALL_KEYS, 60):
                    if rng.random() < 0.5:
                        self.db.delete(k, await_durable=False)
                        self.model.pop(k, None)
                    else:
                        v = rng.randbytes(rng.randrange(30))
                        self.db.put(k, v, await_durable=False)
                        self.model[k] = (v, None)
                if flush:
                    self.db.flush_memtable()

    @rule(key=keys, value=values)
    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value, await_durable=False)
        self.model[key] = (value, None)

    @rule(key=keys, value=values, ttl_ms=st.integers(min_value=1, max_value=3000))
    def put_ttl(self, key: bytes, value: bytes, ttl_ms: int) -> None:
        self.db.put(key, value, ttl=timedelta(milliseconds=ttl_ms), await_durable=False)
        self.model[key] = (value, self.clock.now_ms() + ttl_ms)

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        self.db.delete(key, await_durable=False)
        self.model.pop(key, None)

    @rule(ops=st.lists(st.tuples(keys, st.none() | values), min_size=1, max_size=60))
    def batch(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        b = WriteBatch()
        for k, v in ops:
            if v is None:
                b.delete(k)
            else:
                b.put(k, v)
        self.db.write(b, await_durable=False)
        for k, v in ops:
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = (v, None)

    @rule(ms=st.integers(min_value=1, max_value=2000))
    def time_passes(self, ms: int) -> None:
        # Open iterators keep the time they were opened at: the model snapshots are fixed.
        self.clock.advance(ms)

    @rule()
    def flush_memtable(self) -> None:
        self.db.flush_memtable()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def reopen(self) -> None:
        """Closing ends every open iterator (ClosedError); reading again starts cold."""
        self.db.close()
        for i, o in enumerate(self.iters):  # rows already paged into Python included
            with pytest.raises(ClosedError):
                if i % 3 == 0:
                    next(o.it)
                elif i % 3 == 1:
                    o.it.next_batch(2)
                else:
                    o.it.seek(o.start or b"\x00")
        self.iters.clear()
        with pytest.raises(ClosedError):
            self.db.scan()
        self.db = Db.open("model/db", self.store, OPTS, clock=self.clock)

    # ------------------------------------------------------------------ point reads

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        assert self.db.get(key) == self.live().get(key)

    @rule(ks=st.lists(keys, max_size=12))
    def get_many(self, ks: list[bytes]) -> None:
        live = self.live()
        if ks and live:
            ks = [*ks, ks[0], min(live)]  # a duplicate and a hit
        assert self.db.get_many(ks) == [live.get(k) for k in ks]

    # ------------------------------------------------------------------ iterators

    @precondition(lambda self: len(self.iters) < MAX_OPEN)
    @rule(start=bounds, end=bounds, reverse=st.booleans())
    def open_scan(self, start: bytes | None, end: bytes | None, reverse: bool) -> None:
        it = self.db.scan(start, end, reverse=reverse)
        self._opened(OpenIter(it, self.expected(start, end, reverse), start, end, reverse))

    @precondition(lambda self: len(self.iters) < MAX_OPEN)
    @rule(prefix=prefixes, reverse=st.booleans())
    def open_prefix(self, prefix: bytes, reverse: bool) -> None:
        it = self.db.scan_prefix(prefix, reverse=reverse)
        end = prefix.rstrip(b"\xff")
        end = end[:-1] + bytes([end[-1] + 1]) if end else None
        rows = [(k, v) for k, v in self.expected(prefix, None, reverse) if k.startswith(prefix)]
        self._opened(OpenIter(it, rows, prefix, end, reverse))

    def _opened(self, o: OpenIter) -> None:
        m = self.db.manifest()[1]
        runs = sum(len(r.views) for r in m.compacted)
        l0 = f"{min(len(m.l0), 3)}{'+' if len(m.l0) > 3 else ''}"
        event(f"iterator opened over L0 SSTs: {l0}, run SSTs: {_bucket(runs, 5)}")
        event(f"iterator opened with rows: {_bucket(len(o.rows), 10, 100)}")
        self.iters.append(o)

    def _pick(self, data: st.DataObject) -> OpenIter:
        return self.iters[data.draw(st.integers(0, len(self.iters) - 1), label="iterator")]

    @precondition(lambda self: self.iters)
    @rule(data=st.data(), times=st.integers(1, 5))
    def advance(self, data: st.DataObject, times: int) -> None:
        o = self._pick(data)
        for _ in range(times):
            if o.pos < len(o.rows):
                o.took([next(o.it)])
            else:
                with pytest.raises(StopIteration):
                    next(o.it)

    @precondition(lambda self: self.iters)
    @rule(data=st.data(), n=st.integers(1, 40))
    def advance_batch(self, data: st.DataObject, n: int) -> None:
        o = self._pick(data)
        got = o.it.next_batch(n)
        assert len(got) == min(n, len(o.rows) - o.pos), o.describe()
        o.took(got)

    @precondition(lambda self: self.iters)
    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        o = self._pick(data)
        o.took(list(o.it))
        assert o.pos == len(o.rows)
        assert o.it.next_batch(5) == []

    @precondition(lambda self: self.iters)
    @rule(data=st.data())
    def seek(self, data: st.DataObject) -> None:
        o = self._pick(data)
        ahead = o.keys[o.pos :]
        candidates = keys if not ahead else st.sampled_from(ahead) | keys
        if o.last is not None:
            candidates = candidates | st.just(o.last)  # not strictly after: invalid
        target = data.draw(candidates, label="seek to")
        if o.seek_valid(target):
            event("seek: valid")
            o.it.seek(target)
            o.sought = target
            if not o.reverse:
                o.pos = max(o.pos, bisect.bisect_left(o.keys, target))
        else:
            event("seek: invalid (reverse)" if o.reverse else "seek: invalid")
            with pytest.raises(InvalidArgumentError):
                o.it.seek(target)
        # Either way the iterator goes on from where the model says.
        if o.pos < len(o.rows):
            o.took([next(o.it)])
        else:
            assert o.it.next_batch(3) == []

    @precondition(lambda self: self.iters)
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        self.iters.remove(self._pick(data))

    @rule(start=bounds, end=bounds)
    def reverse_equals_forward(self, start: bytes | None, end: bytes | None) -> None:
        forward = list(self.db.scan(start, end))
        assert forward == self.expected(start, end, False)
        assert list(self.db.scan(start, end, reverse=True)) == forward[::-1]

    def teardown(self) -> None:
        self.iters.clear()
        self.db.close()
        self.tmp.cleanup()


class LocalIteratorModel(IteratorModel):
    store_kind = "local"


TestIteratorModelMemory = IteratorModel.TestCase
TestIteratorModelMemory.settings = settings(stateful_step_count=80, deadline=None)
TestIteratorModelLocal = LocalIteratorModel.TestCase
# The model and the rules are the same on both stores; the local folder adds its read path
# (pread): fewer examples there (each costs about twice the memory store's).
TestIteratorModelLocal.settings = settings(stateful_step_count=80, deadline=None, max_examples=15)
