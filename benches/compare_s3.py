"""The engine on a local S3-compatible server (moto, its own process on 127.0.0.1), beside the
official SlateDB 0.17.0 binding on the same server: throughput, and the object-store requests
(GET / PUT / LIST / HEAD / DELETE, as the server logged them) per 1k puts, per 1k gets and per
checkpoint. Requests are what object storage bills.

    make build-release && .venv/bin/python benches/compare_s3.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import S3Server

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.config import DbOptions, ReaderOptions

LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+)')


class Requests:
    """Counts the requests the server logged for one bucket since the last mark."""

    def __init__(self, server: Any, bucket: str) -> None:
        self.server, self.bucket = server, bucket
        self.pos = 0

    def _log(self) -> Any:
        if hasattr(self.server, "log"):  # moto: its stdout
            return self.server.log
        return open(self.server.dir / "log" / "client.rgw.a.log", "rb")  # the gateway's log

    def take(self) -> Counter[str]:
        log = self._log()
        log.seek(self.pos)
        data = log.read().decode(errors="replace")
        self.pos = log.tell()
        out: Counter[str] = Counter()
        for method, path in LINE.findall(data):
            if f"/{self.bucket}" not in path:
                continue
            kind = (
                "LIST" if method == "GET" and ("list-type" in path or "prefix=" in path) else method
            )
            out[kind] += 1
        return out


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


def official(server: Any, n: int) -> dict[str, Any]:
    import slatedb.uniffi as u

    bucket = server.new_bucket()
    req = Requests(server, bucket)
    os.environ.update(
        AWS_ENDPOINT=server.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
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
    server.stop()


if __name__ == "__main__":
    main()
