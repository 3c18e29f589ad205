"""Write batches: `WriteBatch.put_many` / `delete_many`, `Db.put_many` / `delete_many` (and
the asyncio twin's), large batches in key order and not, and a frozen memtable's WAL rows,
which are queued unencoded and uploaded by a later flush."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WalReader, WriteBatch, aio
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError, UnavailableError
from slatedb_py.store import Store

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def changes(store: object) -> list[tuple[bytes, int]]:
    """Every write of the WAL: (key, seq)."""
    return [(c.key, c.seq) for c in WalReader("db", store).changes(since_seq=0)]


def test_put_many_and_delete_many_fill_a_batch_in_order() -> None:
    b = WriteBatch().put(b"x", b"0")
    assert b.put_many([b"a", bytearray(b"b"), memoryview(b"c")], (b"1", b"2", b"3")) is b
    b.delete_many(k for k in [b"x", b"z"])
    assert len(b) == 6
    assert b.keys() == [b"x", b"a", b"b", b"c", b"z"]
    db = Db.open("db", MemoryStore(), OPTS)
    db.put(b"z", b"old")
    db.write(b)
    assert dict(db.scan()) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    db.close()


@pytest.mark.parametrize(
    ("keys", "values", "exc", "message"),
    [
        ([b"a", b"b"], [b"1"], InvalidArgumentError, "same length, not 2 and 1"),
        (iter([b"a"]), iter([b"1", b"2"]), InvalidArgumentError, "same length, not 1 and 2"),
        ([b"a", b""], [b"1", b"2"], InvalidArgumentError, r"keys\[1\]: key must not be empty"),
        ([b"a", "b"], [b"1", b"2"], InvalidTypeError, r"keys\[1\]: key must be bytes, not str"),
        ([b"a", b"b"], [b"1", 2], InvalidTypeError, r"values\[1\]: value must be bytes, not int"),
        (b"ab", [b"1", b"2"], InvalidTypeError, "keys must be an iterable of bytes, not bytes"),
        ([b"a"], 5, InvalidTypeError, "values must be an iterable of bytes, not int"),
        ([b"k" * 65_536], [b""], InvalidArgumentError, r"keys\[0\]: key of 65536 bytes"),
    ],
)
def test_put_many_refuses_bad_input_and_adds_nothing(
    keys: object, values: object, exc: type[Exception], message: str
) -> None:
    b = WriteBatch().put(b"kept", b"v")
    with pytest.raises(exc, match=message):
        b.put_many(keys, values)  # type: ignore[arg-type]
    assert b.keys() == [b"kept"], "all or nothing"
    with pytest.raises(InvalidArgumentError, match=r"keys\[2\]: key must not be empty"):
        b.delete_many([b"a", b"b", b""])
    assert len(b) == 1


def test_db_put_many_is_one_write_with_one_seq_and_the_last_pair_wins() -> None:
    store = MemoryStore()
    clock = ManualClock()
    db = Db.open("db", store, OPTS, clock=clock)
    db.put(b"before", b"x")
    db.put_many([b"b", b"a", b"b"], [b"1", b"2", b"3"])
    db.put_many([], [])  # nothing to write: no seq taken
    db.put_many([b"t"], [b"ttl"], ttl=timedelta(seconds=1), await_durable=False)
    db.delete_many([b"a", b"before"])
    db.flush()
    assert dict(db.scan()) == {b"b": b"3", b"t": b"ttl"}
    clock.advance(1000)
    assert db.get(b"t") is None
    got = changes(store)
    s = got[0][1]
    assert sorted(got, key=lambda c: (c[1], c[0])) == [
        (b"before", s),
        (b"a", s + 1),  # one row per key, all with one seq
        (b"b", s + 1),
        (b"t", s + 2),
        (b"a", s + 3),
        (b"before", s + 3),
    ]
    with pytest.raises(InvalidArgumentError, match=r"keys\[0\]"):
        db.put_many([b""], [b"v"])
    db.close()


def test_large_batches_in_key_order_and_not_read_back_everywhere(store) -> None:  # type: ignore[no-untyped-def]
    db = Db.open("db", store, OPTS)
    db.put_many([b"k%05d" % i for i in range(0, 6000, 2)], [b"even"] * 3000)
    b = WriteBatch()
    for i in range(5999, 0, -2):  # descending: between the rows already there
        b.put(b"k%05d" % i, b"odd")
    db.write(b)
    b = WriteBatch().put_many([b"k%05d" % i for i in range(3000, 3010)], [b"new"] * 10)
    b.delete(b"k03000").put(b"k03001", b"again")  # duplicates: the last op of a key wins
    db.write(b, await_durable=False)
    want = {b"k%05d" % i: b"even" if i % 2 == 0 else b"odd" for i in range(6000)}
    want.update({b"k%05d" % i: b"new" for i in range(3002, 3010)})
    want[b"k03001"] = b"again"
    del want[b"k03000"]
    assert dict(db.scan()) == want
    assert [k for k, _ in db.scan(b"k02998", b"k03003", reverse=True)] == [
        b"k03002",
        b"k03001",
        b"k02999",
        b"k02998",
    ]
    db.close()
    with Db.open("db", store, OPTS) as again:  # replayed from the WAL
        assert dict(again.scan()) == want
        again.flush_memtable()
        assert again.get(b"k03005") == b"new"


class FailWalOnce(Store):
    """Fails the next WAL upload once it is armed."""

    armed = False

    def put_if_absent(self, path: str, data: object) -> bool:
        if self.armed and "/wal/" in path:
            self.armed = False
            raise UnavailableError("injected WAL upload failure")
        return bool(super().put_if_absent(path, data))


def test_a_frozen_memtables_wal_rows_are_uploaded_once_after_a_failure() -> None:
    inner = MemoryStore()
    store = FailWalOnce(inner)
    opts = DbOptions(
        flush_interval=None, l0_sst_size_bytes=4096, compactor_enabled=False, gc_enabled=False
    )
    db = Db.open("db", store, opts)
    store.armed = True
    keys = [b"key%04d" % i for i in range(300)]
    db.put_many(keys, [b"v" * 30] * 300, await_durable=False)  # fills and freezes the memtable
    try:
        db.flush()  # the frozen rows' upload fails here, or in the flusher thread
    except UnavailableError:
        pass
    db.flush()
    assert not store.armed, "the failure was injected"
    # Crash: the writer is abandoned; a new one replays what the WAL holds.
    with Db.open("db", Store(inner), OPTS) as again:
        assert [k for k, _ in again.scan()] == keys
    assert sorted(changes(inner)) == [(k, 1) for k in keys], "one batch, uploaded once"


def test_the_asyncio_twin_has_put_many_and_delete_many() -> None:
    async def go() -> dict[bytes, bytes]:
        async with await aio.Db.open("db", MemoryStore(), OPTS) as db:
            await db.put_many([b"a", b"b"], [b"1", b"2"])
            await db.delete_many([b"a"], await_durable=False)
            return {k: v async for k, v in db.scan(None, None)}

    assert asyncio.run(go()) == {b"b": b"2"}
