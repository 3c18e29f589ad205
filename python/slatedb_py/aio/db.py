"""`aio.Db`, `aio.DbReader`, their snapshots and transactions: the sync classes' names and
arguments, awaitable, wrapping the one engine (`_bridge` says how the loop stays free)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from threading import get_ident
from typing import Any

from slatedb_py import db as sync_db
from slatedb_py import reader as sync_reader
from slatedb_py.aio._bridge import AsyncIterator, Writer, read
from slatedb_py.batch import Many, WriteBatch, check_key, prefix_end
from slatedb_py.checkpoint import CheckpointCreateResult
from slatedb_py.clock import Clock
from slatedb_py.config import CheckpointOptions, DbOptions, IsolationLevel, ReaderOptions
from slatedb_py.loop_guard import WouldBlock, inline


def _listed(keys: Many) -> Many:
    # A read may run twice (on the loop, then in a thread): a one-shot iterator must not be
    # used up by the first try. Lists, numpy and Arrow arrays are read as they are.
    return list(keys) if isinstance(keys, Iterator) else keys


class _Reads:
    """get, get_many, scan and scan_prefix of a sync reader, awaitable."""

    _sync: Any

    async def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None when it is absent, deleted or expired."""
        # The hot path, `_bridge.read` written out: one coroutine, not two, and the switch
        # set by hand (a `with` costs two method calls per get).
        g = inline
        g.owner = get_ident()
        try:
            return self._sync.get(key)  # type: ignore[no-any-return]
        except WouldBlock:
            pass
        finally:
            g.owner = 0
        return await asyncio.to_thread(self._sync.get, key)

    async def get_many(self, keys: Many) -> list[bytes | None]:
        """The values of `keys` in order (None where absent)."""
        return await read(self._sync.get_many, _listed(keys))

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, reverse: bool = False
    ) -> AsyncIterator:
        """`async for key, value in db.scan(a, b)`: as the sync scan, rows fetched off the
        event loop a batch at a time."""
        return AsyncIterator(self._sync.scan(start, end, reverse=reverse), (start, end), reverse)

    def scan_prefix(self, prefix: bytes, *, reverse: bool = False) -> AsyncIterator:
        p = check_key(prefix)
        it = self._sync.scan_prefix(p, reverse=reverse)
        return AsyncIterator(it, (p, prefix_end(p)), reverse)


class DbSnapshot(_Reads):
    """A consistent view (`Db.snapshot`), awaitable; `async with` closes it."""

    def __init__(self, snap: Any) -> None:
        self._sync = snap

    @property
    def seq(self) -> int:
        return int(self._sync.seq)

    def close(self) -> None:
        self._sync.close()

    async def __aenter__(self) -> DbSnapshot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class DbTransaction(_Reads):
    """A transaction (`Db.begin`), awaitable. `async with db.begin() as txn:` commits on
    normal exit and rolls back on an exception, as the sync one does."""

    def __init__(self, txn: Any, writer: Writer) -> None:
        self._sync = txn
        self._writer = writer

    @property
    def seq(self) -> int:
        return int(self._sync.seq)

    @property
    def isolation(self) -> IsolationLevel:
        return IsolationLevel(self._sync.isolation)

    async def put(self, key: bytes, value: bytes, *, ttl: timedelta | None = None) -> None:
        self._sync.put(key, value, ttl=ttl)  # buffered in the transaction: no I/O

    async def delete(self, key: bytes) -> None:
        self._sync.delete(key)

    async def merge(self, key: bytes, operand: bytes, *, ttl: timedelta | None = None) -> None:
        self._sync.merge(key, operand, ttl=ttl)

    async def commit(self, *, await_durable: bool = True) -> None:
        """Applies the transaction's writes atomically (or raises TransactionConflictError
        and applies nothing); durable when it returns unless `await_durable=False`."""
        await self._writer.write(lambda: self._sync.commit(await_durable=False), await_durable)

    async def rollback(self) -> None:
        self._sync.rollback()

    async def __aenter__(self) -> DbTransaction:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()


