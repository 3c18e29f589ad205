"""The read API of API.md "Next" on real stores: `scan` (lazy `DbIterator`, reverse, `seek`,
`next_batch`), `scan_prefix` and `get_many`, on `Db` and `DbReader`, with rows in the
memtable, in L0 SSTs and in a sorted run of many SSTs; iterators after close; store failures
in the middle of an iteration; which SSTs a scan opens and how much it reads ahead.

Stores that count or break requests subclass `slatedb_py.store.Store`; such a store is never
read natively (`Store.local_root`), so on a local folder it takes the Python fetch path too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import (
    ClosedError,
    DataError,
    InvalidArgumentError,
    InvalidTypeError,
    UnavailableError,
)
from slatedb_py.store import Store
from tests.support import STORE_KINDS, plain

# Deterministic: no background WAL ticks, compactions or collections. Small blocks and SSTs
# spread a few thousand rows over many blocks, L0 SSTs and sorted-run SSTs.
OPTS = DbOptions(
    flush_interval=None,
    compactor_enabled=False,
    gc_enabled=False,
    block_size=256,
    l0_sst_size_bytes=64 * 1024,
    max_sst_size=2048,
    min_filter_keys=4,
)
READER = ReaderOptions(manifest_poll_interval=None)

Rows = dict[bytes, bytes]


def value(i: int, version: int = 0) -> bytes:
    return b"v%05d.%d." % (i, version) + b"x" * (i % 97)


def layered(db: Db, n: int = 3000) -> Rows:
    """Rows spread over every tier, newest last: a sorted run of many SSTs (even keys), two L0
    SSTs overwriting and deleting some of them and adding odd keys, and the memtable doing
    the same again. Returns the expected contents."""
    model: Rows = {}
    for start in range(0, n, 500):
        b = WriteBatch()
        for i in range(start, min(n, start + 500), 2):
            b.put(b"k%05d" % i, value(i))
            model[b"k%05d" % i] = value(i)
        db.write(b, await_durable=False)
    db.compact()
    for version, step in ((1, 7), (2, 11)):
        for i in range(version, n, step):
            k = b"k%05d" % i
            if i % 3 == 0:
                db.delete(k, await_durable=False)
                model.pop(k, None)
            else:
                db.put(k, value(i, version), await_durable=False)
                model[k] = value(i, version)
        db.flush_memtable()
    for i in range(5, n, 13):  # the memtable
        k = b"k%05d" % i
        if i % 2:
            db.delete(k, await_durable=False)
            model.pop(k, None)
        else:
            db.put(k, value(i, 3), await_durable=False)
            model[k] = value(i, 3)
    m = db.manifest()[1]
    assert len(m.l0) == 2 and len(m.compacted) == 1 and len(m.compacted[0].views) > 20
    return model


def expected(
    model: Rows, start: bytes | None = None, end: bytes | None = None, reverse: bool = False
) -> list[tuple[bytes, bytes]]:
    inside = ((k, v) for k, v in model.items() if start is None or k >= start)
    rows = sorted((k, v) for k, v in inside if end is None or k < end)
    return rows[::-1] if reverse else rows


class Counting(Store):
    """Counts ranged reads (calls and bytes) and SST tail reads; `down` makes every read of
    an object fail like an unreachable store (a transient error the store layer gives up on)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, max_retries=1, base_delay_s=0.0)
        self.ranged_calls = 0
        self.ranged_bytes = 0
        self.tails = 0
        self.down = False

    def _call(self, what: str, path: str, fn: Callable[[], Any]) -> Any:
        def run() -> Any:
            if self.down and what in ("get", "get_ranges"):
                raise ConnectionError(f"injected: store unreachable for {what} {path}")
            return fn()

        return super()._call(what, path, run)

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        out = super().get_ranges(path, ranges)
        self.ranged_calls += 1
        self.ranged_bytes += sum(memoryview(b).nbytes for b in out)
        return out

    def get_tail(self, path: str, length: int) -> Any:
        self.tails += 1
        return super().get_tail(path, length)


