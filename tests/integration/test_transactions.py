"""`Db.begin()`: a transaction reads its snapshot plus its own writes, commits them with one
sequence number, or raises TransactionConflictError and applies nothing (SlateDB 0.17.0's
rules, per isolation level)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions, IsolationLevel
from slatedb_py.errors import (
    ClosedError,
    InvalidArgumentError,
    MergeOperatorError,
    SlateDBError,
    TransactionConflictError,
    TransactionError,
)
from slatedb_py.transaction import DbTransaction

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))
SI, SSI = IsolationLevel.SNAPSHOT, IsolationLevel.SERIALIZABLE_SNAPSHOT
LEVELS = [SI, SSI]


@pytest.fixture
def db() -> Any:
    with Db.open("db", MemoryStore(), OPTS) as d:
        for k in (b"a", b"c", b"e", b"g"):
            d.put(k, k.upper(), await_durable=False)
        yield d


def test_own_writes_show_in_every_read_and_nowhere_else(db: Db) -> None:
    txn = db.begin()
    txn.put(b"b", b"own-b")
    txn.put(b"c", b"own-c")
    txn.delete(b"e")
    txn.put(b"p:1", b"p1")
    assert txn.get(b"b") == b"own-b" and txn.get(b"c") == b"own-c" and txn.get(b"e") is None
    assert txn.get(b"a") == b"A"
    assert txn.get_many([b"a", b"b", b"c", b"e", b"z", b"b"]) == [
        b"A",
        b"own-b",
        b"own-c",
        None,
        None,
        b"own-b",
    ]
    full = [(b"a", b"A"), (b"b", b"own-b"), (b"c", b"own-c"), (b"g", b"G"), (b"p:1", b"p1")]
    assert list(txn.scan()) == full
    assert list(txn.scan(reverse=True)) == full[::-1]
    assert list(txn.scan(b"b", b"g")) == full[1:3]
    assert list(txn.scan(b"b", b"g", reverse=True)) == full[1:3][::-1]
    assert list(txn.scan(b"g", b"b")) == []
    assert list(txn.scan_prefix(b"p:")) == [(b"p:1", b"p1")]
    assert list(txn.scan_prefix(b"p:", reverse=True)) == [(b"p:1", b"p1")]
    # The database sees none of it before the commit.
    assert db.get(b"b") is None and db.get(b"e") == b"E"
    assert dict(db.scan()) == {b"a": b"A", b"c": b"C", b"e": b"E", b"g": b"G"}
    txn.commit()
    assert dict(db.scan()) == dict(full)


def test_scan_iterator_batches_seeks_and_closes(db: Db) -> None:
    txn = db.begin()
    for i in range(0, 3000, 3):
        txn.put(b"n%05d" % i, b"own")
    for i in range(3000):
        if i % 3:
            db.put(b"n%05d" % i, b"db", await_durable=False)  # not in the txn's snapshot
    txn.delete(b"a")
    with txn.scan() as it:
        first = it.next_batch(2)
        assert first == [(b"c", b"C"), (b"e", b"E")]
        it.seek(b"n00999")
        rest = list(it)
    assert rest == [(b"n%05d" % i, b"own") for i in range(999, 3000, 3)]
    with pytest.raises(ClosedError):
        it.next_batch(1)
    it = txn.scan(b"b", b"z")
    with pytest.raises(InvalidArgumentError):
        it.seek(b"zz")
    with pytest.raises(InvalidArgumentError):
        it.next_batch(0)
    assert len(it.next_batch(5000)) == 1003 and it.next_batch(5) == []
    txn.rollback()


def test_commit_is_one_sequence_number(db: Db) -> None:
    txn = db.begin()
    assert txn.seq == db._last_seq == 4
    for i in range(50):
        txn.put(b"k%02d" % i, b"v")
    txn.delete(b"a")
    db.put(b"other", b"x")  # a plain write meanwhile: seq 5
    txn.commit()
    assert db._last_seq == 6
    db.flush_memtable()
    assert db.manifest()[1].last_l0_seq == 6
    assert db.get(b"a") is None and db.get(b"k49") == b"v"
    # A commit with nothing to write applies nothing and takes no number.
    db.begin().commit()
    with db.begin(SSI) as txn:
        txn.get(b"k00")
    assert db._last_seq == 6


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda d: d.put(b"c", b"x"), id="db.put"),
        pytest.param(lambda d: d.delete(b"c"), id="db.delete"),
        pytest.param(lambda d: d.write(WriteBatch().put(b"q", b"1").delete(b"c")), id="db.write"),
        pytest.param(lambda d: _txn_put(d, b"c"), id="txn"),
    ],
)
def test_write_write_conflicts_at_both_levels(
    db: Db, level: IsolationLevel, other: Callable[[Db], None]
) -> None:
    txn = db.begin(level)
    txn.put(b"c", b"mine")
    txn.put(b"fresh", b"mine")
    other(db)
    seq = db._last_seq
    with pytest.raises(TransactionConflictError, match=r"key b'c'") as err:
        txn.commit()
    assert err.value.key == b"c"
    assert db.get(b"fresh") is None and db._last_seq == seq  # nothing applied
    with pytest.raises(TransactionError, match="already failed to commit"):
        txn.get(b"c")


def _txn_put(d: Db, key: bytes) -> None:
    with d.begin() as t:
        t.put(key, b"theirs")


@pytest.mark.parametrize("level", LEVELS)
def test_disjoint_writes_commit_at_both_levels(db: Db, level: IsolationLevel) -> None:
    txn = db.begin(level)
    txn.put(b"mine", b"1")
    db.put(b"theirs", b"2")
    _txn_put(db, b"also-theirs")
    db.write(WriteBatch().put(b"batch", b"3"))
    txn.commit()
    assert db.get(b"mine") == b"1"


def test_a_write_before_begin_is_no_conflict(db: Db) -> None:
    db.put(b"c", b"before")
    txn = db.begin(SSI)
    assert txn.get(b"c") == b"before"
    txn.put(b"c", b"after")
    txn.commit()
    assert db.get(b"c") == b"after"


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda t: t.get(b"c"), id="get"),
        pytest.param(lambda t: t.get_many([b"x", b"c"]), id="get_many"),
        pytest.param(lambda t: list(t.scan(b"b", b"d")), id="scan"),
        pytest.param(lambda t: t.scan(b"b", b"d"), id="scan-not-iterated"),
        pytest.param(lambda t: list(t.scan(b"b", b"d", reverse=True)), id="scan-reverse"),
        pytest.param(lambda t: list(t.scan(None, None)), id="scan-all"),
    ],
)
def test_read_write_conflicts_only_under_serializable(
    db: Db, read: Callable[[DbTransaction], object]
) -> None:
    for level in LEVELS:
        txn = db.begin(level)
        read(txn)
        txn.put(b"elsewhere", level.value.encode())
        db.put(b"c", level.value.encode())
        if level is SI:
            txn.commit()
        else:
            with pytest.raises(TransactionConflictError):
                txn.commit()
    assert db.get(b"elsewhere") == b"snapshot"


def test_reading_a_key_it_also_wrote_is_a_read(db: Db) -> None:
    txn = db.begin(SSI)
    txn.put(b"k", b"mine")
    assert txn.get(b"k") == b"mine"
    txn.delete(b"k")  # its final write is a delete: still a write, still read
    db.put(b"k", b"theirs")
    with pytest.raises(TransactionConflictError):
        txn.commit()


def test_read_only_serializable_transaction_conflicts(db: Db) -> None:
    txn = db.begin(SSI)
    assert txn.get(b"a") == b"A"
    db.put(b"a", b"changed")
    with pytest.raises(TransactionConflictError):
        txn.commit()
    # Under SNAPSHOT a read-only transaction commits (nothing to apply).
    txn = db.begin(SI)
    txn.get(b"a")
    db.put(b"a", b"again")
    txn.commit()


@pytest.mark.parametrize("reverse", [False, True])
def test_phantom_in_a_scanned_range(db: Db, reverse: bool) -> None:
    txn = db.begin(SSI)
    assert list(txn.scan(b"m", b"n", reverse=reverse)) == []  # an empty scan still counts
    txn.put(b"z", b"1")
    db.put(b"n", b"outside")  # the end bound is excluded
    db.put(b"l", b"outside")
    txn2 = db.begin(SSI)
    assert list(txn2.scan_prefix(b"m")) == []
    txn2.put(b"z2", b"1")
    db.put(b"m5", b"inside")
    with pytest.raises(TransactionConflictError, match="m5"):
        txn.commit()
    with pytest.raises(TransactionConflictError, match="m5"):
        txn2.commit()


def test_rollback_and_context_manager(db: Db) -> None:
    txn = db.begin()
    txn.put(b"x", b"1")
    txn.rollback()
    txn.rollback()  # ending an ended transaction does nothing
    assert db.get(b"x") is None
    for call in (
        lambda: txn.get(b"a"),
        lambda: txn.put(b"x", b"1"),
        lambda: txn.scan(),
        txn.commit,
    ):
        with pytest.raises(TransactionError, match="already rolled back"):
            call()
    with pytest.raises(RuntimeError), db.begin() as txn:
        txn.put(b"x", b"1")
        raise RuntimeError("boom")
    assert db.get(b"x") is None
    with db.begin() as txn:
        txn.put(b"x", b"2")
    assert db.get(b"x") == b"2"
    with pytest.raises(TransactionError, match="already committed"):
        txn.put(b"y", b"1")
    with db.begin() as txn:  # an explicit commit inside the block is the commit
        txn.put(b"x", b"3")
        txn.commit()
    assert db.get(b"x") == b"3"
    with pytest.raises(TransactionConflictError), db.begin() as txn:
        txn.put(b"x", b"4")
        db.put(b"x", b"5")
    assert db.get(b"x") == b"5"


def test_use_after_the_database_closed(db: Db) -> None:
    txn = db.begin()
    txn.put(b"k", b"v")
    db.close()
    for call in (lambda: txn.get(b"a"), lambda: txn.put(b"k", b"v"), txn.commit):
        with pytest.raises(ClosedError):
            call()
    with pytest.raises(ClosedError):
        db.begin()


def test_arguments_are_checked_as_db_put_checks_them(db: Db) -> None:
    txn = db.begin()
    bad: list[tuple[Any, Any, Any]] = [
        (b"", b"v", None),
        ("str", b"v", None),
        (b"k" * 65_536, b"v", None),
        (b"k", "str", None),
        (b"k", b"v", 5),
        (b"k", b"v", timedelta(0)),
    ]
    for key, value, ttl in bad:
        with pytest.raises(SlateDBError) as want:
            db.put(key, value, ttl=ttl)
        with pytest.raises(SlateDBError) as got:
            txn.put(key, value, ttl=ttl)
        assert (type(got.value), str(got.value)) == (type(want.value), str(want.value))
    with pytest.raises(MergeOperatorError, match="merge operator"):
        txn.merge(b"k", b"+1")
    with pytest.raises(TypeError):
        db.begin("snapshot")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        txn.scan(reverse=1)  # type: ignore[arg-type]
    txn.commit()
    assert db._last_seq == 4


def test_ttl_on_transaction_puts() -> None:
    clock = ManualClock()
    with Db.open("db", MemoryStore(), OPTS, clock=clock) as db:
        with db.begin() as txn:
            txn.put(b"short", b"1", ttl=timedelta(seconds=10))
            txn.put(b"long", b"2")
        clock.advance(5_000)
        assert db.get(b"short") == b"1"
        clock.advance(6_000)
        assert db.get(b"short") is None and db.get(b"long") == b"2"


def test_an_open_transaction_survives_flush_compaction_and_collection() -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    for i in range(200):
        db.put(b"k%03d" % i, b"old", await_durable=False)
    db.flush_memtable()
    txn = db.begin(SSI)
    txn.put(b"k005", b"mine")
    for i in range(200):
        db.put(b"k%03d" % i, b"new", await_durable=False)
    db.delete(b"k007")
    db.flush_memtable()
    db.compact()
    assert admin.run_gc_once("db", store, ZERO).compacted  # the txn's own SSTs are gone
    assert txn.get(b"k007") == b"old" and txn.get(b"k005") == b"mine"
    rows = dict(txn.scan())
    assert len(rows) == 200 and rows[b"k005"] == b"mine"
    assert set(rows.values()) == {b"old", b"mine"}
    with pytest.raises(TransactionConflictError):
        txn.commit()
    db.close()


def test_commits_are_durable_across_reopen(store: Any) -> None:
    with Db.open("db", store, DbOptions(compactor_enabled=False)) as db:
        with db.begin() as txn:
            txn.put(b"a", b"1")
            txn.put(b"b", b"2")
        txn = db.begin()
        txn.put(b"c", b"3")
        txn.commit(await_durable=False)
    with Db.open("db", store) as again:
        assert dict(again.scan()) == {b"a": b"1", b"b": b"2", b"c": b"3"}


def test_await_durable_false_then_flush_reaches_the_wal() -> None:
    store = MemoryStore()
    crashed = Db.open("db", store, OPTS)
    with crashed.begin() as txn:
        txn.put(b"durable", b"1")
    txn = crashed.begin()
    txn.put(b"k", b"v")
    txn.commit(await_durable=False)
    assert crashed._wal.durable.durable < crashed._last_seq
    crashed.flush()
    assert crashed._wal.durable.durable == crashed._last_seq
    # The writer is left as if it crashed (no close, no L0 flush): only the WAL holds the rows.
    with Db.open("db", store, OPTS) as again:
        assert again.get(b"k") == b"v" and again.get(b"durable") == b"1"
    with pytest.raises(ClosedError):
        crashed.put(b"late", b"x")  # fenced by the new writer


def test_conflict_records_stay_bounded(db: Db) -> None:
    for i in range(100):
        db.put(b"k%d" % i, b"v")
    assert len(db._txns) == 0 and not db._txns.active  # nothing recorded with no txn open
    old = db.begin()
    for i in range(300):
        db.put(b"k%d" % i, b"v")
    assert len(db._txns) == 300
    newer = db.begin()
    old.rollback()
    assert len(db._txns) == 0  # every record is older than the oldest open start
    db.put(b"x", b"1")
    assert len(db._txns) == 1
    del newer
    gc.collect()  # a dropped transaction lets go too
    db.put(b"y", b"1")
    assert len(db._txns) == 0 and not db._txns.active
    assert db._snapshots.oldest() is None
