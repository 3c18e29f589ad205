"""An abandoned iterator must be garbage collected, with the tree it reads.

The native cursor that hands out an iterator's rows holds the iterator's page loader (a bound
method), and the iterator holds the cursor: a reference cycle. Without the cursor taking part
in garbage collection, nothing ever freed it, so every `scan()` kept its view (memtables, SST
handles, the native scan and its read-ahead blocks) alive for good: a hypothesis run opening
thousands of iterators grew to gigabytes.
"""

from __future__ import annotations

import gc
import weakref

from obstore.store import MemoryStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions


def test_abandoned_iterators_are_collected_with_their_view() -> None:
    db = Db.open("db", MemoryStore(), DbOptions(flush_interval=None))
    try:
        for i in range(3000):
            db.put(b"k%05d" % i, b"v" * 100, await_durable=False)
        db.flush_memtable()
        refs = []
        for reverse in (False, True):
            it = db.scan(reverse=reverse)
            assert next(it)
            refs += [weakref.ref(it), weakref.ref(it._view)]
            del it
        db.put(b"z", b"1", await_durable=False)
        db.flush_memtable()  # the Db moved to a newer view: nothing else holds the old one
        gc.collect()
        assert [r() for r in refs] == [None] * len(refs)
        # A live iterator is not collected under its user.
        it = db.scan()
        gc.collect()
        assert len(list(it)) == 3001
    finally:
        db.close()


def test_a_readers_iterators_are_collected() -> None:
    store = MemoryStore()
    with Db.open("db", store, DbOptions(flush_interval=None)) as db:
        db.put(b"a", b"1")
    reader = DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=None))
    try:
        it = reader.scan()
        ref = weakref.ref(it)
        assert next(it) == (b"a", b"1")
        del it
        gc.collect()
        assert ref() is None
    finally:
        reader.close()