@pytest.fixture
def db(store: Any) -> Any:
    with Db.open("db", store, OPTS) as d:
        yield d


# ---------------------------------------------------------------------------------- get_many


def test_get_many_agrees_with_get_in_every_tier(store: Any) -> None:
    with Db.open("db", store, OPTS) as db:
        model = layered(db)
        every = [b"k%05d" % i for i in range(3000)]  # hits in each tier and tombstones
        misses = [b"a", b"k", b"k0000", b"k00000\x00", b"k03000", b"z" * 100]
        ask = every + misses + every[::-7] + [every[10]] * 3
        want = [model.get(k) for k in ask]
        assert [db.get(k) for k in ask] == want
        assert db.get_many(ask) == want
        assert db.get_many(iter(ask[:50])) == want[:50]  # any iterable
        assert db.get_many([bytearray(b"k00002"), memoryview(b"k00004")]) == [
            model.get(b"k00002"),
            model.get(b"k00004"),
        ]
        assert db.get_many([]) == []
        db.flush()  # the memtable's rows reach the WAL, which the reader replays
        with DbReader.open("db", store, options=READER) as reader:
            assert reader.get_many(ask) == want
            assert [reader.get(k) for k in misses] == [None] * len(misses)
            assert reader.get_many([]) == []


def test_get_many_reads_expired_rows_as_absent(store: Any) -> None:
    clock = ManualClock()
    with Db.open("db", store, OPTS, clock=clock) as db:
        ttl = timedelta(milliseconds=500)
        # Run, L0 and memtable each hold a row that expires and one that does not.
        for tier, flush in (("run", "compact"), ("l0", "flush_memtable"), ("mem", None)):
            db.put(b"%s-short" % tier.encode(), b"s", ttl=ttl, await_durable=False)
            db.put(b"%s-long" % tier.encode(), b"l", ttl=timedelta(hours=1), await_durable=False)
            db.put(b"%s-none" % tier.encode(), b"n", await_durable=False)
            if flush:
                getattr(db, flush)()
        tiers, kinds = (b"run", b"l0", b"mem"), (b"short", b"long", b"none")
        ks = [b"%s-%s" % (t, w) for t in tiers for w in kinds]
        assert db.get_many(ks) == [b"s", b"l", b"n"] * 3
        it = db.scan()  # opened before the expiry: reads as of now
        clock.advance(499)
        assert db.get_many(ks) == [b"s", b"l", b"n"] * 3
        clock.advance(1)
        want = [None, b"l", b"n"] * 3
        assert db.get_many(ks) == want == [db.get(k) for k in ks]
        assert db.get_many(ks + ks[:2]) == want + want[:2]
        assert dict(it) == dict(zip(ks, [b"s", b"l", b"n"] * 3, strict=True))
        assert dict(db.scan()) == {k: v for k, v in zip(ks, want, strict=True) if v is not None}


BAD_KEYS = [
    (["k"], InvalidTypeError, "keys[0]"),
    ([b"a", b"b", "c"], InvalidTypeError, "keys[2]"),
    ([b"a", b""], InvalidArgumentError, "keys[1]"),
    ([b"a", b"b", b"c", 7], InvalidTypeError, "keys[3]"),
    ([None], InvalidTypeError, "keys[0]"),
    ([b"a", b"x" * 65_536], InvalidArgumentError, "keys[1]"),
    (5, InvalidTypeError, "iterable"),
    (None, InvalidTypeError, "iterable"),
    (b"abc", InvalidTypeError, "iterable"),  # bytes iterate as ints: refused as a whole
    ("abc", InvalidTypeError, "iterable"),
]


@pytest.mark.parametrize(("keys", "exc", "names"), BAD_KEYS)
def test_get_many_refuses_bad_keys_naming_the_index(
    store: Any, keys: Any, exc: type, names: str
) -> None:
    with Db.open("db", store, OPTS) as db:
        db.put(b"a", b"1")
        with pytest.raises(exc) as e:
            db.get_many(keys)
        assert names in str(e.value)
        with DbReader.open("db", store, options=READER) as reader:
            with pytest.raises(exc) as e:
                reader.get_many(keys)
            assert names in str(e.value)


