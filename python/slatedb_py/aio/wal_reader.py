"""`aio.WalReader`: the change stream (`slatedb_py.WalReader`), with `async for`.

A stream runs the sync stream in one worker thread of its own, which hands changes to the
event loop through a bounded buffer (it waits when the consumer is `MAX_BUFFERED` behind):
reading WAL objects and, with `follow=True`, waiting between polls stay off the loop, and a
row costs no thread hop. `close()` (or leaving `async with`) ends every stream at its next
poll, as the sync reader's close does.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from datetime import timedelta
from typing import Any

from slatedb_py import wal_reader as sync
from slatedb_py.clock import Clock
from slatedb_py.wal_reader import Change

MAX_BUFFERED = 4096
_END = object()


class _Stream:
    def __init__(self, reader: sync.WalReader, since_seq: int, follow: bool) -> None:
        self._reader, self._since, self._follow = reader, since_seq, follow
        self._items: deque[Any] = deque()
        self._room = threading.Semaphore(MAX_BUFFERED)
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._done = False

    def __aiter__(self) -> _Stream:
        return self

    def _produce(self) -> None:
        try:
            for change in self._reader.changes(self._since, follow=self._follow):
                self._room.acquire()
                if self._done:
                    return
                self._push(change)
            self._push(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._push(e)

    def _push(self, item: Any) -> None:
        self._items.append(item)
        assert self._loop is not None and self._ready is not None
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop closed under an abandoned stream
            self._done = True

    async def __anext__(self) -> Change:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._ready = asyncio.Event()
            self._thread = threading.Thread(
                target=self._produce, name="slatedb-aio-changes", daemon=True
            )
            self._thread.start()
        assert self._ready is not None
        while not self._items:
            if self._done:
                raise StopAsyncIteration
            self._ready.clear()
            if not self._items:
                await self._ready.wait()
        item = self._items.popleft()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._room.release()
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stops this stream's thread (at its next poll or row) and drops what it buffered."""
        self._done = True
        self._items.clear()
        self._room.release()  # a producer waiting for room wakes and sees `_done`


class WalReader:
    """`async for change in aio.WalReader(path, store).changes(since_seq=0, follow=True)`."""

    def __init__(
        self,
        path: str,
        store: Any,
        *,
        poll_interval: timedelta = timedelta(seconds=1),
        clock: Clock | None = None,
    ) -> None:
        self._sync = sync.WalReader(path, store, poll_interval=poll_interval, clock=clock)
        self._streams: list[_Stream] = []

    @property
    def sync(self) -> sync.WalReader:
        return self._sync

    def changes(self, since_seq: int = 0, *, follow: bool = False) -> _Stream:
        """Every write with seq > `since_seq`, in sequence order (`WalReader.changes`)."""
        stream = _Stream(self._sync, since_seq, follow)
        self._streams.append(stream)
        return stream

    def close(self) -> None:
        self._sync.close()
        for s in self._streams:
            s.close()

    async def __aenter__(self) -> WalReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
