"""Side-by-side database benchmark: slatedb_py, the official SlateDB 0.17.0 binding (driven
through asyncio, as its users do) and rocksdict, in one run, on the same data.

    make build-release && .venv/bin/python benches/compare_db.py [--n 200000]
        [--only put,batch1000] [--no-official] [--stores local] [--rounds 3]

The 256 durable writers are threads on `Db`, then asyncio tasks on the asyncio twin; the
official binding's are asyncio tasks, its only API (one figure, compared with both).

16-byte keys, 100-byte values. The official binding is slow per call (~0.3 ms), so it runs a
smaller count of each operation (`--official-n`); rates are per second either way. Prints one
table with the ratios the engine issue names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, WriteBatch, _native
from slatedb_py.config import DbOptions


def key(i: int) -> bytes:
    return b"user:%011d" % i


def value(i: int) -> bytes:
    return (b"%08d" % i) * 12 + b"abcd"


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# The rows the write phases fill (`--only` naming just these skips the read phases).
WRITE_METRICS = {"put", "batch1000", "put_many1000"}


# ----------------------------------------------------------------------------- slatedb_py


def bench_ours(store_kind: str, n: int, only: set[str] | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    tmp = tempfile.mkdtemp()
    store = MemoryStore() if store_kind == "memory" else LocalStore(tmp)
    try:
        db = Db.open("bench/db", store, DbOptions())
        out["put"] = n / timed(
            lambda: [db.put(key(i), value(i), await_durable=False) for i in range(n)]
        )
        db.flush()

        def batches() -> None:
            for s in range(0, n, 1000):
                b = WriteBatch()
                for i in range(s, s + 1000):
                    b.put(key(n + i), value(i))
                db.write(b, await_durable=False)

        out["batch1000"] = n / timed(batches)
        if only is None or "put_many1000" in only:
            out["put_many1000"] = bench_put_many(store_kind, n)
        if only is not None and only <= WRITE_METRICS:
            db.close()
            return out
        db.flush_memtable()  # everything in L0 SSTs now
        keys = [key(i) for i in range(0, n, 7)]
        [db.get(k) for k in keys]  # warm the block cache
        out["get_l0_cached"] = len(keys) / timed(lambda: [db.get(k) for k in keys])
        missing = [b"missing:%010d" % i for i in range(len(keys))]
        out["get_missing"] = len(missing) / timed(lambda: [db.get(k) for k in missing])
        total = [0]

        def scan() -> None:
            total[0] = sum(1 for _ in db.scan())

        out["scan"] = 2 * n / timed(scan)
        assert total[0] == 2 * n
        compacted = (
            list(os.listdir(os.path.join(tmp, "bench/db/compacted")))
            if store_kind == "local"
            else []
        )
        if compacted:
            size = sum(
                os.path.getsize(os.path.join(tmp, "bench/db/compacted", f)) for f in compacted
            )
            out["sst_bytes_per_key"] = size / (2 * n)
        db.close()
        if store_kind == "local":
            db = Db.open("bench/lat", store, DbOptions())
            lat = []
            for i in range(300):
                t = time.perf_counter()
                db.put(key(i), value(i))
                lat.append(time.perf_counter() - t)
            out["durable_put_median_ms"] = 1000 * statistics.median(lat)
            out["durable_256_writers"] = concurrent_writers(lambda k, v: db.put(k, v), 256, 20)
            db.close()
            out["durable_256_tasks"] = asyncio.run(concurrent_tasks(store, 256, 20))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_put_many(store_kind: str, n: int) -> float:
    """`db.put_many` of 1000 pairs at a time (one native call each), into a memtable holding
    `n` rows already, as the batch row's does: keys/s. A database of its own, so that the
    other rows read what they always read."""
    tmp = tempfile.mkdtemp()
    store = MemoryStore() if store_kind == "memory" else LocalStore(tmp)

    def fill(first: int) -> None:
        for s in range(first, first + n, 1000):
            r = range(s, s + 1000)
            db.put_many([key(i) for i in r], [value(i) for i in r], await_durable=False)

    try:
        db = Db.open("bench/bulk", store, DbOptions())
        fill(0)
        db.flush()
        rate = n / timed(lambda: fill(n))
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rate


def concurrent_writers(put: Callable[[bytes, bytes], None], threads: int, each: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def run(t: int) -> None:
        barrier.wait()
        for i in range(each):
            put(b"w%04d-%05d" % (t, i), b"x" * 100)

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    start = time.perf_counter()
    barrier.wait()
    for t in ts:
        t.join()
    return threads * each / (time.perf_counter() - start)


async def concurrent_tasks(store: Any, tasks: int, each: int) -> float:
    """256 durable writers as the official binding's users write: asyncio tasks, here on
    the asyncio twin (`slatedb_py.aio`)."""
    from slatedb_py import aio

    async with await aio.Db.open("bench/tasks", store, DbOptions()) as db:

        async def run(t: int) -> None:
            for i in range(each):
                await db.put(b"w%04d-%05d" % (t, i), b"x" * 100)

        start = time.perf_counter()
        await asyncio.gather(*(run(t) for t in range(tasks)))
        return tasks * each / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- official 0.17.0


def bench_official(store_kind: str, n: int) -> dict[str, float]:
    import slatedb.uniffi as u

    out: dict[str, float] = {}
    tmp = tempfile.mkdtemp()
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        if store_kind == "memory":
            store, path = u.ObjectStore.resolve("memory:///"), "bench/db"
        else:
            store, path = u.ObjectStore.resolve("file:///"), tmp.lstrip("/") + "/bench/db"
        settings = u.Settings.default()
        settings.set("garbage_collector_options", "null")
        settings.set("compactor_options", "null")
        b = u.DbBuilder(path, store)
        b.with_settings(settings)
        db = run(b.build())

        async def puts() -> None:
            for i in range(n):
                await db.put(key(i), value(i))

        out["put"] = n / timed(lambda: run(puts()))

        async def batches() -> None:
            for s in range(0, n, 1000):
                wb = u.WriteBatch()
                for i in range(s, s + 1000):
                    wb.put(key(n + i), value(i))
                await db.write(wb)

        out["batch1000"] = n / timed(lambda: run(batches()))
        run(db.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE)))
        keys = [key(i) for i in range(0, n, 7)]

        async def gets(ks: list[bytes]) -> None:
            for k in ks:
                await db.get(k)

        run(gets(keys))
        out["get_l0_cached"] = len(keys) / timed(lambda: run(gets(keys)))
        missing = [b"missing:%010d" % i for i in range(len(keys))]
        out["get_missing"] = len(missing) / timed(lambda: run(gets(missing)))
        count = [0]

        async def scan() -> None:
            it = await db.scan(
                u.KeyRange(start=None, start_inclusive=False, end=None, end_inclusive=False)
            )
            while page := await it.next_batch(1000):
                count[0] += len(page)

        out["scan"] = 2 * n / timed(lambda: run(scan()))
        if store_kind == "local":
            cdir = os.path.join(tmp, "bench/db/compacted")
            files = os.listdir(cdir) if os.path.isdir(cdir) else []
            if files:
                out["sst_bytes_per_key"] = sum(
                    os.path.getsize(os.path.join(cdir, f)) for f in files
                ) / (2 * n)

            async def one(i: int) -> float:
                t = time.perf_counter()
                h = await db.put(b"lat%06d" % i, value(i))
                await h.await_durable()
                return time.perf_counter() - t

            lat = [run(one(i)) for i in range(30)]
            out["durable_put_median_ms"] = 1000 * statistics.median(lat)

            async def many() -> float:
                async def w(t: int) -> None:
                    for i in range(4):
                        h = await db.put(b"w%04d-%05d" % (t, i), b"x" * 100)
                        await h.await_durable()

                start = time.perf_counter()
                await asyncio.gather(*(w(t) for t in range(256)))
                return 256 * 4 / (time.perf_counter() - start)

            out["durable_256_writers"] = out["durable_256_tasks"] = run(many())
        run(db.shutdown())
    finally:
        loop.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- rocksdict


def bench_rocksdict(n: int, only: set[str] | None = None) -> dict[str, float]:
    import rocksdict

    out: dict[str, float] = {}
    tmp = tempfile.mkdtemp()
    try:
        db = rocksdict.Rdict(tmp + "/db", options=rocksdict.Options(raw_mode=True))
        out["put"] = n / timed(lambda: [db.put(key(i), value(i)) for i in range(n)])

        def batches() -> None:
            for s in range(0, n, 1000):
                wb = rocksdict.WriteBatch(raw_mode=True)
                for i in range(s, s + 1000):
                    wb.put(key(n + i), value(i))
                db.write(wb)

        out["batch1000"] = n / timed(batches)
        if only is not None and only <= WRITE_METRICS:
            db.close()
            return out
        db.flush()
        keys = [key(i) for i in range(0, n, 7)]
        [db.get(k) for k in keys]
        out["get_l0_cached"] = len(keys) / timed(lambda: [db.get(k) for k in keys])
        missing = [b"missing:%010d" % i for i in range(len(keys))]
        out["get_missing"] = len(missing) / timed(lambda: [db.get(k) for k in missing])
        out["scan"] = 2 * n / timed(lambda: sum(1 for _ in db.items()))
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


TARGETS = [
    # metric, label, (vs official, vs rocksdict) targets; None = no target
    ("put", "put, not awaiting durability (ops/s)", 100, 1.0),
    ("batch1000", "write batches of 1000 (keys/s)", None, 1.0),
    ("put_many1000", "db.put_many of 1000 pairs (keys/s)", None, None),
    ("get_l0_cached", "get, key in L0 with block cached (ops/s)", 50, 1.0),
    ("get_missing", "get of a missing key (ops/s)", None, 1.0),
    ("scan", "full scan (rows/s)", 20, 0.7),
    ("durable_256_writers", "256 concurrent durable writers: threads (puts/s)", 10, None),
    ("durable_256_tasks", "256 concurrent durable writers: asyncio (puts/s)", 10, None),
    ("durable_put_median_ms", "one durable put, median (ms; lower is better)", None, None),
    ("sst_bytes_per_key", "SST bytes per key after flush (lower is better)", None, None),
]


LOWER_IS_BETTER = ("durable_put_median_ms", "sst_bytes_per_key")


def best(into: dict[str, float], new: dict[str, float]) -> None:
    """Keeps each figure's best of the rounds so far."""
    for metric, x in new.items():
        old = into.get(metric)
        if old is None:
            into[metric] = x
        else:
            into[metric] = min(old, x) if metric in LOWER_IS_BETTER else max(old, x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--official-n", type=int, default=20_000)
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument(
        "--only", help="comma-separated metrics to print (e.g. put,batch1000); the write "
        "metrics alone skip the read phases"
    )  # fmt: skip
    ap.add_argument("--no-official", action="store_true", help="skip the official binding")
    ap.add_argument("--stores", default="memory,local", help="comma-separated: memory, local")
    ap.add_argument(
        "--rounds", type=int, default=1, help="run everything this many times, interleaved, "
        "and keep each figure's best (on a shared machine one pass is noise)"
    )  # fmt: skip
    args = ap.parse_args()
    if _native.DEBUG_BUILD:
        print("WARNING: debug build of the extension; run `make build-release` first")
    only = set(args.only.split(",")) if args.only else None
    stores = args.stores.split(",")
    results: dict[str, dict[str, dict[str, float]]] = {
        kind: {"slatedb_py": {}, "official": {}, "rocksdict": {}} for kind in stores
    }
    for _ in range(args.rounds):
        for kind in stores:
            best(results[kind]["slatedb_py"], bench_ours(kind, args.n, only))
            if not args.no_official:
                best(results[kind]["official"], bench_official(kind, args.official_n))
        rocksdict_out = bench_rocksdict(args.n, only)
        for kind in stores:
            best(results[kind]["rocksdict"], rocksdict_out)
    for kind in stores:
        r = results[kind]
        print(
            f"\n== {kind} store (slatedb_py n={args.n}, official n={args.official_n},"
            f" rocksdict n={args.n}; best of {args.rounds}) =="
        )
        print(
            f"{'metric':50} {'slatedb_py':>12} {'official':>12} {'rocksdict':>12} "
            f"{'x official':>11} {'x rocksdict':>12}"
        )
        for metric, label, t_off, t_rocks in TARGETS:
            if only is not None and metric not in only:
                continue
            ours = r["slatedb_py"].get(metric)
            off = r["official"].get(metric)
            rocks = r["rocksdict"].get(metric)
            if ours is None:
                continue

            def fmt(x: float | None) -> str:
                return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:,.2f}")

            lower_better = metric in LOWER_IS_BETTER
            ro = None if not off else (off / ours if lower_better else ours / off)
            rr = None if not rocks else (rocks / ours if lower_better else ours / rocks)
            mark_o = "" if t_off is None or ro is None else (" ok" if ro >= t_off else " MISS")
            mark_r = "" if t_rocks is None or rr is None else (" ok" if rr >= t_rocks else " MISS")
            print(
                f"{label:50} {fmt(ours):>12} {fmt(off):>12} {fmt(rocks):>12} "
                f"{'-' if ro is None else f'{ro:.1f}x':>8}{mark_o:3} "
                f"{'-' if rr is None else f'{rr:.2f}x':>9}{mark_r:3}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
