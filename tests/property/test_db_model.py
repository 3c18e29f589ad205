"""The database against a dict model: a hypothesis state machine of put, delete, batch,
put_many and delete_many, ttl, flush, L0 flush, time passing and close-and-reopen, on
MemoryStore and a local folder; a variant keeps thousands of rows in its memtable, written
by large batches in key order and in any order."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, WriteBatch
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from tests.support import S3Server

keys = st.binary(min_size=1, max_size=6).map(lambda b: b"k" + b)
values = st.binary(max_size=40)
OPTS = DbOptions(
    flush_interval=None,
    l0_sst_size_bytes=2048,
    block_size=256,
    min_filter_keys=4,
    compaction_min_sources=2,
    compactor_poll_interval=timedelta(milliseconds=5),
    gc_enabled=False,
)


class DbModel(RuleBasedStateMachine):
    store_kind = "memory"
    opts = OPTS

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        if self.store_kind == "s3":
            server = S3Server.get()
            self.store = server.store(server.new_bucket())
        else:
            self.store = MemoryStore() if self.store_kind == "memory" else LocalStore(self.tmp.name)
        self.clock = ManualClock()
        self.db = Db.open("model/db", self.store, self.opts, clock=self.clock)
        # key -> (value, expire_at_ms or None)
        self.model: dict[bytes, tuple[bytes, int | None]] = {}

    def live(self) -> dict[bytes, bytes]:
        now = self.clock.now_ms()
        return {k: v for k, (v, exp) in self.model.items() if exp is None or exp > now}

    @rule(key=keys, value=values, durable=st.booleans())
    def put(self, key: bytes, value: bytes, durable: bool) -> None:
        self.db.put(key, value, await_durable=durable)
        self.model[key] = (value, None)

    @rule(key=keys, value=values, ttl_ms=st.integers(min_value=1, max_value=5000))
    def put_ttl(self, key: bytes, value: bytes, ttl_ms: int) -> None:
        self.db.put(key, value, ttl=timedelta(milliseconds=ttl_ms), await_durable=False)
        self.model[key] = (value, self.clock.now_ms() + ttl_ms)

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        self.db.delete(key, await_durable=False)
        self.model.pop(key, None)

    @rule(ops=st.lists(st.tuples(keys, st.none() | values), min_size=1, max_size=8))
    def batch(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        b = WriteBatch()
        for k, v in ops:
            if v is None:
                b.delete(k)
            else:
                b.put(k, v)
        self.db.write(b)
        for k, v in ops:
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = (v, None)

    @rule(
        pairs=st.lists(st.tuples(keys, values), max_size=12),
        ttl_ms=st.none() | st.integers(min_value=1, max_value=5000),
        durable=st.booleans(),
    )
    def put_many(self, pairs: list[tuple[bytes, bytes]], ttl_ms: int | None, durable: bool) -> None:
        ttl = None if ttl_ms is None else timedelta(milliseconds=ttl_ms)
        ks, vs = [k for k, _ in pairs], [v for _, v in pairs]
        self.db.put_many(ks, vs, ttl=ttl, await_durable=durable)
        for k, v in pairs:  # a later pair of a key wins
            self.model[k] = (v, None if ttl_ms is None else self.clock.now_ms() + ttl_ms)

    @rule(ks=st.lists(keys, max_size=8))
    def delete_many(self, ks: list[bytes]) -> None:
        self.db.delete_many(iter(ks), await_durable=False)
        for k in ks:
            self.model.pop(k, None)

    @rule(
        start=st.integers(min_value=0, max_value=3000),
        n=st.integers(min_value=1, max_value=400),
        step=st.integers(min_value=1, max_value=3),
        value=values,
        shuffled=st.booleans(),
    )
    def bulk_batch(self, start: int, n: int, step: int, value: bytes, shuffled: bool) -> None:
        """Many keys in one batch: ascending (taken whole, appended in order) or not."""
        ks = [b"b%05d" % i for i in range(start, start + n * step, step)]
        if shuffled:
            ks = ks[1::2] + ks[::2]
        b = WriteBatch()
        for k in ks:
            b.put(k, value + k)
        self.db.write(b, await_durable=False)
        for k in ks:
            self.model[k] = (value + k, None)

    @rule(ms=st.integers(min_value=1, max_value=3000))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def flush(self) -> None:
        self.db.flush()

    @rule()
    def flush_memtable(self) -> None:
        self.db.flush_memtable()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = Db.open("model/db", self.store, self.opts, clock=self.clock)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def get_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        assert self.db.get(key) == self.live().get(key)

    @rule(key=keys)
    def get_any(self, key: bytes) -> None:
        assert self.db.get(key) == self.live().get(key)

    @rule(a=keys, b=keys)
    def scan_range(self, a: bytes, b: bytes) -> None:
        want = sorted((k, v) for k, v in self.live().items() if a <= k < b)
        assert list(self.db.scan(a, b)) == want

    @invariant()
    def full_scan_matches(self) -> None:
        assert list(self.db.scan()) == sorted(self.live().items())

    def teardown(self) -> None:
        self.db.close()
        self.tmp.cleanup()


class LocalDbModel(DbModel):
    store_kind = "local"


class BigMemtableDbModel(DbModel):
    """Memtables of thousands of rows: many pages, split by inserts between their rows."""

    opts = replace(OPTS, l0_sst_size_bytes=4 << 20)


class S3DbModel(DbModel):
    store_kind = "s3"


TestDbModelMemory = DbModel.TestCase
TestDbModelLocal = LocalDbModel.TestCase
TestDbModelMemory.settings = settings(stateful_step_count=40, deadline=None)
# The memory store runs the profile's examples; the other stores run the same model and rules
# through their own paths (files, HTTP to moto), which a few examples reach: fewer there.
TestDbModelLocal.settings = settings(stateful_step_count=30, deadline=None, max_examples=15)
TestDbModelBigMemtable = BigMemtableDbModel.TestCase
TestDbModelBigMemtable.settings = settings(stateful_step_count=30, deadline=None, max_examples=30)
TestDbModelS3 = S3DbModel.TestCase
TestDbModelS3.settings = settings(stateful_step_count=20, deadline=None, max_examples=6)
