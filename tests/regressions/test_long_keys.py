"""Keys at (and near) the 65,535-byte limit, through every stage of a row's life, on every store.

The regression: an SST whose metadata did not fit the first two reads of an open (a 64 KiB
suffix, then the `SsTableInfo`) could not be opened. `SsTableInfo` holds the SST's first key,
so with a first key of ~65.5 KiB the info alone does not fit the 64 KiB tail; the open then
needs a third read for the index, which holds every block's separator key (each almost as
long as the keys here, so megabytes of index with a small `block_size`). After a reopen (a
cold table cache) `get` raised `TypeError: 'int' object is not an instance of 'SstFile'`.
Before the reopen nothing was read back from the store: a freshly written SST is registered
from memory.

The data here is built so that both L0 SSTs and the first SST of the compacted run have such
metadata (`_assert_metadata_needs_three_reads` checks it, so the test cannot silently stop
covering the bug): long keys share a long filler and differ only in their last bytes
(separators stay as long as the keys), the longest key of a group sorts first (filler `\\x01`
sorts before the digits ending a shorter key), and `block_size` is small.

A key one byte over the limit is refused with `InvalidArgumentError` naming the limit by
everything that takes a key.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import obstore
import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, WriteBatch
from slatedb_py.batch import MAX_KEY
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import InvalidArgumentError
from slatedb_py.format import decode_sst
from slatedb_py.store import Store

TAIL = 64 * 1024  # what an open reads first (rust/src/fetch.rs TAIL_BYTES)

OPTS = DbOptions(
    flush_interval=None,
    block_size=1024,  # every long row is a block of its own: one ~64 KiB index key per row
    min_filter_keys=10,  # bloom filters over the long keys too
    max_sst_size=1024 * 1024,  # the compaction output is a sorted run of several SSTs
    compactor_enabled=False,
    gc_enabled=False,
)
NO_POLL = ReaderOptions(manifest_poll_interval=None)

# Lengths of the long keys of a group, cycled: the limit itself, just under it, down to 65,000.
LENGTHS = [MAX_KEY, MAX_KEY - 1, MAX_KEY - 2, 65_500, 65_432, 65_300, 65_100, 65_000]


def long_key(group: bytes, n: int, length: int) -> bytes:
    """`group` + filler + a 6-digit suffix, `length` bytes. Keys of one group share all but
    their last bytes, so the shortest separator between two of them is nearly a whole key; a
    longer key sorts before a shorter one of its group (the filler sorts before the digits)."""
    suffix = b"%06d" % n
    key = group + b"\x01" * (length - len(group) - len(suffix)) + suffix
    assert len(key) == length
    return key


def group(tag: bytes, count: int) -> list[bytes]:
    return [long_key(tag, i, LENGTHS[i % len(LENGTHS)]) for i in range(count)]


A = group(b"A", 16)  # sorts first: A[0] (65,535 bytes) starts both L0s and the sorted run
Z = group(b"z", 16)  # sorts last (after the normal keys too)
Q = group(b"Q", 8)  # added by the second flush; sorts between A and the normal keys
P_SHORT = b"P" * 65_000  # a long key that is a prefix of the next one
P_LONG = b"P" * MAX_KEY
NORMAL = [b"m%05d" % i for i in range(200)]

# Absent keys that sort among the long ones (a bloom filter or index bisect must not match
# them to a neighbour): same filler, a suffix no key has; one byte short of a present key.
ABSENT = [
    long_key(b"A", 999_999, MAX_KEY),
    long_key(b"Q", 999_999, 65_000),
    A[1][:-1],
    P_LONG[:-1],
    b"P" * 64_999,
    b"m99999",
]


def value(key: bytes, gen: int) -> bytes:
    return b"v%d-" % gen + key[:4] + key[-6:]


def _short(rows: Any) -> Any:
    """Keys (and rows) shown by length and ends: a failing comparison of 64 KiB keys stays
    readable."""

    def key(k: bytes) -> str:
        return f"<{len(k)} B {k[:3]!r}..{k[-6:]!r}>" if len(k) > 40 else repr(k)

    out = []
    for r in rows:
        out.append(
            (key(r[0]), r[1]) if isinstance(r, tuple) else key(r) if isinstance(r, bytes) else r
        )
    return out


def same(got: Any, want: Any, what: str) -> None:
    g, w = list(got), list(want)
    if g != w:
        first = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        raise AssertionError(
            f"{what}: {len(g)} results, {len(w)} expected; first difference at {first}: "
            f"got {_short(g[first : first + 3])}, want {_short(w[first : first + 3])}"
        )


def check(db: Any, model: dict[bytes, bytes], where: str) -> None:
    """Every read path of `db` (a Db or a DbReader) against `model`."""
    keys = sorted(model)
    items = [(k, model[k]) for k in keys]
    absent = [k for k in ABSENT if k not in model]

    same([db.get(k) for k in keys], [model[k] for k in keys], f"{where}: get of each key")
    same([db.get(k) for k in absent], [None] * len(absent), f"{where}: get of absent keys")
    probe = [*keys, *absent]
    same(db.get_many(probe), [model.get(k) for k in probe], f"{where}: get_many")

    same(db.scan(), items, f"{where}: forward scan")
    same(db.scan(reverse=True), items[::-1], f"{where}: reverse scan")

    # Bounds that are long keys themselves (start included, end excluded).
    lo, hi = A[2], Z[3]
    inside = [(k, v) for k, v in items if lo <= k < hi]
    same(db.scan(lo, hi), inside, f"{where}: scan between long bounds")
    same(db.scan(lo, hi, reverse=True), inside[::-1], f"{where}: reverse scan between long bounds")

    # Prefixes: a long group's shared filler, and a whole 65,535-byte key.
    a_prefix = b"A" + b"\x01" * 64_000
    want = [(k, v) for k, v in items if k.startswith(a_prefix)]
    assert len(want) >= 8
    same(db.scan_prefix(a_prefix), want, f"{where}: scan_prefix of a long prefix")
    same(db.scan_prefix(a_prefix, reverse=True), want[::-1], f"{where}: reverse scan_prefix")
    same(
        db.scan_prefix(A[0]),
        [(A[0], model[A[0]])],
        f"{where}: scan_prefix of a whole max-length key",
    )
    p_rows = [(k, model[k]) for k in (P_SHORT, P_LONG) if k in model]
    same(db.scan_prefix(P_SHORT), p_rows, f"{where}: scan_prefix of a long key prefixing another")

    # Seek: to a present long key (from the middle of a scan), to an absent one (lands on
    # the next key).
    it = db.scan()
    same([next(it)], items[:1], f"{where}: first row")
    target = min(k for k in Z if k in model)
    at = keys.index(target)
    it.seek(target)
    same(it.next_batch(2), items[at : at + 2], f"{where}: seek to a present long key")
    it = db.scan()
    it.seek(ABSENT[0])
    after = next(i for i, k in enumerate(keys) if k > ABSENT[0])
    same(it, items[after:], f"{where}: seek to an absent long key, and the rest")


def _sst_infos(store: Any) -> dict[str, Any]:
    s = Store.resolve(store) if not isinstance(store, Store) else store
    out = {}
    for meta in s.list("db/compacted/"):
        data = bytes(obstore.get(s.inner, meta.path).bytes())
        out[meta.path] = decode_sst(data, name=meta.path).info
    return out


def _assert_metadata_needs_three_reads(infos: Iterable[Any], where: str, *, every: bool) -> None:
    """Every SST's (or at least one's) `SsTableInfo` alone is larger than the first (64 KiB
    tail) read, and its index is larger still: opening it takes the tail, the info, then the
    index."""
    infos = list(infos)
    big = [i for i in infos if i.size - i.metadata_offset > TAIL and i.index_len > 8 * TAIL]
    assert big and (not every or len(big) == len(infos)), (
        f"{where}: {len(big)} of {len(infos)} SSTs have metadata beyond two reads; "
        "the test lost its point"
    )


def test_long_keys_through_flush_compaction_reopen_and_reader(store: Any) -> None:
    model: dict[bytes, bytes] = {}
    db = Db.open("db", store, OPTS)

    # 1. Rows in the memtable and the WAL only.
    for k in [*A, *NORMAL, *Z, P_SHORT, P_LONG]:
        model[k] = value(k, 1)
        db.put(k, model[k], await_durable=False)
    db.flush()
    check(db, model, "memtable")
    with DbReader.open("db", store, options=NO_POLL) as reader:  # replays the WAL
        check(reader, model, "reader over the WAL")

    # 2. The first L0 SST.
    db.flush_memtable()
    check(db, model, "one L0")

    # 3. A second L0: overwrites, deletes (tombstones of long keys), new long keys. A batch
    # holds some of them, so long keys go through WriteBatch too.
    batch = WriteBatch()
    for k in A[::4]:
        model[k] = value(k, 2)
        batch.put(k, model[k])
    for k in Z[::5]:
        del model[k]
        batch.delete(k)
    db.write(batch)
    for k in [*Q, *NORMAL[::7]]:
        model[k] = value(k, 2)
        db.put(k, model[k], await_durable=False)
    db.delete(P_SHORT, await_durable=False)
    del model[P_SHORT]
    db.flush_memtable()
    check(db, model, "two L0s")
    db.close()
    _assert_metadata_needs_three_reads(_sst_infos(store).values(), "L0", every=True)

    # 4. Reopened: every SST is opened from the store (the old TypeError).
    db = Db.open("db", store, OPTS)
    check(db, model, "two L0s after a reopen")
    with DbReader.open("db", store, options=NO_POLL) as reader:
        check(reader, model, "reader over two L0s")

    # 5. Compacted into one sorted run of several SSTs.
    before = set(_sst_infos(store))
    db.compact()
    check(db, model, "compacted")
    db.close()
    outputs = {p: i for p, i in _sst_infos(store).items() if p not in before}
    assert len(outputs) > 1, "a sorted run of several SSTs"
    _assert_metadata_needs_three_reads(outputs.values(), "compaction output", every=False)

    db = Db.open("db", store, OPTS)
    check(db, model, "compacted, after a reopen")
    db.close()
    with DbReader.open("db", store, options=NO_POLL) as reader:
        check(reader, model, "reader over the sorted run")


class _Recording(Store):
    """Records every read of SST data: ("tail", path, length) and ("ranges", path, ranges)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.log: list[tuple[str, str, Any]] = []

    def get_tail(self, path: str, length: int) -> Any:
        self.log.append(("tail", path, length))
        return super().get_tail(path, length)

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        self.log.append(("ranges", path, list(ranges)))
        return super().get_ranges(path, ranges)