class Db(_Reads):
    """The writer (`slatedb_py.Db`), awaitable: `async with await aio.Db.open(path, store)`.
    `sync` is the engine's `Db` itself, for code that shares the database with threads."""

    _sync: sync_db.Db

    def __init__(self, db: sync_db.Db) -> None:
        self._sync = db
        self._writer = Writer(db)

    @classmethod
    async def open(
        cls, path: str, store: Any, options: DbOptions | None = None, *, clock: Clock | None = None
    ) -> Db:
        return cls(await asyncio.to_thread(sync_db.Db.open, path, store, options, clock=clock))

    @property
    def sync(self) -> sync_db.Db:
        return self._sync

    @property
    def path(self) -> str:
        return self._sync.path

    @property
    def options(self) -> DbOptions:
        return self._sync.options

    async def put(
        self, key: bytes, value: bytes, *, ttl: timedelta | None = None, await_durable: bool = True
    ) -> None:
        """Writes `key` = `value`; durable when it returns unless `await_durable=False`."""
        # The hot path, without a nested coroutine or the `deferred` switch (a thread-local,
        # set, read and reset per write: `_bridge.Writer.write` is the general form):
        # applied on the loop; the rest only when there is a rest.
        done = self._sync._apply_put(key, value, ttl)
        if done[1]:
            await self._writer.finish(done, await_durable)
        elif await_durable:
            await self._writer.durable(done[0])

    async def delete(self, key: bytes, *, await_durable: bool = True) -> None:
        db = self._sync
        await self._writer.write(lambda: db.delete(key, await_durable=False), await_durable)

    async def merge(
        self,
        key: bytes,
        operand: bytes,
        *,
        ttl: timedelta | None = None,
        await_durable: bool = True,
    ) -> None:
        db = self._sync
        await self._writer.write(
            lambda: db.merge(key, operand, ttl=ttl, await_durable=False), await_durable
        )

    async def write(self, batch: WriteBatch, *, await_durable: bool = True) -> None:
        db = self._sync
        await self._writer.write(lambda: db.write(batch, await_durable=False), await_durable)

    async def put_many(
        self,
        keys: Many,
        values: Many,
        *,
        ttl: timedelta | None = None,
        await_durable: bool = True,
        atomic: bool = True,
    ) -> None:
        """As the sync `put_many`. An atomic one is applied on the loop (one native copy of
        the arrays); with `atomic=False` its pieces are written in a worker thread, where a
        full memtable's freeze may wait."""
        db = self._sync
        if not atomic:
            await asyncio.to_thread(
                db.put_many, keys, values, ttl=ttl, await_durable=await_durable, atomic=False
            )
            return
        await self._writer.write(
            lambda: db.put_many(keys, values, ttl=ttl, await_durable=False), await_durable
        )

    async def delete_many(
        self, keys: Many, *, await_durable: bool = True, atomic: bool = True
    ) -> None:
        db = self._sync
        if not atomic:
            await asyncio.to_thread(db.delete_many, keys, await_durable=await_durable, atomic=False)
            return
        await self._writer.write(lambda: db.delete_many(keys, await_durable=False), await_durable)

    @property
    def atomic_limit(self) -> int:
        return self._sync.atomic_limit

    def snapshot(self) -> DbSnapshot:
        return DbSnapshot(self._sync.snapshot())

    def begin(self, isolation: IsolationLevel = IsolationLevel.SNAPSHOT) -> DbTransaction:
        return DbTransaction(self._sync.begin(isolation), self._writer)

    async def flush(self) -> None:
        await asyncio.to_thread(self._sync.flush)

    async def flush_memtable(self) -> None:
        await asyncio.to_thread(self._sync.flush_memtable)

    async def compact(self) -> None:
        await asyncio.to_thread(self._sync.compact)

    async def create_checkpoint(
        self, options: CheckpointOptions | None = None
    ) -> CheckpointCreateResult:
        return await asyncio.to_thread(self._sync.create_checkpoint, options)

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> Db:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class DbReader(_Reads):
    """A reader (`slatedb_py.DbReader`), awaitable: `await aio.DbReader.open(...)`."""

    _sync: sync_reader.DbReader

    def __init__(self, reader: sync_reader.DbReader) -> None:
        self._sync = reader

    @classmethod
    async def open(
        cls,
        path: str,
        store: Any,
        checkpoint_id: uuid.UUID | None = None,
        options: ReaderOptions | None = None,
        *,
        as_of: datetime | None = None,
        clock: Clock | None = None,
        backup_id: uuid.UUID | None = None,
    ) -> DbReader:
        r = await asyncio.to_thread(
            sync_reader.DbReader.open,
            path,
            store,
            checkpoint_id,
            options,
            as_of=as_of,
            clock=clock,
            backup_id=backup_id,
        )
        return cls(r)

    @property
    def sync(self) -> sync_reader.DbReader:
        return self._sync

    @property
    def manifest_id(self) -> int:
        return self._sync.manifest_id

    async def refresh(self) -> None:
        await asyncio.to_thread(self._sync.refresh)

    def snapshot(self) -> DbSnapshot:
        return DbSnapshot(self._sync.snapshot())

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> DbReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
