"""Big and odd inputs to the new read path, and the memtable budget under many writers. These
held when written: they stay as coverage of corners the other suites do not reach."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db
from slatedb_py.config import DbOptions

MAX_KEY = 65_535


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return MemoryStore() if request.param == "memory" else LocalStore(str(tmp_path))


def test_get_many_100k_keys_pages_of_one_and_a_million_and_long_keys(store: Any) -> None:
    """get_many of 100k keys (duplicates, misses) across memtable, L0 and a run; next_batch(1)
    and next_batch(10**6) forward and reverse; a seek one byte below the end; 65535-byte keys
    differing in their last byte through memtable, L0 and compaction."""
    n = 8000
    with Db.open("db", store, DbOptions(flush_interval=None, compactor_enabled=False)) as db:
        for i in range(n):  # even numbers only: odd ones are misses between hits
            db.put(b"k%06d" % (2 * i), b"v%d" % i, await_durable=False)
            if i == 3000:
                db.flush_memtable()
                db.compact()
            if i == 6000:
                db.flush_memtable()
        rng = random.Random(7)
        nums = [rng.randrange(2 * n + 50) for _ in range(100_000)]
        want = [b"v%d" % (x // 2) if x % 2 == 0 and x < 2 * n else None for x in nums]
        assert db.get_many([b"k%06d" % x for x in nums]) == want
        rows = [(b"k%06d" % (2 * i), b"v%d" % i) for i in range(n)]
        it, ones = db.scan(), []
        while page := it.next_batch(1):
            assert len(page) == 1
            ones += page
        assert ones == rows
        assert db.scan().next_batch(10**6) == rows
        assert db.scan(reverse=True).next_batch(10**6) == rows[::-1]
        it = db.scan(b"k000100", b"k000200")
        assert next(it) == (b"k000100", b"v50")
        it.seek(b"k00019\xff")  # the end key minus one byte, past k000198
        assert list(it) == []
        big = [b"a" * (MAX_KEY - 1) + bytes([c]) for c in (1, 2, 3)]
        for k in big:
            db.put(k, b"L" + k[-1:], await_durable=False)
        for stage in ("memtable", "l0", "run"):
            if stage == "l0":
                db.flush_memtable()
            if stage == "run":
                db.compact()
            assert db.get_many([*big, b"a" * MAX_KEY]) == [b"L\x01", b"L\x02", b"L\x03", None], (
                stage
            )
            assert [v for _, v in db.scan(b"a", b"b", reverse=True)] == [
                b"L\x03",
                b"L\x02",
                b"L\x01",
            ], stage
            it = db.scan(b"a", b"b")
            next(it)
            it.seek(big[2])
            assert [v for _, v in it] == [b"L\x03"], stage


@pytest.mark.parametrize("budget", [1, 64 * 1024])
def test_writers_make_progress_under_a_tiny_memtable_budget(budget: int) -> None:
    """`max_unflushed_bytes` far below one row (1 byte) or a few rows: six writers, a third of
    their puts awaiting durability, all finish (no deadlock between freezes, helping flushes
    and group commit) and every row reads back."""
    store = MemoryStore()
    per_thread = 60 if budget == 1 else 300
    with Db.open("db", store, DbOptions(flush_interval=None, max_unflushed_bytes=budget)) as db:
        errors: list[BaseException] = []

        def write(t: int) -> None:
            try:
                for i in range(per_thread):
                    db.put(b"t%d-%05d" % (t, i), b"x" * 500, await_durable=i % 3 == 0)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=write, args=(t,), daemon=True) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "writers stuck under the memtable budget"
        assert errors == []
        assert len(list(db.scan())) == 6 * per_thread
