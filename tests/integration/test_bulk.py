"""Bulk writes and reads from whole arrays: `put_many`, `delete_many` and `get_many` take lists,
numpy arrays (S, V, object, 2-D uint8) and Arrow binary arrays (pyarrow, polars), each in one
crossing; bad input names the first bad index and applies nothing; `atomic` and its limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WalReader, WriteBatch, aio
from slatedb_py.batch import Bulk
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import (
    BulkItemError,
    BulkItemTypeError,
    InvalidArgumentError,
    InvalidTypeError,
)

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def fixed(items: list[bytes]) -> int:
    return max([1, *map(len, items)])


def as_void(items: list[bytes]) -> Any:
    w = fixed(items)
    return np.array([i.ljust(w, b"\0") for i in items], dtype=f"V{w}")


def as_rows(items: list[bytes]) -> Any:
    w = fixed(items)
    return np.frombuffer(b"".join(i.ljust(w, b"\0") for i in items), np.uint8).reshape(-1, w)


# Each input kind: how to make it from a list of bytes, and what the items then are.
PADDED = lambda items: [i.ljust(fixed(items), b"\0") for i in items]
KINDS: dict[str, tuple[Callable[[list[bytes]], Any], Callable[[list[bytes]], list[bytes]]]] = {
    "list": (list, list),
    "tuple": (tuple, list),
    "generator": (lambda items: (i for i in items), list),
    # numpy drops an S item's trailing NUL bytes (its padding): so does put_many.
    "numpy_S": (
        lambda items: np.array(items, dtype=f"S{fixed(items)}"),
        lambda items: [i.rstrip(b"\0") for i in items],
    ),
    "numpy_object": (lambda items: np.array([*items, b""], dtype=object)[:-1], list),
    "numpy_V": (as_void, PADDED),
    "numpy_uint8_rows": (as_rows, PADDED),
    "numpy_uint8_fortran": (lambda items: np.asfortranarray(as_rows(items)), PADDED),
    "arrow_binary": (lambda items: pa.array(items, pa.binary()), list),
    "arrow_large_binary": (lambda items: pa.array(items, pa.large_binary()), list),
    "arrow_binary_view": (lambda items: pa.array(items, pa.binary_view()), list),
    "arrow_fixed_size": (lambda items: pa.array(PADDED(items), pa.binary(fixed(items))), PADDED),
    "arrow_chunked": (
        lambda items: pa.chunked_array([items[:2], items[2:3], items[3:]], pa.binary()),
        list,
    ),
    "polars": (lambda items: pl.Series(items, dtype=pl.Binary), list),
}

KEYS = [b"k3", b"k1", b"k22", b"k1", b"k0"]
VALUES = [b"three", b"", b"v\x00x", b"one", b"zero"]


@pytest.mark.parametrize("key_kind", sorted(KINDS))
def test_every_key_kind_round_trips(key_kind: str) -> None:
    make, items = KINDS[key_kind]
    want_keys = items(KEYS)
    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put_many(make(KEYS), VALUES)
        model = dict(zip(want_keys, VALUES))  # the last pair of a key wins
        assert dict(db.scan()) == model
        assert db.get_many(make(KEYS)) == [model[k] for k in want_keys]
        whole = make(KEYS)  # sliced, so that fixed-width kinds keep the width of all the keys
        db.delete_many(whole[:2] if hasattr(whole, "__getitem__") else make(KEYS[:2]))
        for k in want_keys[:2]:
            model.pop(k, None)
        assert dict(db.scan()) == model


@pytest.mark.parametrize("value_kind", sorted(KINDS))
def test_every_value_kind_round_trips(value_kind: str) -> None:
    make, items = KINDS[value_kind]
    keys = [b"a", b"b", b"c", b"d", b"e"]
    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put_many(keys, make(VALUES))
        assert dict(db.scan()) == dict(zip(keys, items(VALUES)))


def test_numpy_S_drops_trailing_nul_padding_and_V_keeps_every_byte() -> None:
    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put_many(np.array([b"a\x00b", b"ab\x00"], dtype="S4"), np.array([b"1", b"2\x00"]))
        db.put_many(np.array([b"ab\x00\x00"], dtype="V4"), [b"void"])
        assert dict(db.scan()) == {b"a\x00b": b"1", b"ab": b"2", b"ab\x00\x00": b"void"}


def test_put_many_is_one_write_with_one_seq_and_ttl_and_durability() -> None:
    store, clock = MemoryStore(), ManualClock()
    with Db.open("db", store, OPTS, clock=clock) as db:
        db.put_many(np.array([b"b", b"a"]), pa.array([b"1", b"2"]), ttl=timedelta(seconds=1))
        db.delete_many(pa.array([b"a"]), await_durable=False)
        db.flush()
        seqs = sorted((c.seq, c.key) for c in WalReader("db", store).changes(since_seq=0))
        assert [s for s, _ in seqs] == [seqs[0][0]] * 2 + [seqs[0][0] + 1]
        assert db.get(b"b") == b"1"
        clock.advance(1000)
        assert db.get(b"b") is None


def _bad_inputs() -> list[tuple[str, Any, Any, type[Exception], str, int | None]]:
    long = b"x" * 65_536
    return [
        ("mismatched", [b"a", b"b"], np.array([b"1"]), InvalidArgumentError, "not 2 and 1", None),
        ("ragged 2-D", [b"a", [1, 2]], [b"1", b"2"], BulkItemTypeError, r"keys\[1\]", 1),
        (
            "ragged object array",
            np.array([b"ok", [1, 2, 3]], dtype=object),
            [b"1", b"2"],
            BulkItemTypeError,
            r"keys\[1\]: key must be bytes, not list",
            1,
        ),
        ("int dtype", np.arange(3), [b"1"] * 3, InvalidTypeError, "dtype int64", None),
        ("str dtype", np.array(["a", "b"]), [b"1"] * 2, InvalidTypeError, "dtype <U1", None),
        ("1-D uint8", np.zeros(3, np.uint8), [b"1"] * 3, InvalidTypeError, "shape", None),
        ("arrow strings", pa.array(["a"]), [b"1"], InvalidTypeError, "cast it to binary", None),
        (
            "empty S key",
            np.array([b"a", b"\x00"], "S1"),
            [b"1", b"2"],
            BulkItemError,
            r"keys\[1\]",
            1,
        ),
        ("empty arrow key", pa.array([b"a", b""]), [b"1", b"2"], BulkItemError, r"keys\[1\]", 1),
        (
            "null key",
            pa.array([b"a", None, b"c"]),
            [b"1"] * 3,
            BulkItemError,
            r"keys\[1\]: key is null",
            1,
        ),
        ("null value", [b"a", b"b"], pa.array([b"1", None]), BulkItemError, r"values\[1\]", 1),
        (
            "oversized key",
            np.array([b"a", long]),
            [b"1", b"2"],
            BulkItemError,
            r"keys\[1\]: key of 65536",
            1,
        ),
        ("a value first", [b"a", b""], [7, b"2"], BulkItemTypeError, r"values\[0\]", 0),
        (
            "keys of int",
            5,
            [b"1"],
            InvalidTypeError,
            "keys must be an iterable of bytes, not int",
            None,
        ),
        ("keys of bytes", b"ab", [b"1", b"2"], InvalidTypeError, "not bytes", None),
    ]


@pytest.mark.parametrize(
    ("case", "keys", "values", "exc", "message", "index"),
    _bad_inputs(),
    ids=[c[0] for c in _bad_inputs()],
)
def test_bad_input_names_the_first_bad_index_and_applies_nothing(
    case: str, keys: Any, values: Any, exc: type[Exception], message: str, index: int | None
) -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        db.put(b"kept", b"v")
        with pytest.raises(exc, match=message) as e:
            db.put_many(keys, values)
        if index is not None:
            assert isinstance(e.value, BulkItemError)
            assert e.value.index == index
        b = WriteBatch().put(b"kept", b"v")
        with pytest.raises(exc, match=message):
            b.put_many(keys, values)
        assert b.keys() == [b"kept"], "all or nothing"
        db.flush()
        assert dict(db.scan()) == {b"kept": b"v"}
        assert len(list(WalReader("db", store).changes(since_seq=0))) == 1, "nothing written"


def test_a_bad_item_error_carries_the_key() -> None:
    with Db.open("db", MemoryStore(), OPTS) as db:
        big = pa.array([b"k1", b"k2"]), pa.array([b"", b"x"])
        db.put_many(*big)
        with pytest.raises(BulkItemError) as e:
            db.delete_many(np.array([b"k1", b"k2", b""], dtype=object))
        assert (e.value.argument, e.value.index, e.value.key) == ("keys", 2, b"")
        with pytest.raises(BulkItemError) as e:
            db.get_many(pa.array([b"k1", None]))
        assert (e.value.index, e.value.key) == (1, None)
        assert dict(db.scan()) == {b"k1": b"", b"k2": b"x"}


def test_atomic_writes_are_limited_and_atomic_false_writes_in_pieces() -> None:
    store = MemoryStore()
    opts = DbOptions(
        flush_interval=None,
        compactor_enabled=False,
        gc_enabled=False,
        max_unflushed_bytes=1 << 20,
        l0_sst_size_bytes=128 << 10,
    )
    n = 20_000
    # Not in key order: this is the memtable path (sorted, it would be ingested; test_ingest).
    order = np.random.default_rng(5).permutation(n)
    keys = np.array([b"key%08d" % i for i in range(n)])[order]
    values = np.frombuffer(bytes(range(256)) * (n * 64 // 256), np.uint8).reshape(n, 64)
    with Db.open("db", store, opts) as db:
        assert db.atomic_limit == 512 << 10
        with pytest.raises(InvalidArgumentError, match="atomic limit"):
            db.put_many(keys, values)
        assert list(db.scan()) == []
        db.put_many(keys, values, atomic=False)
        assert db.get_many(keys[::997]) == [bytes(v) for v in values[::997]]
        assert len(db.manifest()[1].l0) > 1, "memtables froze along the way"
        db.delete_many(keys[: n // 2], atomic=False, await_durable=False)
        assert sum(1 for _ in db.scan()) == n // 2
        with pytest.raises(InvalidArgumentError, match="atomic must be a bool"):
            db.put_many([b"a"], [b"b"], atomic=None)  # type: ignore[arg-type]
    seqs = {c.seq for c in WalReader("db", store).changes(since_seq=0)}
    assert len(seqs) > 2, "several atomic pieces"


def test_bulk_chunks_cut_by_bytes() -> None:
    b = Bulk([b"a", b"bb", b"ccc", b"d"], [b"", b"", b"", b"123456"])
    assert (len(b), b.nbytes) == (4, 13)
    assert b.chunks(3) == [0, 2, 3, 4]
    assert b.chunks(1) == [0, 1, 2, 3, 4], "one op at least"
    assert b.chunks(100) == [0, 4]
    assert b.keys(1, 3) == [b"bb", b"ccc"]


def test_transactions_and_snapshots_read_many_from_arrays() -> None:
    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put_many(np.array([b"a", b"b", b"c"]), np.array([b"1", b"2", b"3"]))
        with db.begin() as txn:
            txn.put(b"b", b"own")
            assert txn.get_many(pa.array([b"c", b"b", b"z"])) == [b"3", b"own", None]
        with db.snapshot() as snap:
            db.delete_many(pl.Series([b"a"], dtype=pl.Binary))
            assert snap.get_many(np.array([b"a"])) == [b"1"]
        assert db.get_many(np.array([b"a"])) == [None]


def test_the_asyncio_twin_takes_arrays() -> None:
    async def go() -> tuple[Any, ...]:
        async with await aio.Db.open("db", MemoryStore(), OPTS) as db:
            await db.put_many(np.array([b"b", b"a"]), pa.array([b"1", b"2"]))
            await db.put_many(pa.array([b"c"]), [b"3"], atomic=False, await_durable=False)
            got = await db.get_many(np.array([b"a", b"c", b"x"]))
            await db.delete_many(pa.array([b"a"]), atomic=False)
            await db.delete_many(np.array([b"b"]))
            left = {k: v async for k, v in db.scan(None, None)}
            return got, left, db.atomic_limit

    got, left, limit = asyncio.run(go())
    assert got == [b"2", b"3", None]
    assert left == {b"c": b"3"}
    assert limit == OPTS.max_unflushed_bytes // 2
