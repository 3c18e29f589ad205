"""The change stream beside SlateDB 0.17.0's own WAL reader (`SlateDbWalReader`): the rows
our `WalReader` yields for a database 0.17.0 wrote are the rows its reader reads, and the
other way round; after 0.17.0's collector removed WAL objects, both refuse the removed
history and agree on what is left."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import slatedb.uniffi as u

from slatedb_py import Db, WalReader, WriteBatch
from slatedb_py.config import DbOptions
from slatedb_py.errors import HistoryGoneError
from slatedb_py.merge import Concat
from tests.interop.oracle import Official, run_gc_once

pytestmark = pytest.mark.interop
QUIET = {"flush_interval": None, "gc_enabled": False, "compactor_enabled": False}
KINDS = {"VALUE": "value", "TOMBSTONE": "tombstone", "MERGE": "merge"}


def official_rows(path: str, start_wal_id: int = 1) -> list[tuple[Any, ...]]:
    """Every row 0.17.0's WAL reader reads from WAL id `start_wal_id` to the tail, as
    (seq, key, value, kind, create_ts, expire_ts). Its iterator waits at the tail rather than
    ending, so the tail is asked for first (`last_wal_file_id`)."""

    async def go() -> list[tuple[Any, ...]]:
        r = u.SlateDbWalReader(path.lstrip("/"), u.ObjectStore.resolve("file:///"))
        tail = await r.last_wal_file_id(start_wal_id - 1)
        it = await r.iterator(start_wal_id)
        out: list[tuple[Any, ...]] = []
        consumed = start_wal_id - 1
        while consumed < tail:
            batch = await asyncio.wait_for(it.next(), 10)
            assert batch is not None
            consumed = batch.last_consumed_wal_file_id
            out += [
                (e.seq, e.key, e.value, KINDS[e.kind.name], e.create_ts, e.expire_ts)
                for e in batch.rows
            ]
        return out

    return asyncio.run(go())


def ours(path: str, since_seq: int = 0) -> list[tuple[Any, ...]]:
    return [
        (c.seq, c.key, c.value, c.kind, c.create_ts, c.expire_ts)
        for c in WalReader(path, "file:///").changes(since_seq)
    ]


def official_history(o: Official) -> None:
    """Puts, deletes, merges, a TTL put and batches mixing all three, a memtable flush in
    the middle (its WAL objects stay: no collector)."""

    async def batch(i: int) -> None:
        b = u.WriteBatch()
        b.put(b"z%d" % i, b"v%d" % i)
        b.delete(b"a%d" % i)
        b.merge(b"m%d" % i, b"op%d" % i)
        h = await o.db.write(b)
        await h.await_durable()

    async def ttl_put(k: bytes) -> None:
        opts = u.PutOptions(ttl=u.Ttl.EXPIRE_AFTER_MILLIS(60_000))
        h = await o.db.put_with_options(k, b"ttl", opts, u.WriteOptions())
        await h.await_durable()

    for i in range(6):
        o.put(b"k%d" % i, b"v%d" % i)
        o.delete(b"k%d" % (i // 2))
        o.merge(b"m%d" % (i % 2), b"+%d" % i)
        o._run(batch(i))
        o._run(ttl_put(b"t%d" % i))
        if i == 3:
            o.flush_memtable()


def test_our_stream_of_a_0_17_database_is_its_wal_reader(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    o = Official(path, concat=True)
    official_history(o)
    o.close(keep_wal_tail=True)
    theirs = official_rows(path)
    assert len(theirs) == 6 * 7
    assert {r[3] for r in theirs} == {"value", "tombstone", "merge"}
    assert any(r[5] is not None for r in theirs)  # the TTL puts
    assert ours(path) == theirs
    # A since_seq in the middle: the rows after it, as theirs read them.
    mid = theirs[len(theirs) // 2][0]
    assert ours(path, mid) == [r for r in theirs if r[0] > mid]


def test_0_17_wal_reader_reads_our_stream(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    db = Db.open(path, "file:///", DbOptions(merge_operator=Concat(), **QUIET))
    for i in range(6):
        db.put(b"k%d" % i, b"v%d" % i)
        db.delete(b"k%d" % (i // 2))
        db.merge(b"m%d" % (i % 2), b"+%d" % i)
        db.write(WriteBatch().put(b"z%d" % i, b"v").delete(b"a%d" % i).merge(b"m%d" % i, b"o"))
        db.put(b"t%d" % i, b"ttl", ttl=timedelta(minutes=1))
        if i == 3:
            db.flush_memtable()
    db.close()
    mine = ours(path)
    assert len(mine) == 6 * 7
    assert official_rows(path) == mine


def test_after_0_17_collected_its_wal_both_refuse_the_removed_history(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    o = Official(path)
    for i in range(6):
        o.put(b"k%d" % i, b"v%d" % i)
    o.flush_memtable()
    o.close(keep_wal_tail=True)
    before = official_rows(path)
    run_gc_once(path)
    left = sorted(p.name for p in (tmp_path / "db" / "wal").iterdir())
    oldest = int(left[0].split(".")[0])
    assert oldest > 1
    # Theirs says the WAL is truncated when asked to start before what is left ...
    with pytest.raises(u.Error.Data, match="truncated"):
        official_rows(path, 1)
    # ... ours names the sequence numbers that are gone.
    first_left = official_rows(path, oldest)[0][0]
    with pytest.raises(HistoryGoneError) as e:
        ours(path)
    assert (e.value.first_missing, e.value.last_missing) == (1, first_left - 1)
    assert ours(path, first_left - 1) == official_rows(path, oldest)
    assert ours(path, first_left - 1) == [r for r in before if r[0] >= first_left]