def test_cold_open_of_an_sst_whose_metadata_needs_three_reads() -> None:
    """The reads of the old failure, spelled out: one get after a reopen opens the L0 SST with
    the 64 KiB tail, the `SsTableInfo` before it, then the index before that, and only then
    reads a data block."""
    store = _Recording(MemoryStore())
    with Db.open("db", store, OPTS) as db:
        for k in [*A, *NORMAL]:
            db.put(k, value(k, 1), await_durable=False)
    ((path, info),) = _sst_infos(store).items()
    assert info.first_key == A[0] and len(A[0]) == MAX_KEY
    assert info.size - info.metadata_offset > TAIL, "the info alone does not fit the tail"

    store.log.clear()
    with Db.open("db", store, OPTS) as db:
        assert db.get(A[3]) == value(A[3], 1)
        reads = [e for e in store.log if e[1] == path]
        assert reads[0] == ("tail", path, TAIL)
        first_meta = min(info.index_offset, info.filter_offset)
        meta = [r for e in reads[1:] if e[0] == "ranges" for r in e[2] if r[0] >= first_meta]
        data = [r for e in reads[1:] if e[0] == "ranges" for r in e[2] if r[1] <= first_meta]
        assert len(meta) + len(data) == sum(len(e[2]) for e in reads[1:]), reads
        assert len(meta) >= 2, "the info, then the index (it does not fit a 64 KiB tail either)"
        covered = sorted(meta)
        assert covered[0][0] == first_meta and covered[-1][1] == info.size - TAIL
        assert all(a[1] == b[0] for a, b in pairwise(covered)), covered
        assert data, "a data block after the open"
        assert db.get(NORMAL[5]) == value(NORMAL[5], 1)
        assert db.get(long_key(b"A", 999_999, MAX_KEY)) is None