# ---------------------------------------------------------------------------------- closed


def _opener(kind: str, store: Any) -> Any:
    if kind == "db":
        return Db.open("db", store, OPTS)
    return DbReader.open("db", store, options=READER)


@pytest.mark.parametrize("kind", ["db", "reader"])
def test_iterators_after_close_raise_closed_error(store: Any, kind: str) -> None:
    with Db.open("db", store, OPTS) as db:
        for i in range(50):
            db.put(b"k%02d" % i, b"v", await_durable=False)
    h = _opener(kind, store)
    fresh, fresh_rev, fresh_batch = h.scan(), h.scan(reverse=True), h.scan_prefix(b"k1")
    h.close()
    with pytest.raises(ClosedError):
        next(fresh)
    with pytest.raises(ClosedError):
        fresh_rev.next_batch(3)
    with pytest.raises(ClosedError):
        fresh_batch.seek(b"k15")
    with pytest.raises(ClosedError):
        h.scan()
    with pytest.raises(ClosedError):
        h.get_many([b"k01"])
    with pytest.raises(ClosedError):
        list(fresh)  # and again: still closed, not silently empty


@pytest.mark.parametrize("kind", ["db", "reader"])
def test_started_iterator_after_close_raises_closed_error(kind: str) -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        for i in range(50):
            db.put(b"k%02d" % i, b"v", await_durable=False)
    h = _opener(kind, store)
    it = h.scan()
    assert next(it) == (b"k00", b"v")
    h.close()
    with pytest.raises(ClosedError):
        next(it)  # not (b"k01", b"v") from the rows already paged into Python
    with pytest.raises(ClosedError):
        it.next_batch(10)
    with pytest.raises(ClosedError):
        list(it)


# ------------------------------------------------------------------------- store failures


def _compacted_db(inner: Any, n: int = 3000) -> list[tuple[bytes, bytes]]:
    """A closed database holding `n` rows in one sorted run of ~150 small SSTs."""
    with Db.open("db", inner, OPTS) as db:
        for start in range(0, n, 500):
            b = WriteBatch()
            for i in range(start, min(n, start + 500)):
                b.put(b"k%05d" % i, value(i))
            db.write(b, await_durable=False)
        db.compact()
        assert len(db.manifest()[1].compacted[0].views) > 100
    return [(b"k%05d" % i, value(i)) for i in range(n)]


def _take(it: Any, how: str) -> list[tuple[bytes, bytes]]:
    """One step of an iteration: a row, or a batch."""
    if how == "next":
        try:
            return [next(it)]
        except StopIteration:
            return []
    return it.next_batch(37)


# Every step kind in both directions on the memory store; on the others (whose only part
# here is where the database lives: the failing reads are `Counting`'s, in Python on every
# store) each step kind once, one of them reversed.
FAILURE_CASES = [
    (kind, how, reverse)
    for kind in STORE_KINDS
    for how in ("next", "next_batch")
    for reverse in (False, True)
    if kind == "memory" or reverse == (how == "next_batch")
]


@pytest.mark.parametrize(("store", "how", "reverse"), FAILURE_CASES, indirect=["store"])
def test_store_failure_mid_iteration_raises_then_resumes_exactly(
    store: Any, how: str, reverse: bool
) -> None:
    """The store goes down mid-scan: the iteration raises UnavailableError naming the SST it
    could not read (it does not just end short); once the store is back, the same iterator
    yields exactly the rows it had not returned yet."""
    rows = _compacted_db(store)
    want = rows[::-1] if reverse else rows
    counting = Counting(store)
    with Db.open("db", counting, OPTS) as db:
        it = db.scan(reverse=reverse)
        got: list[tuple[bytes, bytes]] = []
        while len(got) < 1200:
            got += _take(it, how)
        counting.down = True
        with pytest.raises(UnavailableError) as e:
            for _ in range(len(want)):
                got += _take(it, how)
        assert "db/compacted/" in str(e.value) and ".sst" in str(e.value)
        assert 1200 <= len(got) < len(want)
        with pytest.raises(UnavailableError):  # still down: fails again, returns nothing
            _take(it, how)
        counting.down = False
        while step := _take(it, how):
            got += step
        assert [k for k, _ in got] == [k for k, _ in want]
        assert got == want
        assert _take(it, how) == []


