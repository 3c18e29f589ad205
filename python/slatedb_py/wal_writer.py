"""The writer's WAL: rows queued in the active memtable become `wal/<id>.sst` objects, on a
timer (`flush_interval`) or at once when a caller waits for durability.

Group commit: whoever uploads takes everything queued, and the writers waiting meanwhile sleep
(GIL released, in the native `DurableWatermark`) until an upload covers them. Chunks are
uploaded in order with consecutive ids; a chunk whose upload fails stays first in line.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from slatedb_py.clock import monotonic_s
from slatedb_py.errors import FencedError, SlateDBError, UnavailableError
from slatedb_py.loop_guard import WouldBlock
from slatedb_py.memtable import WalRows, new_durable_watermark
from slatedb_py.metrics import INDEX
from slatedb_py.safety import CLIENT_WINDOW_S

if TYPE_CHECKING:  # the Db owns this writer; only its type is named here
    from typing_extensions import Buffer

    from slatedb_py.db import Db

_EXTRA_ROUNDS = 3
_UPLOADS, _UPLOAD_BYTES = INDEX["wal_uploads_total"], INDEX["wal_upload_bytes_total"]


class WalWriter:
    def __init__(self, db: Db, next_wal_id: int, durable_seq: int) -> None:
        self.db = db
        self.lock = threading.Lock()  # one upload at a time; also held by a freeze
        # Chunks not yet stored, oldest first: encoded, or rows a freeze queued unencoded.
        self.unsent: list[tuple[Buffer | WalRows, int]] = []
        self.next_id = next_wal_id
        self.last_id = next_wal_id - 1
        self.durable = new_durable_watermark(durable_seq)

    def await_durable(self, seq: int, *, observe: bool = True) -> None:
        """Returns once `seq` is in a WAL object. One waiter at a time uploads everything
        queued (its own rows and those of everyone who wrote meanwhile); the others sleep,
        with the GIL released, until an upload covers them."""
        started = monotonic_s(self.db._clock)
        while True:
            claim = self.durable.wait_or_claim(seq)
            if claim == 0:
                if observe:  # the asyncio twin observes each of its waiters itself
                    self.db._store.metrics.durable_wait(monotonic_s(self.db._clock) - started)
                return
            if claim < 0:
                assert self.db._error is not None
                raise self.db._error
            try:
                self.flush(seq)
                self._upload_for_waiters()
            finally:
                self.durable.finish_upload()

    def _upload_for_waiters(self) -> None:
        """After its own upload, the uploader goes on uploading for the writers that parked
        meanwhile, up to `_EXTRA_ROUNDS` times. It holds the GIL; electing one of them
        instead costs a GIL hand-off, about a millisecond with hundreds of writer threads
        queued on the GIL, which then bounds the throughput of the group commit. Its own
        write is durable already: a failure here is left to the waiters, one of whom is
        elected and sees it."""
        for _ in range(_EXTRA_ROUNDS):
            if not self.durable.waiting:
                return
            try:
                self.flush()
            except SlateDBError:
                return

    def flush_without_waiting(self, seq: int) -> bool:
        """`await_durable(seq)` for a caller that must not wait (the asyncio twin's event
        loop, inside `loop_guard.inline`): True once `seq` is durable, uploading here if no
        other upload runs; False where that would mean waiting (for another upload, a freeze,
        a retry's back-off), and the caller waits in a thread instead. A chunk whose upload
        stopped for a retry stays first in line, as in `send_unsent`."""
        claim = self.durable.try_claim(seq)
        if claim == 0:
            return True
        if claim < 0:
            assert self.db._error is not None
            raise self.db._error
        if claim == 2:
            return False
        try:
            if not self.lock.acquire(blocking=False):
                return False
            try:
                self._upload_queued()
            except WouldBlock:
                return False
            finally:
                self.lock.release()
        finally:
            self.durable.finish_upload()
        return True

    def flush(self, target_seq: int | None = None) -> None:
        """Uploads everything queued as the next WAL object(s). Callers waiting for
        `target_seq` skip the upload when an earlier one already covered it."""
        with self.lock:
            if target_seq is None or self.durable.durable < target_seq:
                self._upload_queued()

    def _upload_queued(self) -> None:
        """Takes everything queued and uploads it. The caller holds `lock`."""
        self.check()
        upto = self._take_chunk()
        self.send_unsent()
        self.durable.advance(upto)

    def check(self) -> None:
        """Raises the error that failed the writer, if any. The caller holds `lock`."""
        if self.db._error is not None:
            raise self.db._error

    def _take_chunk(self) -> int:
        """Moves the active memtable's queued rows into an encoded chunk awaiting upload;
        returns the last seq it covers. The caller holds `lock`."""
        db = self.db
        with db._lock:
            upto = db._last_seq
            active = db._active  # only a freeze swaps it, and it holds `lock` too
        # Encoded outside `_lock`, so writers go on meanwhile. Every write up to `upto` is in
        # the memtable already (seq and insert share one critical section); rows written
        # since are taken too, and counted durable with the next chunk: conservative.
        self.queue(active.take_wal(db.options.compression), upto)
        return upto

    def queue(self, chunk: tuple[Buffer, int, int, int] | WalRows | None, upto: int) -> None:
        """Queues a chunk covering rows up to seq `upto`: encoded (`Memtable.take_wal`), or
        rows (`Memtable.take_wal_rows`) encoded when uploaded, so that a writer whose write
        froze the memtable does not encode them."""
        if isinstance(chunk, WalRows):
            self.unsent.append((chunk, upto))
        elif chunk is not None:
            self.unsent.append((chunk[0], upto))

    def last_id_after_queue(self, pending: bool) -> int:
        """The WAL id the last queued chunk will get, plus one more chunk if `pending`: what
        a frozen memtable records as the last WAL object holding its rows."""
        return max(self.next_id - 1 + len(self.unsent) + pending, self.last_id)

    def send_unsent(self) -> None:
        """Uploads pending chunks in order, each as the next WAL id. A chunk that fails with
        a transient store error stays first in line and is retried by the next flush; the
        rows are never dropped. The caller holds `lock`."""
        while self.unsent:
            data, upto = self.unsent[0]
            if isinstance(data, WalRows):  # encoded once: a retry uploads the same bytes
                data = data.encode(self.db.options.compression)[0]
                self.unsent[0] = (data, upto)
            self._upload(data)
            self.unsent.pop(0)
            self.durable.advance(upto)

    def _upload(self, data: Buffer) -> None:
        db = self.db
        wid = self.next_id
        key = db._paths.wal(wid)
        # An earlier attempt at this chunk may have landed with its response lost (the store
        # retried until it gave up): the object is then ours, byte for byte.
        if not db._store.put_if_absent(key, data) and db._store.get(key) != bytes(data):
            raise db._fail(
                FencedError(
                    f"WAL object {key!r} already exists: a newer writer opened "
                    f"{db._paths.root!r}; this writer is fenced"
                )
            )
        # The create proves the id was free, not that no newer writer fenced it and had the
        # fence collected: unless this writer's epoch was confirmed recently enough that such
        # a fence could not have been collected yet, look again before anyone is
        # acknowledged (slatedb_py.safety).
        if monotonic_s(db._clock) - db._fence.confirmed_at >= CLIENT_WINDOW_S:
            try:
                db._fence.confirm()
            except FencedError as e:
                raise db._fail(
                    FencedError(
                        f"{e} (found after uploading WAL object {key!r}, which lies below the "
                        "newer writer's replay point: nothing in it is acknowledged)"
                    )
                ) from e
        self.next_id = wid + 1
        self.last_id = wid
        db._store.metrics.add2(_UPLOADS, 1, _UPLOAD_BYTES, memoryview(data).nbytes)

    def run_ticker(self, stop: threading.Event, interval: timedelta) -> None:
        """The `flush_interval` thread: uploads whatever is queued on every tick."""
        while not stop.wait(interval.total_seconds()):
            try:
                self.flush()
            except UnavailableError:
                continue  # the store hiccupped; the next tick retries the same chunk
            except SlateDBError:
                return