# ---------------------------------------------------------------- one byte over the limit

TOO_LONG = b"k" * (MAX_KEY + 1)


def _refused(call: Any) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        call()
    assert "65535" in str(e.value) and "65536" in str(e.value), str(e.value)[:200]


def test_a_key_over_the_limit_is_refused_everywhere(store: Any) -> None:
    assert MAX_KEY == 65_535
    db = Db.open("db", store, OPTS)
    db.put(b"k" * MAX_KEY, b"at the limit")
    db.put(b"a", b"1")
    db.put(b"z", b"2")
    db.flush()

    _refused(lambda: db.put(TOO_LONG, b"v"))
    _refused(lambda: db.put(TOO_LONG, b"v", await_durable=False))
    _refused(lambda: db.put(bytearray(TOO_LONG), b"v"))
    _refused(lambda: db.put(memoryview(TOO_LONG), b"v"))
    _refused(lambda: db.put(TOO_LONG, b"v", ttl=timedelta(seconds=1)))
    _refused(lambda: db.delete(TOO_LONG))
    _refused(lambda: db.get(TOO_LONG))
    _refused(lambda: db.get_many([TOO_LONG]))
    _refused(lambda: db.get_many([b"a", TOO_LONG]))
    _refused(lambda: db.scan(TOO_LONG))
    _refused(lambda: db.scan(None, TOO_LONG))
    _refused(lambda: db.scan(b"a", TOO_LONG, reverse=True))
    _refused(lambda: db.scan_prefix(TOO_LONG))
    it = db.scan()
    _refused(lambda: it.seek(TOO_LONG))
    _refused(lambda: WriteBatch().put(TOO_LONG, b"v"))
    _refused(lambda: WriteBatch().delete(TOO_LONG))

    with DbReader.open("db", store, options=NO_POLL) as reader:
        _refused(lambda: reader.get(TOO_LONG))
        _refused(lambda: reader.get_many([TOO_LONG]))
        _refused(lambda: reader.scan(TOO_LONG))
        _refused(lambda: reader.scan(None, TOO_LONG))
        _refused(lambda: reader.scan_prefix(TOO_LONG))
        rit = reader.scan()
        _refused(lambda: rit.seek(TOO_LONG))

    # Nothing was written, and the iterators still work after the refused seeks.
    assert list(it) == [(b"a", b"1"), (b"k" * MAX_KEY, b"at the limit"), (b"z", b"2")]
    assert db.get(b"k" * MAX_KEY) == b"at the limit"
    db.close()
    with Db.open("db", store, OPTS) as again:
        assert list(again.scan()) == [(b"a", b"1"), (b"k" * MAX_KEY, b"at the limit"), (b"z", b"2")]
