"""How the asyncio twin runs the one engine without blocking the event loop.

- Reads run on the loop inside `loop_guard.inline`: a read served from memory (memtables,
  block cache, a local folder's SSTs, read natively) answers there at once; one that needs
  the store raises `WouldBlock` before any I/O and runs again, whole, in a worker thread.
- Writes are applied on the loop inside `writes.deferred` (the writer lock and a memtable
  insert: a short native call); freezing a full memtable, which may wait for an upload, goes
  to a worker thread.
- Durable waits share uploads without a thread per waiter (`Durability`): the waiters of
  one round share one future, and one driver task per database uploads for the highest seq
  waited for, then resolves the round's future. A thousand concurrent durable puts cost one
  upload at a time and no thread each. On a store that answers without a network round trip
  (`Store.near`: a local folder, memory) the upload runs on the loop itself, a file write
  like a local read; with no round under way, the waiter yields once and uploads for
  everyone who wrote meanwhile, with no driver at all. It goes to a worker thread (the
  engine's group commit, `WalWriter.await_durable`) when the store is remote or when
  uploading would mean waiting: for another thread's upload, a freeze, or a retry's
  back-off. (A hop to a thread and back costs 120-180 us on a small VM, as much as the
  upload itself.)
- Everything else that does I/O (open, close, flush, compaction, admin) runs in a worker
  thread (`asyncio.to_thread`).

Cancelling a task that awaits a write leaves the write applied (it was, before the first
await) and, if durability was asked for, on its way to the WAL; the task gets
CancelledError. A write is never half applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from slatedb_py.batch import check_key
from slatedb_py.clock import monotonic_of
from slatedb_py.columnar import (
    BATCH_BYTES,
    BATCH_ROWS,
    ArrowBatches,
    RecordBatch,
    batch_of,
    split_rows,
)
from slatedb_py.errors import InvalidArgumentError
from slatedb_py.loop_guard import WouldBlock, inline
from slatedb_py.read_path import check_seek
from slatedb_py.writes import deferred

if TYPE_CHECKING:
    from slatedb_py.db import Db as SyncDb

T = TypeVar("T")


async def read(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the loop when it needs no I/O, else in a worker thread."""
    try:
        with inline:
            return fn(*args)
    except WouldBlock:
        pass
    return await asyncio.to_thread(fn, *args)


class Durability:
    """Durable waits of one database on one event loop (module docstring).

    Waiters share futures: every waiter of one round awaits `_round`, which the driver
    resolves when an upload covers the round's highest seq. A thousand waiters cost one
    future and one `set_result`, not a thousand (each costs a microsecond or more). A waiter
    that is cancelled cancels the shared future under the others (asyncio cancels what a
    task awaits); they tell that from their own cancellation (`Task.cancelling`) and wait
    on again."""

    def __init__(self, db: SyncDb) -> None:
        self._db = db
        self._loop = asyncio.get_running_loop()
        self._round: asyncio.Future[None] | None = None  # waiters of the next upload
        self._target = 0  # the highest seq waited for in `_round`
        self._driver: asyncio.Task[None] | None = None
        self._now = monotonic_of(db._clock)

    async def wait(self, seq: int) -> None:
        db = self._db
        started = self._now()
        if self._driver is None and db._store.near and db._wal.durable.durable < seq:
            await self._upload_here(seq)
        while db._wal.durable.durable < seq:
            fut = self._start_round(seq)
            try:
                await fut
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this task was cancelled: its write stays applied
                # another waiter's cancellation cancelled the round: wait on
        db._store.metrics.durable_wait(self._now() - started)

    async def _upload_here(self, seq: int) -> None:
        """With no round under way on a near store: yields once, so that the tasks ready to
        run write too (and find this wait under way), then uploads on the loop for them all
        (the upload takes every row queued), without a driver task or a future: a lone
        task's durable put costs one loop turn more than a sync one. Where that upload would
        wait, or another task came first, the round (`wait`) takes over."""
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self._start_round(seq)  # the write is applied: it goes to the WAL all the same
            raise
        if self._driver is None and self._db._wal.durable.durable < seq:
            with inline:
                uploaded = self._db._wal.flush_without_waiting(seq)
            if not uploaded:  # it would wait: the round's driver waits in a thread
                self._start_round(seq, on_loop=False)

    def _start_round(self, seq: int, *, on_loop: bool = True) -> asyncio.Future[None]:
        """The round `seq` waits in (a new one if none is open), with its driver running
        (one that starts in a thread unless `on_loop`)."""
        fut = self._round
        if fut is None or fut.done():
            fut = self._round = self._loop.create_future()
            self._target = 0
        if seq > self._target:
            self._target = seq
        if self._driver is None:
            self._driver = self._loop.create_task(self._drive(on_loop))
        return fut

    async def _drive(self, on_loop: bool) -> None:
        wal = self._db._wal
        near = self._db._store.near
        try:
            while (fut := self._round) is not None and not fut.done():
                # Writes that come while this round uploads wait for the next one.
                self._round = None
                target = self._target
                here, on_loop = near and on_loop, True  # only a first round may hand over
                try:
                    if here:
                        with inline:
                            uploaded = wal.flush_without_waiting(target)
                        if uploaded:
                            self._settle(fut, None)
                            continue
                    await asyncio.to_thread(wal.await_durable, target, observe=False)
                except Exception as e:  # this round's waiters get it; later ones try again
                    self._settle(fut, e)
                else:
                    self._settle(fut, None)
        finally:
            self._driver = None

    @staticmethod
    def _settle(fut: asyncio.Future[None], error: Exception | None) -> None:
        if fut.done():  # cancelled under a waiter's cancellation: its waiters wait on
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
            fut.exception()  # read here: a round whose waiters all left must not warn


