"""Scans out as Arrow (`DbIterator.to_arrow`): the same rows as the scan, in batches bounded
by rows and bytes, from memtables, L0 and sorted runs on every store kind; read by pyarrow,
polars and DuckDB through the PyCapsule interface; snapshots, transactions and the asyncio
twin; bloom filters answering many keys with a numpy array."""

from __future__ import annotations

import asyncio
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from obstore.store import MemoryStore

from slatedb_py import Db, aio
from slatedb_py.config import DbOptions
from slatedb_py.errors import ClosedError, InvalidArgumentError
from slatedb_py.format import BloomFilter, decode_sst, encode_sst

OPTS = DbOptions(
    flush_interval=None,
    compactor_enabled=False,
    gc_enabled=False,
    l0_sst_size_bytes=16 << 10,
    block_size=1024,
)
N = 3000


def rows_of(batches: Any) -> list[tuple[bytes, bytes]]:
    return [r for b in batches for r in b.to_pylist()]


@pytest.fixture(scope="module")
def loaded() -> Any:
    """A database spread over a sorted run, L0 SSTs and the memtable, with deletes."""
    db = Db.open("db", MemoryStore(), OPTS)
    keys = np.array([b"k%06d" % i for i in range(N)])
    db.put_many(keys, np.array([b"v%d" % (i % 97) * (i % 7) for i in range(N)], dtype=object))
    db.flush_memtable()
    db.compact()
    db.put_many(keys[::3], [b"new"] * len(keys[::3]))
    db.flush_memtable()
    db.delete_many(keys[1::5])
    db.put(b"k999999", b"last")
    yield db
    db.close()


@settings(max_examples=40, deadline=None)
@given(
    a=st.none() | st.integers(0, N + 10),
    b=st.none() | st.integers(0, N + 10),
    reverse=st.booleans(),
    batch_rows=st.integers(1, 700),
    batch_bytes=st.integers(1, 5000),
    skip=st.integers(0, 5),
)
def test_to_arrow_rows_are_the_scan_rows(
    loaded: Db,
    a: int | None,
    b: int | None,
    reverse: bool,
    batch_rows: int,
    batch_bytes: int,
    skip: int,
) -> None:
    start = None if a is None else b"k%06d" % a
    end = None if b is None else b"k%06d" % b
    want = list(loaded.scan(start, end, reverse=reverse))
    it = loaded.scan(start, end, reverse=reverse)
    taken = [next(it) for _ in range(min(skip, len(want)))]  # rows already handed out
    batches = list(it.to_arrow(batch_rows=batch_rows, batch_bytes=batch_bytes))
    assert taken + rows_of(batches) == want
    for batch in batches:
        assert 0 < batch.num_rows <= batch_rows
        size = sum(len(k) + len(v) for k, v in batch.to_pylist())
        assert size <= batch_bytes or batch.num_rows == 1
    assert list(it) == [], "the batches took the rest"


def test_pyarrow_polars_and_duckdb_read_the_stream(loaded: Db) -> None:
    want = list(loaded.scan(b"k001000", b"k002000"))
    table = pa.RecordBatchReader.from_stream(
        loaded.scan(b"k001000", b"k002000").to_arrow(batch_rows=100)
    ).read_all()
    assert table.schema == pa.schema(
        [pa.field("key", pa.binary(), nullable=False), pa.field("value", pa.binary(), False)]
    )
    assert list(zip(table["key"].to_pylist(), table["value"].to_pylist())) == want
    df = pl.DataFrame(loaded.scan(b"k001000", b"k002000").to_arrow())
    assert df.height == len(want) and df["key"].to_list() == [k for k, _ in want]
    # DuckDB finds the stream by its variable's name.
    batches = loaded.scan(b"k001000", b"k002000").to_arrow(batch_rows=300)  # noqa: F841
    got = duckdb.sql("select count(*), min(key), max(key) from batches").fetchall()
    assert got == [(len(want), want[0][0], want[-1][0])]
    one = next(iter(loaded.scan(b"k001000").to_arrow(batch_rows=5)))
    assert pa.record_batch(one).num_rows == 5 == len(one)
    assert pl.DataFrame(one).height == 5
    assert (one.column_names, one.num_columns) == (["key", "value"], 2)
    assert one.row(-1) == want[4] and one.row(0) == want[0]
    with pytest.raises(IndexError):
        one.row(5)


