"""The asyncio twin in a service-like loop: many concurrent durable writes share WAL
uploads, reads and scans never block the event loop, and a transaction moves a balance."""

import asyncio
import tempfile

from obstore.store import LocalStore

from slatedb_py import aio


async def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        async with await aio.Db.open("service/db", LocalStore(root)) as db:
            # 1,000 concurrent durable puts: one upload thread, group commit.
            await asyncio.gather(*(db.put(b"user:%04d" % i, b"0") for i in range(1000)))
            async with db.begin() as txn:  # commits on leaving the block
                await txn.put(b"user:0001", b"100")
                await txn.put(b"user:0002", b"-100")
            users = [k async for k, _ in db.scan_prefix(b"user:")]
            print(f"{len(users)} users; user:0001 = {await db.get(b'user:0001')!r}")
            m = db.sync.metrics()
            print(f"{m['writes_total']} durable writes took {m['wal_uploads_total']} WAL uploads")


if __name__ == "__main__":
    asyncio.run(main())
