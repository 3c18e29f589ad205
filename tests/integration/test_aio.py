"""The asyncio twin (`slatedb_py.aio`): the same database through awaitable calls, side by
side with the sync API; durable waits share uploads without a thread each; the event loop
keeps running while uploads and fetches wait on the store; cancellation never half-applies."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch, aio
from slatedb_py.aio import _bridge
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import FencedError, InvalidArgumentError, TransactionConflictError
from slatedb_py.loop_guard import WouldBlock, inline
from slatedb_py.store import Store
from tests.support import FaultyStore, gate

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


class Ticker:
    """A coroutine that counts loop turns: it can only tick while the loop is free."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_threads = threading.active_count()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            self.max_threads = max(self.max_threads, threading.active_count())
            await asyncio.sleep(0)

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def until(self, n: int) -> None:
        start = self.ticks
        while self.ticks < start + n:
            await asyncio.sleep(0)


def test_a_thousand_concurrent_durable_puts_share_uploads_and_few_threads(store: Any) -> None:
    async def main() -> None:
        async with await aio.Db.open("db", store, OPTS) as db:
            before = threading.active_count()
            with Ticker() as ticker:
                await asyncio.gather(*(db.put(b"k%04d" % i, b"v%d" % i) for i in range(1000)))
            # One upload thread (plus the default executor's) for a thousand waiters.
            assert ticker.max_threads <= before + 3, (before, ticker.max_threads)
        async with await aio.Db.open("db", store, OPTS) as again:
            got = await again.get_many([b"k%04d" % i for i in range(1000)])
            assert got == [b"v%d" % i for i in range(1000)]

    run(main())
    with Db.open("db", store, OPTS) as db:  # and the sync API reads the same
        assert len(list(db.scan())) == 1000


def test_the_loop_runs_while_an_upload_and_a_fetch_wait_on_the_store() -> None:
    inner = MemoryStore()
    slow = FaultyStore(inner)

    async def main() -> None:
        db = await aio.Db.open("db", slow, OPTS)
        with Ticker() as ticker:
            reached = gate(slow, None, "put-if-absent", "wal")
            put = asyncio.ensure_future(db.put(b"k", b"v"))
            while not reached.is_set():
                await asyncio.sleep(0)
            await ticker.until(200)  # the upload is held at the gate; the loop is not
            assert not put.done()
            slow.gate.set()
            await put
            await db.flush_memtable()
        await db.close()
        # A fresh writer (cold cache) must fetch the L0 SST's blocks to answer.
        db = await aio.Db.open("db", slow, OPTS)
        with Ticker() as ticker:
            reached = gate(slow, None, ("get", "get_ranges"), "compacted")
            get = asyncio.ensure_future(db.get(b"k"))
            while not reached.is_set():
                await asyncio.sleep(0)
            await ticker.until(200)
            assert not get.done()
            slow.gate.set()
            assert await get == b"v"
        await db.close()

    run(main())


def test_a_cancelled_durable_write_is_applied_whole_or_not_at_all() -> None:
    slow = FaultyStore(MemoryStore())

    async def main() -> None:
        db = await aio.Db.open("db", slow, OPTS)
        reached = gate(slow, None, "put-if-absent", "wal")
        batch = WriteBatch().put(b"a", b"1").put(b"b", b"2").delete(b"c")
        task = asyncio.ensure_future(db.write(batch))
        while not reached.is_set():
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Applied before the wait began: visible whole, and durable once the upload ends.
        assert await db.get_many([b"a", b"b", b"c"]) == [b"1", b"2", None]
        never = asyncio.ensure_future(db.put(b"never", b"x"))
        never.cancel()  # before it ever ran: nothing applied
        with pytest.raises(asyncio.CancelledError):
            await never
        slow.gate.set()
        await db.flush()
        await db.close()
        async with await aio.Db.open("db", slow, OPTS) as again:
            assert await again.get_many([b"a", b"b", b"never"]) == [b"1", b"2", None]

    run(main())


@pytest.mark.parametrize("when", ["before the upload", "during the upload"])
def test_cancelling_one_durable_waiter_leaves_the_others_waiting(when: str) -> None:
    # Waiters of one upload share one future; cancelling one cancels that future under the
    # others, who must tell it from their own cancellation and wait on.
    slow = FaultyStore(MemoryStore())

    async def main() -> None:
        db = await aio.Db.open("db", slow, OPTS)
        reached = gate(slow, None, "put-if-absent", "wal")
        puts = [asyncio.ensure_future(db.put(b"k%d" % i, b"v%d" % i)) for i in range(5)]
        await asyncio.sleep(0)  # every put applied and waiting; the driver not yet run
        if when == "during the upload":
            while not reached.is_set():
                await asyncio.sleep(0)
        puts[2].cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        late = asyncio.ensure_future(db.put(b"late", b"v"))
        slow.gate.set()
        results = await asyncio.gather(*puts, late, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 2] == [None] * 5
        durable = db.sync._wal.durable.durable
        assert durable >= db.sync._last_seq  # the others returned durable
        await db.close()
        async with await aio.Db.open("db", slow, OPTS) as again:
            keys = [b"k%d" % i for i in range(5)] + [b"late"]
            assert await again.get_many(keys) == [b"v0", b"v1", b"v2", b"v3", b"v4", b"v"]

    run(main())