def test_to_arrow_on_every_store_kind(store: Any) -> None:
    """On a remote store the batches' blocks come through the fetch contract."""
    with Db.open("db", store, OPTS) as db:
        keys = [b"k%05d" % i for i in range(2000)]
        db.put_many(pa.array(keys), np.array(keys, dtype="S6"))
        db.flush_memtable()
        db.put_many(keys[::2], [b"x"] * 1000)
        want = list(db.scan())
        assert rows_of(db.scan().to_arrow(batch_rows=333)) == want
        assert rows_of(db.scan(reverse=True).to_arrow(batch_bytes=999)) == want[::-1]
        with db.snapshot() as snap:
            db.delete_many(keys)
            assert rows_of(snap.scan().to_arrow()) == want
        assert rows_of(db.scan().to_arrow()) == []


def test_a_transaction_merges_its_own_writes_into_batches() -> None:
    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put_many([b"a", b"b", b"c"], [b"1", b"2", b"3"])
        with db.begin() as txn:
            assert rows_of(txn.scan().to_arrow()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
            txn.put(b"bb", b"own")
            txn.delete(b"c")
            got = rows_of(txn.scan().to_arrow(batch_rows=2))
            assert got == [(b"a", b"1"), (b"b", b"2"), (b"bb", b"own")]


def test_bad_batch_sizes_and_a_closed_database() -> None:
    db = Db.open("db", MemoryStore(), OPTS)
    db.put(b"a", b"1")
    for bad in ({"batch_rows": 0}, {"batch_bytes": 2**31}, {"batch_rows": True}):
        with pytest.raises(InvalidArgumentError):
            db.scan().to_arrow(**bad)
    batches = db.scan().to_arrow()
    db.close()
    with pytest.raises(ClosedError):
        next(batches)


def test_the_asyncio_twin_streams_batches() -> None:
    async def go() -> list[tuple[bytes, bytes]]:
        async with await aio.Db.open("db", MemoryStore(), OPTS) as db:
            await db.put_many(np.array([b"k%04d" % i for i in range(500)]), [b"v"] * 500)
            it = db.scan(None, None)
            first = await it.__anext__()
            rows = [first]
            async for b in it.to_arrow(batch_rows=64):
                assert b.num_rows <= 64
                rows += b.to_pylist()
            return rows

    assert asyncio.run(go()) == [(b"k%04d" % i, b"v") for i in range(500)]


def test_bloom_filters_answer_many_keys_as_a_numpy_array() -> None:
    keys = [b"key%05d" % i for i in range(2000)]
    f = BloomFilter.build(np.array(keys))
    probes = np.array(keys[:50] + [b"absent%d" % i for i in range(50)])
    got = f.might_contain_many(probes)
    assert isinstance(got, np.ndarray) and got.dtype == np.bool_ and got.shape == (100,)
    assert got[:50].all()
    assert (f.might_contain_many(pa.array(probes.tolist())) == got).all()
    assert f.might_contain_many([b""]).tolist() in ([True], [False]), "any bytes, empty too"
    sst = decode_sst(encode_sst([(k, b"v", 1) for k in keys], min_filter_keys=1))
    assert (sst.might_contain_many(probes) == got).all()
    assert f.count_matches(pl.Series(keys, dtype=pl.Binary)) == len(keys)


def test_the_bulk_parquet_example_runs() -> None:
    import re
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "bulk_parquet.py"
    out = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "loaded 20000 rows from 4 row groups"
    assert re.fullmatch(r"user:001000\.\.user:002000: 1000 rows, 143 gold", out[1]), out
    assert out[2] == "DuckDB counted 20000 rows in the whole database"
