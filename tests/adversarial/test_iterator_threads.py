"""One iterator, several threads: an iterator shared by threads, and a handle closed by one
thread while another is loading an iterator's next page.

`DbIterator` hands rows out through a native `Cursor` (a mutable pyclass) whose page loader
runs Python code (the fetch driver, `_move`) and releases the GIL in native reads. While one
thread is inside it, any other call on the same cursor hits PyO3's borrow check."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import SlateDBError
from tests.support import FaultyStore, gate

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, block_cache_bytes=0)
N = 6000


def _load(store: Any) -> list[tuple[bytes, bytes]]:
    rows = [(b"k%05d" % i, b"v%05d" % i + b"." * 50) for i in range(N)]
    with Db.open("db", store, OPTS) as db:
        for k, v in rows:
            db.put(k, v, await_durable=False)
        db.flush_memtable()
        db.compact()
    return rows


def test_one_iterator_shared_by_threads_never_raises_a_foreign_error() -> None:
    """Fixed bug: one `DbIterator` shared by threads raises `RuntimeError: Already borrowed`.

    Four threads drain one iterator (two with `next`, two with `next_batch(7)`). Rows are not
    duplicated or lost, but thousands of calls fail with PyO3's `RuntimeError("Already
    borrowed")`, which is not a `slatedb_py.errors` class and tells the caller nothing.

    Expected: calls serialize (the iterator is shared state, like a file object), or at worst
    raise a documented `SlateDBError`.
    Actual: `RuntimeError: Already borrowed` from `Cursor.__next__` / `Cursor.take`.

    Root cause: bindings/read.rs `PyCursor` is a plain (non-frozen) pyclass whose `current()`
    calls the Python refill (fetch driver, GIL released in native reads) while `&mut self` is
    borrowed; a concurrent `__next__`/`take`/`skip_below`/`invalidate` fails the borrow."""
    store = MemoryStore()
    rows = _load(store)
    with Db.open("db", store, OPTS) as db:
        it = db.scan()
        got: list[bytes] = []
        foreign: list[BaseException] = []
        lock = threading.Lock()

        def drain(batch: bool) -> None:
            while True:
                try:
                    if batch:
                        page = it.next_batch(7)
                    else:
                        try:
                            page = [next(it)]
                        except StopIteration:
                            page = []
                except SlateDBError:
                    continue
                except Exception as e:
                    with lock:
                        foreign.append(e)
                    continue
                if not page:
                    return
                with lock:
                    got.extend(k for k, _ in page)

        threads = [
            threading.Thread(target=drain, args=(i % 2 == 0,), daemon=True) for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    assert sorted(got) == [k for k, _ in rows], "rows duplicated or lost"
    assert not foreign, f"{len(foreign)} foreign errors, e.g. {foreign[0]!r}"


@pytest.mark.parametrize("kind", ["db", "reader"])
def test_close_while_another_thread_loads_a_page(kind: str) -> None:
    """Fixed bug: closing a `Db` (or `DbReader`) while another thread is loading an iterator page
    raises `RuntimeError: Already borrowed` out of `close()`, and the close stops half-way.

    One thread calls `next(it)`; its SST read is held at the store (a slow S3 GET). The main
    thread calls `close()`, which closes every open iterator (`DbIterator.close` ->
    `Cursor.invalidate`) before stopping the background threads. `invalidate` fails the borrow
    check, the exception escapes the `finally:` of `Db.close`, so `_stop` is never set: the
    flusher, compactor and collector threads keep running on a closed database (and
    `DbReader.close` leaves its poller running and its managed checkpoint undeleted).

    Expected: `close()` returns normally; background threads stopped.
    Actual: `RuntimeError: Already borrowed` from `close()`; `_stop` not set.

    Root cause: db.py `Db.close` / reader.py `DbReader.close` call `it.close()` for every
    iterator before anything else in the shutdown; `PyCursor.invalidate` needs `&mut self`,
    which the other thread holds for the whole page load (bindings/read.rs)."""
    inner = MemoryStore()
    _load(inner)
    store = FaultyStore(inner)
    if kind == "db":
        h: Any = Db.open("db", store, DbOptions(flush_interval=None, block_cache_bytes=0))
    else:
        h = DbReader.open("db", store, options=ReaderOptions(block_cache_bytes=0))
    it = h.scan()
    reached = gate(store, "iterating", None, "compacted")
    outcome: list[Any] = []

    def iterate() -> None:
        try:
            outcome.append(next(it))
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=iterate, name="iterating", daemon=True)
    t.start()
    error: BaseException | None = None
    try:
        assert reached.wait(20), "the page load never reached the store"
        try:
            h.close()
        except BaseException as e:
            error = e
    finally:
        store.gate.set()
        t.join(20)
    stopped = h._stop.is_set()
    if error is not None:  # finish the shutdown the failed close skipped
        h._closed = False
        h.close()
    assert error is None, f"close() raised {error!r}"
    assert stopped, "close() returned without stopping the background threads"
