"""Metrics move exactly as operations happen (`slatedb_py.metrics`), on writers, readers,
the compactor and the asyncio twin; diagnostics go to the `slatedb_py` loggers at their
levels, and nothing is printed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, WriteBatch, aio
from slatedb_py.clock import SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import FencedError
from slatedb_py.metrics import COUNTERS
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from tests.support import FaultyStore

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def moved(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_every_operation_moves_its_counters_by_exactly_its_amount() -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    m0 = db.metrics()
    assert all(m0[k] == 0 for k in ("writes_total", "reads_total", "l0_flushes_total"))
    db.put(b"k1", b"vvvv")
    db.write(WriteBatch().put(b"k2", b"v").delete(b"k3").put(b"k4", b"vv"))
    db.put(b"k5", b"x", await_durable=False)
    m1 = db.metrics()
    d = moved(m0, m1)
    assert d["writes_total"] == 3 and d["writes_keys_total"] == 5
    assert d["wal_uploads_total"] == 2 and d["durable_wait_seconds_count"] == 2
    assert d["store_put_if_absent_requests_total"] == 2
    assert d["store_requests_wal_put_if_absent_total"] == 2  # and by folder: both to wal/
    assert d["wal_upload_bytes_total"] == d["store_written_bytes_total"] > 0
    assert m1["last_seq"] == 3 and m1["durable_seq"] == 2
    assert db.get(b"k1") == b"vvvv"
    assert db.get_many([b"k2", b"k4", b"nope"]) == [b"v", b"vv", None]
    assert len(list(db.scan())) == 4
    d = moved(m1, db.metrics())
    assert d == {
        "reads_total": 4,
        "reads_bytes_total": 7,
        "scans_total": 1,
        "scans_rows_total": 4,
    }
    db.flush_memtable()
    m2 = db.metrics()
    assert m2["l0_flushes_total"] == 1 and m2["l0_ssts"] == 1
    d = moved(m1, m2)  # the WAL tail, the L0 SST, the manifest: one request each
    assert {k: v for k, v in d.items() if k.startswith("store_requests_")} == {
        "store_requests_wal_put_if_absent_total": 1,
        "store_requests_compacted_put_total": 1,
        "store_requests_manifest_put_if_absent_total": 1,
    }
    assert m2["l0_flush_bytes_total"] > 0
    db.compact()
    m3 = db.metrics()
    assert m3["compaction_runs_total"] == 1 and m3["sorted_runs"] == 1 and m3["l0_ssts"] == 0
    bulk = WriteBatch()
    for i in range(5000):  # far more than one tail read: blocks go through the cache
        bulk.put(b"bulk%05d" % i, b"x" * 100)
    db.write(bulk)
    db.close()
    # A cold reader: block reads miss, then hit.
    with DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=None)) as r:
        r0 = r.metrics()
        assert r.get(b"bulk00001") == b"x" * 100
        assert r.get(b"bulk00002") == b"x" * 100
        r1 = r.metrics()
        assert r1["reads_total"] - r0["reads_total"] == 2
        assert r1["block_cache_misses_total"] >= 1 and r1["block_cache_hits_total"] >= 1
        assert r1["store_get_requests_total"] + r1["store_get_ranges_requests_total"] > 0
    assert set(COUNTERS) - {"durable_wait_micros_sum"} - {
        f"durable_wait_bucket_{i}" for i in range(20)
    } <= set(m3)


def test_retries_and_failures_are_counted() -> None:
    faulty = FaultyStore(MemoryStore(), error_rate=0.2, seed=3)
    db = Db.open("db", faulty, OPTS)
    for i in range(50):
        db.put(b"k%d" % i, b"v")
    db.close()
    m = db.metrics()  # a closed handle still reports what it did
    assert m["store_retries_total"] == faulty.injected > 0
    assert m["store_failures_total"] == 0


def test_the_compactor_and_the_aio_twin_report_theirs() -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        for part in range(3):
            db.put(b"p%d" % part, b"v")
            db.flush_memtable()
    compactor = Compactor(Store.resolve(store), DbPaths.of("db"), OPTS, SystemClock())
    compactor.run_once(full=True)
    assert compactor.metrics()["compaction_runs_total"] == 1

    async def main() -> dict[str, Any]:
        async with await aio.Db.open("db", store, OPTS) as db:
            await asyncio.gather(*(db.put(b"a%d" % i, b"v") for i in range(100)))
            assert await db.get(b"a1") == b"v"
            return db.sync.metrics()

    m = asyncio.run(main())
    assert m["durable_wait_seconds_count"] == 100  # each waiter, not each upload
    assert m["wal_uploads_total"] < 100
    assert m["reads_total"] == 1


def test_logs_tell_open_flush_compaction_fencing_and_requests(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    store = MemoryStore()
    with caplog.at_level(logging.DEBUG, logger="slatedb_py"):
        db = Db.open("db", store, OPTS)
        db.put(b"k", b"v")
        db.flush_memtable()
        db.compact()
        newer = Db.open("db", store, OPTS)
        with pytest.raises(FencedError):
            db.put(b"x", b"y")
        newer.close()
        db.close()
    by = {(r.name, r.levelname) for r in caplog.records}
    assert ("slatedb_py.db", "INFO") in by
    assert ("slatedb_py.flush", "DEBUG") in by
    assert ("slatedb_py.compactor", "INFO") in by
    assert ("slatedb_py.store", "DEBUG") in by
    fenced = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "slatedb_py.db"]
    assert fenced and "fenced" in fenced[0].getMessage()
    opened = [r.getMessage() for r in caplog.records if r.name == "slatedb_py.db"]
    assert any(m.startswith("opened 'db' as its writer") for m in opened)
    assert capsys.readouterr().out == ""


def test_a_retried_error_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    faulty = FaultyStore(MemoryStore(), error_rate=0.3, seed=1)
    with caplog.at_level(logging.WARNING, logger="slatedb_py"), Db.open("db", faulty, OPTS) as db:
        for i in range(20):
            db.put(b"k%d" % i, b"v")
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retried) == faulty.injected > 0
    assert all(r.name == "slatedb_py.store" and r.levelname == "WARNING" for r in retried)


def test_the_prometheus_exporter_serves_every_metric() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from slatedb_py.prometheus import register

    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put(b"k", b"v")
        assert db.get(b"k") == b"v"
        registry = CollectorRegistry()
        register(db, registry, labels={"db": "orders"})
        text = generate_latest(registry).decode()
    assert 'slatedb_py_writes_total{db="orders"} 1.0' in text
    assert 'slatedb_py_reads_total{db="orders"} 1.0' in text
    assert (  # the open's WAL fence and the put's WAL object
        'slatedb_py_store_requests_total{db="orders",folder="wal",kind="put_if_absent"} 2.0' in text
    )
    assert 'slatedb_py_durable_wait_seconds_count{db="orders"} 1.0' in text
    assert 'slatedb_py_durable_wait_seconds_bucket{db="orders",le="+Inf"} 1.0' in text
    assert 'slatedb_py_last_seq{db="orders"} 1.0' in text
