"""`txn.merge`: operands buffer per key; reads inside the transaction fold them (oldest first)
onto the snapshot's value, a put or delete after them replaces them, and merges after a put
or delete fold onto it at once; the commit writes the operands as merge rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import TransactionConflictError

calls: list[tuple[bytes, bytes | None, bytes]] = []


def append(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
    calls.append((key, existing, operand))
    return (existing or b"") + operand


@pytest.fixture
def db() -> Iterator[Db]:
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, gc_enabled=False, merge_operator=append
    )
    with Db.open("db", MemoryStore(), opts) as d:
        yield d


def _seed(db: Db) -> None:
    db.put(b"a", b"A")
    db.put(b"b", b"B")


def test_reads_fold_buffered_operands(db: Db) -> None:
    _seed(db)
    txn = db.begin()
    txn.merge(b"a", b"1")
    txn.merge(b"a", b"2")
    txn.merge(b"new", b"x")
    assert txn.get(b"a") == b"A12" and txn.get(b"new") == b"x"
    assert txn.get_many([b"new", b"a", b"b"]) == [b"x", b"A12", b"B"]
    assert list(txn.scan()) == [(b"a", b"A12"), (b"b", b"B"), (b"new", b"x")]
    assert list(txn.scan(reverse=True)) == [(b"new", b"x"), (b"b", b"B"), (b"a", b"A12")]
    txn.put(b"a", b"P")  # a put replaces the operands
    txn.merge(b"a", b"3")  # and a merge after a put folds onto it at once
    assert txn.get(b"a") == b"P3"
    txn.delete(b"b")
    txn.merge(b"b", b"4")  # onto a delete: onto nothing
    assert txn.get(b"b") == b"4"
    assert (b"b", None, b"4") in calls
    assert db.get(b"a") == b"A"  # nothing applied yet
    txn.rollback()


def test_commit_writes_the_operands(db: Db) -> None:
    _seed(db)
    with db.begin() as txn:
        txn.merge(b"a", b"1")
        txn.merge(b"a", b"2")
        txn.merge(b"new", b"x")
        txn.put(b"p", b"P")
        txn.merge(b"p", b"+")
    seq = db._last_seq
    assert db.get(b"a") == b"A12" and db.get(b"new") == b"x" and db.get(b"p") == b"P+"
    with db.begin() as txn:
        txn.merge(b"a", b"3")
    assert db._last_seq == seq + 1 and db.get(b"a") == b"A123"
    db.flush_memtable()
    db.compact()
    assert db.get(b"a") == b"A123"


@pytest.mark.parametrize(
    "level", [IsolationLevel.SNAPSHOT, IsolationLevel.SERIALIZABLE_SNAPSHOT], ids=["si", "ssi"]
)
def test_a_merge_is_a_write_for_conflicts(db: Db, level: IsolationLevel) -> None:
    _seed(db)
    db_merge = getattr(db, "merge")  # noqa: B009 -- newer than this build's Db
    txn = db.begin(level)
    txn.merge(b"a", b"1")
    db_merge(b"a", b"theirs")
    with pytest.raises(TransactionConflictError):
        txn.commit()
    txn = db.begin(level)
    txn.put(b"a", b"mine")
    db_merge(b"a", b"theirs")
    with pytest.raises(TransactionConflictError):
        txn.commit()
