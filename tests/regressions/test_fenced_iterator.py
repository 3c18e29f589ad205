"""An iterator of a writer that was fenced raises the FencedError its other reads raise, not
a generic ClosedError: callers that stop on FencedError (a newer writer took over) must see
it wherever the fence shows up (the zero-age collector stress test met it in a scan)."""

from __future__ import annotations

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions
from slatedb_py.errors import ClosedError, FencedError

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def test_an_iterator_of_a_fenced_writer_raises_fenced_error() -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    batch = WriteBatch()
    for i in range(5000):  # several scan pages
        batch.put(b"k%05d" % i, b"v")
    db.write(batch)
    it = db.scan()
    assert next(it) == (b"k00000", b"v")
    newer = Db.open("db", store, OPTS)
    with pytest.raises(FencedError):
        db.put(b"x", b"y")  # the old writer learns it is fenced
    with pytest.raises(FencedError):
        for _ in it:  # the buffered page, then the next load meets the fence
            pass
    with pytest.raises(FencedError):
        db.get(b"k00001")
    newer.close()


def test_a_snapshot_of_a_fenced_writer_and_its_iterators_raise_fenced_error() -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    batch = WriteBatch()
    for i in range(5000):
        batch.put(b"k%05d" % i, b"v")
    db.write(batch)
    snap = db.snapshot()
    txn = db.begin()
    it = snap.scan()
    assert next(it) == (b"k00000", b"v")
    newer = Db.open("db", store, OPTS)
    with pytest.raises(FencedError):
        db.put(b"x", b"y")
    with pytest.raises(FencedError):
        for _ in it:
            pass
    with pytest.raises(FencedError):
        snap.get(b"k00001")
    with pytest.raises(FencedError):
        txn.get(b"k00001")
    snap.close()
    with pytest.raises(ClosedError, match="snapshot is closed"):
        snap.get(b"k00001")
    newer.close()
