"""`slatedb_py.aio`: the asyncio twin. The sync API's names, awaitable, on the one engine
(`aio._bridge` says how the event loop stays free and how durable waits share uploads).

    async with await aio.Db.open(path, store) as db:
        await db.put(b"k", b"v")
        async for k, v in db.scan(b"a", b"z"): ...
        async with db.begin() as txn: ...
"""

from slatedb_py.aio import admin
from slatedb_py.aio._bridge import AsyncIterator as DbIterator
from slatedb_py.aio.db import Db, DbReader, DbSnapshot, DbTransaction
from slatedb_py.aio.wal_reader import WalReader

__all__ = ["Db", "DbIterator", "DbReader", "DbSnapshot", "DbTransaction", "WalReader", "admin"]