def test_seek_after_a_failed_fetch_yields_no_row_below_the_target() -> None:
    inner = MemoryStore()
    rows = _compacted_db(inner)
    counting = Counting(inner)
    with Db.open("db", counting, OPTS) as db:
        from slatedb_py.read_path import SCAN_PAGE

        assert len(rows) > SCAN_PAGE + 100
        it = db.scan()
        got = [next(it) for _ in range(SCAN_PAGE)]  # exactly the first page
        counting.down = True
        with pytest.raises(UnavailableError):
            next(it)  # the native scan merges some rows of the next page, then cannot fetch
        counting.down = False
        target = rows[SCAN_PAGE + 76][0]
        it.seek(target)  # past every key returned
        rest = list(it)
        # Yields the rows merged before the failure (k01024..k01034) ahead of the target.
        assert got + rest == rows[:SCAN_PAGE] + rows[SCAN_PAGE + 76 :]


def test_corrupt_block_mid_scan_is_a_data_error_naming_the_sst() -> None:
    import obstore

    inner = MemoryStore()
    rows = _compacted_db(inner)
    with Db.open("db", inner, OPTS) as db:
        views = db.manifest()[1].compacted[0].views
    victim = f"db/compacted/{views[len(views) // 2].sst.id}.sst"
    data = bytearray(obstore.get(inner, victim).bytes())
    data[10] ^= 0xFF  # inside its first data block
    obstore.put(inner, victim, bytes(data))
    with Db.open("db", inner, OPTS) as db:
        it = db.scan()
        got: list[tuple[bytes, bytes]] = []
        with pytest.raises(DataError) as e:
            while b := it.next_batch(50):
                got += b
        assert e.value.object == victim and victim in str(e.value)
        assert 0 < len(got) < len(rows) and got == rows[: len(got)]


# ------------------------------------------------------------------ laziness and locality


def test_a_scan_opens_only_the_ssts_its_range_needs(store: Any) -> None:
    with Db.open("db", store, OPTS) as db:
        for i in range(40):
            db.put(b"a%04d" % i, b"x" * 50, await_durable=False)
        db.compact()  # a run over a*; then the k* run replaces it with both
        b = WriteBatch()
        for i in range(2000):
            b.put(b"k%05d" % i, value(i))
        db.write(b, await_durable=False)
        db.compact()
        for p in (b"m", b"p"):  # two L0 SSTs with key ranges of their own
            for i in range(40):
                db.put(p + b"%04d" % i, b"y" * 50, await_durable=False)
            db.flush_memtable()
        m = db.manifest()[1]
        total = len(m.l0) + sum(len(r.views) for r in m.compacted)
        assert len(m.l0) == 2 and total > 50
    cases: list[tuple[Callable[[Db], Any], int, int]] = [
        # (scan, rows, most SSTs it may open)
        (lambda d: d.scan(b"k01000", b"k01010"), 10, 2),
        (lambda d: d.scan(b"k01000", b"k01010", reverse=True), 10, 2),
        (lambda d: d.scan_prefix(b"p"), 40, 1),
        (lambda d: d.scan_prefix(b"m", reverse=True), 40, 1),
        (lambda d: d.scan(b"k01999", b"m0001"), 2, 3),
        (lambda d: d.scan(b"n", b"o"), 0, 0),
    ]
    for scan, n, most in cases:
        with Db.open("db", store, OPTS) as fresh:
            assert fresh._tables.native.open_count() == 0
            assert len(list(scan(fresh))) == n
            assert fresh._tables.native.open_count() <= most
    with Db.open("db", store, OPTS) as fresh:
        assert len(list(fresh.scan())) == 40 + 2000 + 80
        assert fresh._tables.native.open_count() == total