def test_a_lone_durable_put_cancelled_before_its_upload_still_reaches_the_wal() -> None:
    # On a near store a lone waiter yields once, then uploads itself; cancelled in that
    # yield, it hands the upload to a driver (the write is applied: it goes to the WAL).
    async def main() -> None:
        async with await aio.Db.open("db", MemoryStore(), OPTS) as db:
            put = asyncio.ensure_future(db.put(b"k", b"v"))
            await asyncio.sleep(0)  # applied, and yielding before its upload
            assert db.sync._last_seq == 1 and db.sync._wal.durable.durable == 0
            put.cancel()
            with pytest.raises(asyncio.CancelledError):
                await put
            for _ in range(100):
                if db.sync._wal.durable.durable >= 1:
                    break
                await asyncio.sleep(0)
            assert db.sync._wal.durable.durable >= 1

    run(main())


def test_the_inline_mark_is_seen_by_the_thread_that_set_it_only() -> None:
    seen: list[bool] = []
    with inline:
        worker = threading.Thread(target=lambda: seen.append(inline.here()))
        worker.start()
        worker.join()
        assert inline.here()
    assert seen == [False] and not inline.here()


def test_aio_and_sync_write_one_database_side_by_side(store: Any) -> None:
    model: dict[bytes, bytes] = {}
    lock = threading.Lock()

    async def main() -> None:
        db = await aio.Db.open("db", store, DbOptions(flush_interval=None, l0_sst_size_bytes=4096))

        def threads_write() -> None:
            for i in range(300):
                k, v = b"s%03d" % (i % 50), b"sync%d" % i
                db.sync.put(k, v, await_durable=i % 10 == 0)
                with lock:
                    model[k] = v

        t = threading.Thread(target=threads_write)
        t.start()
        for i in range(300):
            k, v = b"a%03d" % (i % 50), b"aio%d" % i
            await db.put(k, v, await_durable=i % 10 == 0)
            model[k] = v
            if i % 100 == 99:
                await db.flush_memtable()
        await asyncio.to_thread(t.join)
        assert dict([kv async for kv in db.scan()]) == model
        assert dict(db.sync.scan()) == model
        await db.close()

    run(main())
    with Db.open("db", store, OPTS) as db:
        assert dict(db.scan()) == model


def test_snapshots_transactions_and_conflicts() -> None:
    store = MemoryStore()

    async def main() -> None:
        async with await aio.Db.open("db", store, OPTS) as db:
            await db.put(b"x", b"0")
            async with db.snapshot() as snap:
                await db.put(b"x", b"1")
                assert await snap.get(b"x") == b"0"
                assert [kv async for kv in snap.scan()] == [(b"x", b"0")]
            async with db.begin() as txn:
                assert await txn.get(b"x") == b"1"
                await txn.put(b"y", b"t")
                assert [k async for k, _ in txn.scan()] == [b"x", b"y"]
            assert await db.get(b"y") == b"t"
            t1 = db.begin(IsolationLevel.SERIALIZABLE_SNAPSHOT)
            await t1.get(b"x")
            await t1.put(b"z", b"1")
            await db.put(b"x", b"other")
            with pytest.raises(TransactionConflictError):
                await t1.commit()
            assert await db.get(b"z") is None
            with pytest.raises(RuntimeError):
                async with db.begin() as txn:
                    await txn.put(b"w", b"1")
                    raise RuntimeError("rolled back")
            assert await db.get(b"w") is None

    run(main())


def test_iterators_match_the_sync_ones_with_seeks_and_batches() -> None:
    store = MemoryStore()
    keys = [b"k%05d" % i for i in range(0, 6000, 3)]
    rng = random.Random(5)

    async def main() -> None:
        async with await aio.Db.open("db", store, OPTS) as db:
            b = WriteBatch()
            for k in keys:
                b.put(k, k + b"!")
            await db.write(b)
            await db.flush_memtable()
            for _ in range(20):
                lo = rng.choice([None, *keys[:100]])
                got, want = db.scan(lo, None), db.sync.scan(lo, None)
                for _step in range(8):
                    action = rng.choice(["next", "batch", "seek"])
                    if action == "next":
                        assert await anext(got, None) == next(want, None)
                    elif action == "batch":
                        n = rng.randint(1, 1500)
                        assert await got.next_batch(n) == want.next_batch(n)
                    else:
                        k = b"k%05d" % rng.randint(0, 6100)
                        await _same_seek(got, want, k)
                assert [kv async for kv in got] == list(want)
            back = [kv async for kv in db.scan(reverse=True)]
            assert back == list(db.sync.scan(reverse=True))
            assert [kv async for kv in db.scan_prefix(b"k001")] == list(
                db.sync.scan_prefix(b"k001")
            )

    run(main())


