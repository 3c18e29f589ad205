"""What each operation costs in requests on S3 (moto), counted from the server's own log and
held to budgets: requests are what object storage bills, and their counts are deterministic.

| operation                            | budget                     | SlateDB 0.17.0 |
|--------------------------------------|----------------------------|----------------|
| open + close of an existing database | <= 8                       | 43.5           |
| an idle open database                | <= 2 per 10 s (none until  | 32 per 10 s    |
|                                      | its view is 30 s old)      |                |
| 1,000 sequential durable puts        | 1,000 PUTs, nothing else   | 2,467          |
| memtable flush to L0                 | <= 6                       | 4              |
| checkpoint create                    | <= 4                       | 5              |
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from slatedb_py import Db, DbReader, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.safety import CLIENT_WINDOW_S
from tests.support import STORE_KINDS, Requests, S3Server

pytestmark = pytest.mark.skipif(
    "s3" not in STORE_KINDS, reason="S3 (moto) is not among the stores under test"
)


@pytest.fixture
def bucket() -> Iterator[tuple[Any, Requests]]:
    server = S3Server.get()
    name = server.new_bucket()
    yield server.store(name), Requests(server, name)


def made(store: Any, opts: DbOptions | None = None, clock: Any = None) -> None:
    with Db.open("db", store, opts, clock=clock) as db:
        db.put(b"seed", b"1")


def total(c: Counter[str]) -> int:
    return sum(c.values())


def test_open_and_close_of_an_existing_database(bucket: tuple[Any, Requests]) -> None:
    store, req = bucket
    made(store)
    req.take()
    Db.open("db", store).close()
    got = req.take()
    assert total(got) <= 8, got
    # Its look for a `.deleting` marker (a GET that finds nothing), its look at the manifest,
    # its epoch, its WAL fence: nothing read twice, nothing polled.
    assert got == {"LIST": 2, "GET": 2, "PUT": 2}, (got, req.by_folder)
    assert req.by_folder["GET db"] == 1, req.by_folder


def test_an_idle_database_polls_nothing_until_its_view_is_30_s_old(
    bucket: tuple[Any, Requests],
) -> None:
    store, req = bucket
    clock = ManualClock(time.time_ns() // 1_000_000)
    # A compactor round every 10 ms: a hundred rounds a second, each on the writer's own
    # manifest, so the store sees none of them.
    opts = DbOptions(compactor_poll_interval=timedelta(milliseconds=10))
    made(store, opts, clock)
    with Db.open("db", store, opts, clock=clock):
        req.take()
        time.sleep(1.0)
        assert req.take() == {}
        clock.advance(int(CLIENT_WINDOW_S * 1000))
        time.sleep(1.0)
        assert req.take() == {"LIST": 1}  # one short look; the manifest is the one it holds
        time.sleep(0.5)
        assert req.take() == {}


def test_durable_puts_cost_their_wal_put_and_nothing_else(bucket: tuple[Any, Requests]) -> None:
    store, req = bucket
    with Db.open("db", store) as db:
        req.take()
        for i in range(1000):
            db.put(b"k%05d" % i, b"v" * 100)
        assert req.take() == {"PUT": 1000}


def test_a_memtable_flush_and_a_checkpoint(bucket: tuple[Any, Requests]) -> None:
    store, req = bucket
    with Db.open("db", store) as db:
        for i in range(100):
            db.put(b"k%05d" % i, b"v" * 100, await_durable=False)
        req.take()
        db.flush_memtable()
        got = req.take()
        assert total(got) <= 6 and got == {"PUT": 3}, got  # WAL tail, L0 SST, manifest
        db.create_checkpoint()
        got = req.take()
        assert total(got) <= 4, got
    req.take()
    admin.create_checkpoint("db", store)  # another process's: it looks first
    got = req.take()
    assert total(got) <= 4, got


def test_a_following_reader_polls_with_one_short_wal_listing(bucket: tuple[Any, Requests]) -> None:
    store, req = bucket
    with Db.open("db", store) as db:
        db.put(b"a", b"1")
        opts = ReaderOptions(manifest_poll_interval=timedelta(milliseconds=100))
        with DbReader.open("db", store, options=opts) as reader:
            req.take()
            time.sleep(1.0)  # about ten polls of an idle database
            polls = req.take()
            assert set(polls) == {"LIST"} and set(req.by_folder) == {"LIST wal"}, req.by_folder
            for i in range(3):
                db.put(b"k%d" % i, b"v")
            while reader.get(b"k2") is None:
                time.sleep(0.05)
            req.take()
            # The writer's three WAL objects, each read once by the reader; polls LIST only
            # the WAL, and nothing touched the manifest.
            assert req.by_folder["PUT wal"] == 3 and req.by_folder["GET wal"] == 3, req.by_folder
            assert not any("manifest" in k for k in req.by_folder), req.by_folder
