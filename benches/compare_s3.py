"""The engine on a local S3-compatible server (moto, its own process on 127.0.0.1), beside the
official SlateDB 0.17.0 binding on the same server: throughput, and the object-store requests
(GET / PUT / LIST / HEAD / DELETE, as the server logged them) per 1k puts, per 1k gets and per
checkpoint; and the request table of each operation against its budget (the same budgets
`tests/integration/test_request_budgets_s3.py` asserts). Requests are what object storage
bills.

    make build-release && .venv/bin/python benches/compare_s3.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import Requests, S3Server

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.config import DbOptions, ReaderOptions


def fmt(c: Counter[str], per: float) -> str:
    return " ".join(f"{k}={v / per:.1f}" for k, v in sorted(c.items()) if v) or "-"


def ours(server: Any, n: int) -> dict[str, Any]:
    bucket = server.new_bucket()
    store = server.store(bucket)
    req = Requests(server, bucket)
    out: dict[str, Any] = {}
    db = Db.open("db", store, DbOptions(gc_enabled=False, compactor_enabled=False))
    req.take()
    t = time.perf_counter()
    for i in range(n):
        db.put(b"key%08d" % i, b"v" * 100)  # durable, one at a time
    out["durable_puts_per_s"] = n / (time.perf_counter() - t)
    out["req_per_1k_durable_puts"] = fmt(req.take(), n / 1000)
    t = time.perf_counter()
    for s in range(0, n * 10, 1000):
        b = WriteBatch()
        for i in range(s, s + 1000):
            b.put(b"bulk%08d" % i, b"v" * 100)
        db.write(b, await_durable=False)
    db.flush_memtable()
    out["batch_keys_per_s"] = n * 10 / (time.perf_counter() - t)
    req.take()
    t = time.perf_counter()
    for i in range(n):
        db.get(b"bulk%08d" % (i * 7 % (n * 10)))
    out["gets_per_s"] = n / (time.perf_counter() - t)
    out["req_per_1k_gets"] = fmt(req.take(), n / 1000)
    reader = DbReader.open(
        "db", store, options=ReaderOptions(manifest_poll_interval=None, managed_checkpoint=False)
    )
    req.take()
    t = time.perf_counter()
    for i in range(n):
        reader.get(b"bulk%08d" % (i * 7 % (n * 10)))
    out["cold_reader_gets_per_s"] = n / (time.perf_counter() - t)
    out["req_per_1k_cold_reader_gets"] = fmt(req.take(), n / 1000)
    t = time.perf_counter()
    cp = admin.create_checkpoint("db", store)
    out["checkpoint_ms"] = 1000 * (time.perf_counter() - t)
    out["req_per_checkpoint"] = fmt(req.take(), 1)
    reader.close()
    db.close()
    del cp
    return out


# The request table of the write-path issue: operation, budget (None: none set).
TABLE = (
    ("open + close of an existing database", 8),
    ("idle open database, per 10 s", 2),
    ("1,000 sequential durable puts", 1000),
    ("memtable flush to L0", 6),
    ("checkpoint create", 4),
)


def table_ours(server: Any) -> dict[str, Counter[str]]:
    bucket = server.new_bucket()
    store = server.store(bucket)
    req = Requests(server, bucket)
    rows = iter(name for name, _ in TABLE)
    out: dict[str, Counter[str]] = {}
    with Db.open("db", store) as db:
        db.put(b"seed", b"1")
    req.take()
    Db.open("db", store).close()
    out[next(rows)] = req.take()
    with Db.open("db", store) as db:
        req.take()
        time.sleep(10)
        out[next(rows)] = req.take()
        for i in range(1000):
            db.put(b"key%08d" % i, b"v" * 100)
        out[next(rows)] = req.take()
        for i in range(1000):
            db.put(b"more%08d" % i, b"v" * 100, await_durable=False)
        req.take()
        db.flush_memtable()
        out[next(rows)] = req.take()
        db.create_checkpoint()
        out[next(rows)] = req.take()
    return out


def point_official_at(server: Any) -> None:
    """The official binding resolves `s3://` URLs from the environment."""
    os.environ.update(
        AWS_ENDPOINT=server.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )


def table_official(server: Any) -> dict[str, Counter[str]]:
    import slatedb.uniffi as u

    point_official_at(server)
    bucket = server.new_bucket()
    req = Requests(server, bucket)
    rows = iter(name for name, _ in TABLE)
    out: dict[str, Counter[str]] = {}
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        store = u.ObjectStore.resolve(f"s3://{bucket}")

        def open_db() -> Any:
            b = u.DbBuilder("db", store)
            return run(b.build())

        db = open_db()
        run(db.put(b"seed", b"1"))
        run(db.shutdown())
        req.take()
        run(open_db().shutdown())
        out[next(rows)] = req.take()
        db = open_db()
        req.take()
        time.sleep(10)
        out[next(rows)] = req.take()

        async def puts(prefix: bytes, durable: bool) -> None:
            for i in range(1000):
                h = await db.put(prefix + b"%08d" % i, b"v" * 100)
                if durable:
                    await h.await_durable()

        run(puts(b"key", True))
        out[next(rows)] = req.take()
        run(puts(b"more", False))
        req.take()
        run(db.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE)))
        out[next(rows)] = req.take()
        adm = u.AdminBuilder("db", store).build()  # the binding's Db has no checkpoint call
        req.take()
        r = adm.create_detached_checkpoint(
            u.CheckpointOptions(lifetime_ms=None, source=None, name=None)
        )
        if asyncio.iscoroutine(r):
            run(r)
        out[next(rows)] = req.take()
        run(db.shutdown())
    except Exception as e:  # report rather than fail: the oracle is not under test here
        print(f"official binding: {e!r}")
    finally:
        loop.close()
    return out


def print_table(ours: dict[str, Counter[str]], theirs: dict[str, Counter[str]]) -> None:
    head = f"{'requests':40} {'budget':>7} {'slatedb_py':>11} {'official':>9}"
    print(f"  {head}   slatedb_py by kind")
    for name, budget in TABLE:
        a, b = ours.get(name), theirs.get(name)
        na = "-" if a is None else str(sum(a.values()))
        nb = "-" if b is None else str(sum(b.values()))
        kinds = "" if a is None else " ".join(f"{k}={v}" for k, v in sorted(a.items()))
        print(f"  {name:40} {budget if budget else '-':>7} {na:>11} {nb:>9}   {kinds}")


def official(server: Any, n: int) -> dict[str, Any]:
    import slatedb.uniffi as u

    bucket = server.new_bucket()
    req = Requests(server, bucket)
    point_official_at(server)
    out: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        store = u.ObjectStore.resolve(f"s3://{bucket}")
        s = u.Settings.default()
        s.set("garbage_collector_options", "null")
        s.set("compactor_options", "null")
        b = u.DbBuilder("db", store)
        b.with_settings(s)
        db = run(b.build())
        req.take()

        async def puts() -> None:
            for i in range(n):
                h = await db.put(b"key%08d" % i, b"v" * 100)
                await h.await_durable()

        t = time.perf_counter()
        run(puts())
        out["durable_puts_per_s"] = n / (time.perf_counter() - t)
        out["req_per_1k_durable_puts"] = fmt(req.take(), n / 1000)

        async def bulk() -> None:
            for st in range(0, n * 10, 1000):
                wb = u.WriteBatch()
                for i in range(st, st + 1000):
                    wb.put(b"bulk%08d" % i, b"v" * 100)
                await db.write(wb)
            await db.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE))

        t = time.perf_counter()
        run(bulk())
        out["batch_keys_per_s"] = n * 10 / (time.perf_counter() - t)
        req.take()

        async def gets() -> None:
            for i in range(n):
                await db.get(b"bulk%08d" % (i * 7 % (n * 10)))

        t = time.perf_counter()
        run(gets())
        out["gets_per_s"] = n / (time.perf_counter() - t)
        out["req_per_1k_gets"] = fmt(req.take(), n / 1000)
        adm = u.AdminBuilder("db", store).build()
        t = time.perf_counter()
        r = adm.create_detached_checkpoint(
            u.CheckpointOptions(lifetime_ms=None, source=None, name=None)
        )
        if asyncio.iscoroutine(r):
            run(r)
        out["checkpoint_ms"] = 1000 * (time.perf_counter() - t)
        out["req_per_checkpoint"] = fmt(req.take(), 1)
        run(db.shutdown())
    except Exception as e:  # report rather than fail: the oracle is not under test here
        out["error"] = repr(e)
    finally:
        loop.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--server", choices=["moto", "rgw"], default="moto")
    args = ap.parse_args()
    if args.server == "rgw":
        from tests.ceph_rgw import RadosGateway

        server: Any = RadosGateway.get()
    else:
        server = S3Server.get()
    mine_table, their_table = table_ours(server), table_official(server)
    a = ours(server, args.n)
    b = official(server, args.n)
    print(
        f"{args.server} S3 server on {server.endpoint}; n={args.n} durable puts,"
        f" {args.n * 10} keys in batches, n gets"
    )
    for k in a:
        mine = a[k] if isinstance(a[k], str) else f"{a[k]:,.1f}"
        theirs = (
            b.get(k, b.get("error", "-"))
            if isinstance(b.get(k), str) or k not in b
            else f"{b[k]:,.1f}"
        )
        print(f"  {k:26} slatedb_py: {mine:>36}   official: {theirs}")
    print_table(mine_table, their_table)
    server.stop()


if __name__ == "__main__":
    main()