async def _same_seek(got: Any, want: Any, key: bytes) -> None:
    """Seeks both; the aio iterator refuses exactly the seeks the sync one refuses."""
    try:
        want.seek(key)
    except InvalidArgumentError:
        with pytest.raises(InvalidArgumentError):
            await got.seek(key)
        return
    await got.seek(key)


def test_a_fenced_writer_fails_its_awaiting_writers() -> None:
    store = MemoryStore()

    async def main() -> None:
        db = await aio.Db.open("db", store, OPTS)
        await db.put(b"a", b"1")
        newer = await aio.Db.open("db", store, OPTS)
        with pytest.raises(FencedError):
            await asyncio.gather(*(db.put(b"k%d" % i, b"v") for i in range(50)))
        with pytest.raises(FencedError):
            await db.put(b"b", b"2")
        assert await newer.get(b"a") == b"1"
        await newer.close()
        await db.close()

    run(main())


def test_reader_admin_and_the_change_stream() -> None:
    store = MemoryStore()

    async def main() -> None:
        async with await aio.Db.open("db", store, OPTS) as db:
            for i in range(10):
                await db.put(b"k%d" % i, b"v%d" % i)
            cp = await db.create_checkpoint()
            await db.put(b"late", b"x")
            async with await aio.DbReader.open("db", store, cp.id) as r:
                assert await r.get(b"k3") == b"v3"
                assert await r.get(b"late") is None
            assert [c.id for c in await aio.admin.list_checkpoints("db", store)] == [cp.id]
            async with aio.WalReader("db", store) as wal:
                seen = [c.key async for c in wal.changes(since_seq=0)]
            assert seen == [b"k%d" % i for i in range(10)] + [b"late"]
            async with aio.WalReader("db", store, poll_interval=_ms(5)) as wal:
                stream = wal.changes(since_seq=11, follow=True)
                pending = asyncio.ensure_future(anext(stream))
                await db.put(b"followed", b"1")
                change = await asyncio.wait_for(pending, 10)
                assert (change.seq, change.key) == (12, b"followed")

    run(main())


def _ms(n: int) -> Any:
    from datetime import timedelta

    return timedelta(milliseconds=n)


def test_a_near_store_uploads_on_the_loop_and_falls_back_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hops: list[object] = []
    to_thread = asyncio.to_thread

    async def counted(fn: Any, *args: Any, **kw: Any) -> Any:
        hops.append(fn)
        return await to_thread(fn, *args, **kw)

    monkeypatch.setattr(_bridge.asyncio, "to_thread", counted)
    store = MemoryStore()

    async def main() -> None:
        async with await aio.Db.open("db", store, OPTS) as db:
            hops.clear()
            for i in range(20):
                await db.put(b"k%d" % i, b"v")
            assert hops == []  # memory answers at once: no hop to a thread and back
            # An upload that would have to wait (here: a retry's back-off) goes to a thread,
            # and its chunk is the next one sent.
            real = db.sync._store.put_if_absent
            calls = []

            def once_busy(key: str, data: Any) -> bool:
                calls.append(key)
                if len(calls) == 1:
                    raise WouldBlock
                return real(key, data)

            monkeypatch.setattr(db.sync._store, "put_if_absent", once_busy)
            await db.put(b"late", b"x")
            assert len(hops) == 1 and calls[0] == calls[1]
        async with await aio.Db.open("db", store, OPTS) as again:
            assert await again.get_many([b"k19", b"late"]) == [b"v", b"x"]

    run(main())


def test_a_store_retry_on_the_loop_hands_over_instead_of_sleeping() -> None:
    slept: list[float] = []
    store = Store(MemoryStore(), sleep=slept.append)
    tries = []

    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("reset")
        return 7

    with inline, pytest.raises(WouldBlock):
        store._call("put", "wal/1.sst", flaky)
    assert slept == [] and len(tries) == 1
    assert store._call("put", "wal/1.sst", flaky) == 7 and len(tries) == 2 and slept == []
    tries.clear()
    assert store._call("put", "wal/1.sst", flaky) == 7 and len(slept) == 1