def test_a_big_scan_reads_lazily_as_it_is_consumed() -> None:
    """300,000 rows (~16 MB of SSTs) in one sorted run: the first row comes after a few
    ranged reads, and at every point of a full scan what was read from the store stays within
    a few MiB of what was consumed: the iterator streams, it does not load the range."""
    inner = MemoryStore()
    n = 300_000
    opts = replace(OPTS, block_size=4096, l0_sst_size_bytes=8 << 20, max_sst_size=1 << 20)
    with Db.open("db", inner, opts) as db:
        for start in range(0, n, 10_000):
            b = WriteBatch()
            for i in range(start, start + 10_000):
                b.put(b"key%08d" % i, b"%040d" % i)
            db.write(b, await_durable=False)
        db.compact()
        views = db.manifest()[1].compacted[0].views
        assert len(views) >= 10
    total = sum(v.sst.info.estimated_size for v in views)
    counting = Counting(inner)
    with Db.open("db", counting, opts) as db:
        it = db.scan()
        assert next(it) == (b"key%08d" % 0, b"%040d" % 0)
        assert counting.ranged_calls <= 3 and counting.tails <= 2
        assert counting.ranged_bytes <= 2 << 20 < total // 4
        row_bytes = total / n
        seen = 1
        lead = 0.0
        while batch := it.next_batch(5000):
            assert batch[0][0] == b"key%08d" % seen
            seen += len(batch)
            lead = max(lead, counting.ranged_bytes - seen * row_bytes)
        assert seen == n
        assert lead < 4 << 20, f"read {lead / 2**20:.1f} MiB ahead of the consumer"
        assert counting.ranged_bytes >= total * 0.9
        # A narrow scan in the middle reads about a block, not the run.
        before = counting.ranged_bytes
        got = [k for k, _ in db.scan(b"key00150000", b"key00150003")]
        assert got == [b"key%08d" % i for i in range(150_000, 150_003)]
        assert counting.ranged_bytes - before <= 1 << 20


@pytest.mark.parametrize("kind", ["db", "reader"])
def test_dropped_iterators_and_their_database_are_freed(kind: str) -> None:
    """An iterator and its native page cursor form a reference cycle (the cursor's page
    loader is the iterator's method): the collector must see through the native half, or
    every abandoned iterator keeps its view (memtables, SST handles and, on a local folder,
    their file descriptors) and its database alive."""
    import gc
    import weakref

    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        db.put(b"a", b"1", await_durable=False)
    h = _opener(kind, store)
    it = h.scan()
    assert next(it) == (b"a", b"1")
    untouched = h.scan_prefix(b"a")
    refs = [weakref.ref(it), weakref.ref(untouched)]
    del it, untouched
    gc.collect()
    assert [r() for r in refs] == [None, None], "a dropped iterator stays alive"
    h.close()
    handle = weakref.ref(h)
    del h
    gc.collect()
    assert handle() is None, "a closed, dropped database stays alive"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_scan_over_more_ssts_than_the_fd_limit_works_on_a_local_folder(tmp_path: Any) -> None:
    import resource

    from obstore.store import LocalStore

    store = LocalStore(str(tmp_path))
    rows = _compacted_db(store)  # ~270 SSTs
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with Db.open("db", store, OPTS) as db:
        headroom = len(os.listdir("/proc/self/fd")) + 64
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(headroom, hard), hard))
        try:
            n = sum(1 for _ in db.scan())
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert n == len(rows)


# ------------------------------------------------------------------ reverse, prefix, seek

RANGES = [
    (None, None),
    (b"k01000", b"k02000"),
    (b"k00000", b"k00001"),
    (None, b"k00500"),
    (b"k02500", None),
    (b"k01234\x00", b"k01300\xff"),
    (b"k02000", b"k01000"),  # empty
    (b"k", b"l"),
    (b"a", b"b"),
]


