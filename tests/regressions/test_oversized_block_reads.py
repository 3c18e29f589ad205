"""A read must never depend on the block cache keeping a block.

`get()` looped forever when a data block was larger than the block cache (or the cache was
0 bytes): the cache dropped the fetched block, the lookup asked for it again, and so on.
With a small cache, concurrent gets could also evict each other's blocks between the fetch
and the retry. Each read now keeps the blocks it fetched in its own native `BlockSet` and
looks there before the shared cache; scans no longer fall back to a whole-object GET.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from obstore.store import MemoryStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.store import Store

T = TypeVar("T")
NO_POLL = ReaderOptions(manifest_poll_interval=None)


def within(seconds: float, fn: Callable[[], T]) -> T:
    """`fn()`, failing the test instead of hanging when it takes longer than `seconds`."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as e:  # handed to the test thread
            out.append((False, e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"read did not finish within {seconds} s (looping on the block cache?)"
    ok, value = out[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class CountingStore(Store):
    """Counts the ranged reads (one per block fetch batch)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.range_reads = 0
        self.whole_reads = 0
        self._count = threading.Lock()

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        with self._count:
            self.range_reads += 1
        return super().get_ranges(path, ranges)

    def get(self, path: str) -> bytes | None:
        if "/compacted/" in path:
            with self._count:
                self.whole_reads += 1
        return super().get(path)


def _rows(n: int) -> dict[bytes, bytes]:
    return {b"key%05d" % i: b"value-%05d-" % i + b"x" * 40 for i in range(n)}


def test_get_and_scan_with_a_zero_byte_block_cache(store) -> None:
    rows = _rows(300)
    opts = DbOptions(block_cache_bytes=0, flush_interval=None)
    db = Db.open("db", store, opts)
    for k, v in rows.items():
        db.put(k, v, await_durable=False)
    db.flush_memtable()
    assert within(10, lambda: db.get(b"key00007")) == rows[b"key00007"]
    assert within(10, lambda: db.get(b"key00299")) == rows[b"key00299"]
    assert within(10, lambda: db.get(b"key00007x")) is None
    assert within(10, lambda: dict(db.scan())) == rows
    db.close()

    with Db.open("db", store, opts) as again:
        assert within(10, lambda: again.get(b"key00150")) == rows[b"key00150"]
        assert within(10, lambda: dict(again.scan(b"key00100", b"key00200"))) == {
            k: v for k, v in rows.items() if b"key00100" <= k < b"key00200"
        }
    no_cache = ReaderOptions(manifest_poll_interval=None, block_cache_bytes=0)
    reader = DbReader.open("db", store, options=no_cache)
    try:
        assert within(10, lambda: reader.get(b"key00042")) == rows[b"key00042"]
        assert within(10, lambda: dict(reader.scan())) == rows
    finally:
        reader.close()


def test_value_larger_than_the_block_cache_reads_back() -> None:
    store = CountingStore(MemoryStore())
    big = bytes(random.Random(7).randbytes(100 * 1024))
    opts = DbOptions(block_cache_bytes=1024, flush_interval=None)
    with Db.open("db", store, opts) as db:
        db.put(b"a", b"small")
        db.put(b"big", big)
        db.put(b"c", b"small")
        db.flush_memtable()
        assert within(10, lambda: db.get(b"big")) == big
    with Db.open("db", store, opts) as db:
        assert within(10, lambda: db.get(b"big")) == big
        assert within(10, lambda: db.get(b"c")) == b"small"
        assert within(10, lambda: dict(db.scan())) == {b"a": b"small", b"big": big, b"c": b"small"}
        db.compact()
        assert within(10, lambda: db.get(b"big")) == big
    tiny_cache = ReaderOptions(manifest_poll_interval=None, block_cache_bytes=1024)
    reader = DbReader.open("db", store, options=tiny_cache)
    try:
        assert within(10, lambda: reader.get(b"big")) == big
        assert within(10, lambda: dict(reader.scan(b"b", b"c"))) == {b"big": big}
    finally:
        reader.close()
    assert store.whole_reads == 0, "a scan must read blocks, not whole SSTs"


def test_65_mib_value_with_default_options() -> None:
    store = MemoryStore()
    big = b"\x5a" * (65 * 1024 * 1024)  # one block larger than the default 64 MiB cache
    with Db.open("db", store, DbOptions(flush_interval=None)) as db:
        db.put(b"big", big)
    with Db.open("db", store) as db:
        assert within(60, lambda: db.get(b"big")) == big
        assert within(60, lambda: dict(db.scan())) == {b"big": big}
    reader = DbReader.open("db", store, options=NO_POLL)
    try:
        assert within(60, lambda: reader.get(b"big")) == big
    finally:
        reader.close()


def _concurrent_gets(db: Db, rows: dict[bytes, bytes], threads: int, per_thread: int) -> None:
    keys = sorted(rows)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(per_thread):
                k = rng.choice(keys)
                got = db.get(k)
                assert got == rows[k], (k, got)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + 30
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in ts), "concurrent gets did not finish (livelock?)"
    assert not errors, errors[0]


def test_concurrent_gets_with_a_cache_smaller_than_a_block() -> None:
    store = CountingStore(MemoryStore())
    rows = _rows(2000)
    opts = DbOptions(block_cache_bytes=512, flush_interval=None)
    with Db.open("db", store, opts) as db:
        for k, v in rows.items():
            db.put(k, v, await_durable=False)
    with Db.open("db", store, opts) as db:
        _concurrent_gets(db, rows, threads=8, per_thread=50)


def test_concurrent_gets_fetch_each_block_once_per_read_with_a_one_block_cache() -> None:
    """Readers that evict each other's blocks still finish, with one fetch per block they
    need: a fetched block is kept by the read that fetched it, whatever the cache does."""
    import sys

    store = CountingStore(MemoryStore())
    rows = _rows(3000)
    opts = DbOptions(block_cache_bytes=6000, flush_interval=None)  # about one 4 KiB block
    with Db.open("db", store, opts) as db:
        for k, v in rows.items():
            db.put(k, v, await_durable=False)
        db.compact()  # one SST: a present key needs one block (two when it starts a block)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as much as possible
    try:
        with Db.open("db", store, opts) as db:
            before = store.range_reads
            threads, per_thread = 8, 100
            _concurrent_gets(db, rows, threads=threads, per_thread=per_thread)
            fetches = store.range_reads - before
    finally:
        sys.setswitchinterval(old)
    gets = threads * per_thread
    assert fetches <= 2 * gets, f"{fetches} block fetches for {gets} gets"