class Writer:
    """The write side of one database for the asyncio twin (module docstring)."""

    def __init__(self, db: SyncDb) -> None:
        self._db = db
        self._durability: Durability | None = None

    async def write(self, apply: Callable[[], object], await_durable: bool) -> None:
        """Runs `apply` (a sync write entry point, called with await_durable=False) on the
        loop, deferred; then freezes a full memtable and waits for durability off it."""
        with deferred:
            apply()
        done = deferred.result
        if done is not None and (done[1] or await_durable):
            await self.finish(done, await_durable)

    async def finish(self, done: tuple[int, bool], await_durable: bool) -> None:
        """What a deferred write `done` (its seq, whether it filled the memtable) leaves:
        the freeze, in a thread, and the durable wait."""
        seq, full = done
        if full:
            await asyncio.to_thread(self._db._flusher.after_fill)
        if await_durable:
            await self.durable(seq)

    def durable(self, seq: int) -> Awaitable[None]:
        """Waits until `seq` is durable (a plain function returning the wait's coroutine:
        a put awaits it directly, one coroutine frame fewer per durable put)."""
        d = self._durability
        if d is None or d._loop is not asyncio.get_running_loop():
            d = self._durability = Durability(self._db)
        return d.wait(seq)


class AsyncIterator:
    """`async for` over a sync iterator (a scan's `DbIterator`, a transaction's): rows come
    from a worker thread a batch at a time, so a page load never blocks the loop. `bounds`
    is the scan's range and `reverse` its order, for a seek into rows already fetched."""

    BATCH = 1024

    def __init__(self, it: Any, bounds: tuple[bytes | None, bytes | None], reverse: bool) -> None:
        self._it = it
        self._bounds = bounds
        self._reverse = reverse
        self._rows: list[tuple[bytes, bytes]] = []
        self._at = 0
        self._last: bytes | None = None  # the last key handed out
        self._floor: bytes | None = None  # the last seek's key

    def __aiter__(self) -> AsyncIterator:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        if self._at == len(self._rows):
            self._rows = await asyncio.to_thread(self._it.next_batch, self.BATCH)
            self._at = 0
            if not self._rows:
                raise StopAsyncIteration
        row = self._rows[self._at]
        self._at += 1
        self._last = row[0]
        return row

    async def next_batch(self, n: int) -> list[tuple[bytes, bytes]]:
        """Up to `n` rows (fewer only at the end); an empty list once finished."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidArgumentError(f"next_batch needs a positive int, not {n!r:.40}")
        out = self._rows[self._at : self._at + n]
        self._at += len(out)
        if len(out) < n:
            out += await asyncio.to_thread(self._it.next_batch, n - len(out))
        if out:
            self._last = out[-1][0]
        return out

    async def seek(self, key: bytes) -> None:
        """As the sync iterator's seek: forward, inside the range, past the last key handed
        out. A target among the rows fetched already skips to it here; one past them seeks
        the sync iterator (whose own position is the end of those rows)."""
        rest = self._rows[self._at :]
        if self._reverse or not rest or check_key(key) > rest[-1][0]:
            self._rows, self._at = [], 0
            await asyncio.to_thread(self._it.seek, key)
            self._floor = key
            return
        check_seek(key, self._bounds, self._last, self._floor)
        self._floor = key
        while self._rows[self._at][0] < key:
            self._at += 1

    def to_arrow(
        self, batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES
    ) -> AsyncArrowBatches:
        """`async for batch in it.to_arrow()`: the rest of the scan as Arrow record batches,
        as the sync `to_arrow`, each loaded in a worker thread."""
        first, self._rows, self._at = self._rows[self._at :], [], 0
        batches = self._it.to_arrow(batch_rows, batch_bytes)
        return AsyncArrowBatches(first, batches, batch_rows, batch_bytes)

    def close(self) -> None:
        self._rows, self._at = [], 0
        self._it.close()

    async def __aenter__(self) -> AsyncIterator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncArrowBatches:
    """The batches of a sync `ArrowBatches` (`to_arrow`), each loaded in a worker thread;
    `first`: rows the async iterator had fetched already, handed out first."""

    def __init__(
        self,
        first: list[tuple[bytes, bytes]],
        batches: ArrowBatches,
        batch_rows: int,
        batch_bytes: int,
    ) -> None:
        self._first = first
        self._batches = batches
        self._rows, self._bytes = batch_rows, batch_bytes

    def __aiter__(self) -> AsyncArrowBatches:
        return self

    async def __anext__(self) -> RecordBatch:
        if self._first:
            rows, self._first = split_rows(self._first, self._rows, self._bytes)
            return batch_of(rows)
        b = await asyncio.to_thread(self._batches.next_batch)
        if b is None:
            raise StopAsyncIteration
        return b