def test_reverse_scans_equal_reversed_forward_scans(store: Any) -> None:
    with Db.open("db", store, OPTS) as db:
        model = layered(db)
        for start, end in RANGES:
            forward = list(db.scan(start, end))
            assert forward == expected(model, start, end)
            assert list(db.scan(start, end, reverse=True)) == forward[::-1]
            # In batches too, and mixing next() and next_batch().
            it = db.scan(start, end, reverse=True)
            got = []
            while True:
                try:
                    got.append(next(it))
                except StopIteration:
                    break
                got += it.next_batch(333)
            assert got == forward[::-1]
        for p in (b"k", b"k01", b"k012", b"k02999", b"k9", b"\xff"):
            forward = list(db.scan_prefix(p))
            assert forward == [(k, v) for k, v in expected(model) if k.startswith(p)]
            assert list(db.scan_prefix(p, reverse=True)) == forward[::-1]


def test_prefix_scans_at_the_top_of_the_byte_order(db: Db) -> None:
    keys = [b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff", b"\xfe\xff", b"a\xff", b"b"]
    for k in keys:
        db.put(k, k, await_durable=False)
    db.flush_memtable()
    for p in (b"\xff", b"\xff\xff", b"\xfe", b"a\xff"):
        want = sorted((k, k) for k in keys if k.startswith(p))
        assert list(db.scan_prefix(p)) == want
        assert list(db.scan_prefix(p, reverse=True)) == want[::-1]


def test_seek_semantics(store: Any) -> None:
    with Db.open("db", store, OPTS) as db:
        model = layered(db)
        rows = expected(model, b"k00100", b"k02900")
        keys = [k for k, _ in rows]
        assert len(rows) > 1400  # more than the page of 1024 rows a next() brings into Python
        it = db.scan(b"k00100", b"k02900")
        assert next(it) == rows[0]
        # Inside the page already in Python, to a key that exists and to one between keys.
        it.seek(keys[10])
        assert next(it) == rows[10]
        it.seek(keys[20] + b"\x00")
        assert next(it) == rows[21]
        # Refused: behind or at the last key returned, below start, at or past end; each
        # leaves the iterator where it was.
        for bad in (keys[21], keys[5], b"k00099", b"k00100", b"k02900", b"k02901", b"z"):
            with pytest.raises(InvalidArgumentError):
                it.seek(bad)
        assert next(it) == rows[22]
        # Far ahead, past the rows in Python (a native seek), then twice more.
        it.seek(keys[1100])
        assert it.next_batch(3) == rows[1100:1103]
        it.seek(keys[1200])
        it.seek(keys[1300])  # twice without reading: the later target wins
        assert next(it) == rows[1300]
        with pytest.raises(InvalidTypeError):
            it.seek("k02000")
        with pytest.raises(InvalidArgumentError):
            it.seek(b"")
        it.seek(keys[-1])
        assert list(it) == rows[-1:]
        it.seek(b"k02899\xff")  # past the last row, still inside the range: just the end
        assert it.next_batch(10) == []
        # An iterator that never returned a row may seek anywhere in its range.
        it = db.scan(b"k00100", b"k02900")
        it.seek(b"k00100")
        assert next(it) == rows[0]
        it = db.scan()
        it.seek(b"k02999")
        assert list(it) == expected(model, b"k02999")
        # Reverse iterators do not seek; neither direction after its end breaks anything.
        rit = db.scan(b"k00100", b"k02900", reverse=True)
        with pytest.raises(InvalidArgumentError):
            rit.seek(b"k01000")
        assert next(rit) == rows[-1]
        with pytest.raises(InvalidArgumentError):
            db.scan_prefix(b"k01", reverse=True).seek(b"k0105")
        # An empty range refuses every target.
        with pytest.raises(InvalidArgumentError):
            db.scan(b"k2", b"k1").seek(b"k15")


def test_seek_on_prefix_scans(db: Db) -> None:
    for i in range(300):
        db.put(b"user:%04d" % i, b"u", await_durable=False)
        db.put(b"item:%04d" % i, b"i", await_durable=False)
    db.flush_memtable()
    it = db.scan_prefix(b"user:")
    it.seek(b"user:0250")
    assert [k for k, _ in it] == [b"user:%04d" % i for i in range(250, 300)]
    it = db.scan_prefix(b"user:")
    with pytest.raises(InvalidArgumentError):
        it.seek(b"user;")  # the prefix's end
    with pytest.raises(InvalidArgumentError):
        it.seek(b"item:0001")


def test_scan_arguments_are_checked(db: Db) -> None:
    db.put(b"a", b"1")
    for args, kw, exc in [
        ((b"a", "z"), {}, InvalidTypeError),
        (("a",), {}, InvalidTypeError),
        ((b"",), {}, InvalidArgumentError),
        ((None, b""), {}, InvalidArgumentError),
        ((), {"reverse": "yes"}, InvalidTypeError),
        ((), {"reverse": 1}, InvalidTypeError),
    ]:
        with pytest.raises(exc):
            db.scan(*args, **kw)
    with pytest.raises(InvalidTypeError):
        db.scan_prefix("a")
    assert list(db.scan(bytearray(b"a"), memoryview(b"b"))) == [(b"a", b"1")]
    it = db.scan()
    for bad in (0, -1, "5", None, 2.5, True):  # a positive int, or a slatedb_py error
        with pytest.raises(InvalidArgumentError):
            it.next_batch(bad)
    assert it.next_batch(1) == [(b"a", b"1")]
    assert it.next_batch(1) == []


# ------------------------------------------------------------------ snapshots under writes


def test_an_open_iterator_keeps_its_snapshot_through_writes_flushes_and_compactions(
    store: Any,
) -> None:
    """Memtable rows are read a chunk at a time while writes go on into the same memtable:
    overwrites, deletes and new keys both ahead of and behind the cursor, L0 flushes and a
    full compaction happen while iterators are part way through."""
    with Db.open("db", store, replace(OPTS, l0_sst_size_bytes=16 << 20)) as db:
        model: Rows = {}
        for i in range(0, 4000, 2):
            db.put(b"k%05d" % i, value(i), await_durable=False)
            model[b"k%05d" % i] = value(i)
        snapshot = dict(model)
        fwd, rev, mid = db.scan(), db.scan(reverse=True), db.scan(b"k01000", b"k03000")
        got_f, got_r, got_m = fwd.next_batch(10), rev.next_batch(10), [next(mid)]
        for round_ in range(8):
            for i in range(round_, 4000, 9):
                k = b"k%05d" % i
                if i % 4 == 0:
                    db.delete(k, await_durable=False)
                    model.pop(k, None)
                else:
                    db.put(k, value(i, round_ + 1), await_durable=False)
                    model[k] = value(i, round_ + 1)
            if round_ == 3:
                db.flush_memtable()
            if round_ == 6:
                db.compact()
            got_f += fwd.next_batch(150)
            got_r += rev.next_batch(150)
            got_m.append(next(mid))
            if round_ == 4:
                mid.seek(b"k02000")
        got_f += list(fwd)
        got_r += list(rev)
        got_m += list(mid)
        assert got_f == expected(snapshot)
        assert got_r == expected(snapshot, reverse=True)
        head = expected(snapshot, b"k01000", b"k03000")[:6]
        assert got_m == head + expected(snapshot, b"k02000", b"k03000")
        assert list(db.scan()) == expected(model)
        assert db.get_many(list(snapshot)) == [model.get(k) for k in snapshot]


# ------------------------------------------------------------------ DbReader parity


def _walk(h: Any) -> list[Any]:
    """Everything the read API answers on one handle, for comparing Db and DbReader."""
    out: list[Any] = []
    for start, end in RANGES:
        out.append(list(h.scan(start, end)))
        out.append(list(h.scan(start, end, reverse=True)))
    for p in (b"k01", b"k0299", b"x"):
        out.append(list(h.scan_prefix(p)))
        out.append(list(h.scan_prefix(p, reverse=True)))
    it = h.scan(b"k00500", b"k02500")
    out.append(it.next_batch(5))
    it.seek(b"k00600")
    out.append(next(it))
    it.seek(b"k02000\x01")
    out.append(it.next_batch(20))
    with pytest.raises(InvalidArgumentError):
        it.seek(b"k00601")
    out.append(list(it))
    with pytest.raises(InvalidArgumentError):
        h.scan(reverse=True).seek(b"k01")
    ks = [b"k%05d" % i for i in range(0, 3100, 3)] + [b"k00005", b"k00005", b"nope"]
    out.append(h.get_many(ks))
    out.append([h.get(k) for k in ks])
    return out


def test_db_reader_reads_like_the_db(store: Any) -> None:
    with Db.open("db", store, OPTS) as db:
        model = layered(db)
        db.flush()  # the reader sees the memtable's rows through the WAL
        want = _walk(db)
        assert want[0] == expected(model)
        with DbReader.open("db", store, options=READER) as reader:
            assert _walk(reader) == want
    with DbReader.open("db", store, options=READER) as reader:  # after close: all in SSTs
        assert _walk(reader) == want


# ------------------------------------------------------------------ projected views


def test_projected_clone_views_limit_every_read_to_their_range(store: Any) -> None:
    """SlateDB's projected clones restrict a clone's SST views to a key range
    (`SstView.visible_range`). `admin.create_clone` takes no range, so the clone's manifest is
    edited here to what such a clone holds: every view limited to [k00700, k02300)."""
    from slatedb_py.manifest.model import EXCLUDED, INCLUDED, BytesBound
    from slatedb_py.manifest.store import ManifestStore
    from slatedb_py.paths import DbPaths

    with Db.open("parent", store, OPTS) as db:
        model = layered(db)
    admin.create_clone("clone", "parent", store)
    lo, hi = b"k00700", b"k02300"
    rng = (BytesBound(INCLUDED, lo), BytesBound(EXCLUDED, hi))

    def project(m: Any) -> Any:
        if all(v.visible_range == rng for v in m.all_views()):
            return None
        return replace(
            m,
            l0=tuple(replace(v, visible_range=rng) for v in m.l0),
            compacted=tuple(
                replace(r, views=tuple(replace(v, visible_range=rng) for v in r.views))
                for r in m.compacted
            ),
        )

    ManifestStore(Store.resolve(store), DbPaths.of("clone")).update(plain(project))
    inside = {k: v for k, v in model.items() if lo <= k < hi}
    with DbReader.open("clone", store, options=READER) as reader:
        assert list(reader.scan()) == expected(inside)
        assert list(reader.scan(reverse=True)) == expected(inside, reverse=True)
        assert list(reader.scan(b"k00600", b"k00800")) == expected(inside, b"k00600", b"k00800")
        tail = list(reader.scan(b"k02200", None, reverse=True))
        assert tail == expected(inside, b"k02200", reverse=True)
        assert list(reader.scan_prefix(b"k001")) == []
        ks = [b"k%05d" % i for i in range(0, 3000, 7)]
        assert reader.get_many(ks) == [inside.get(k) for k in ks] == [reader.get(k) for k in ks]
        it = reader.scan()
        it.seek(b"k02299")
        assert list(it) == expected(inside, b"k02299")
    with Db.open("clone", store, OPTS) as clone:  # the writer reads through the same views
        assert list(clone.scan()) == expected(inside)
        clone.put(b"k00001", b"new")
        assert clone.get_many([b"k00001", b"k00002"]) == [b"new", None]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_closing_a_db_on_a_local_folder_closes_its_sst_files(tmp_path: Any) -> None:
    from obstore.store import LocalStore

    store = LocalStore(str(tmp_path))
    rows = _compacted_db(store)

    def sst_files() -> int:  # this database's SSTs only: other tests' handles may linger
        return sum(
            1
            for fd in os.listdir("/proc/self/fd")
            if _target(fd).startswith(str(tmp_path)) and ".sst" in _target(fd)
        )

    db = Db.open("db", store, OPTS)
    assert sum(1 for _ in db.scan()) == len(rows)
    assert 0 < sst_files() <= 256  # the handle's cap on open SST files
    db.close()
    assert sst_files() == 0


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
