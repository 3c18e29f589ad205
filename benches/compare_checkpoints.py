"""Checkpoint operations timed side by side: slatedb_py and the official SlateDB 0.17.0
binding, on a local folder, at 10k keys (both) and 1M keys (slatedb_py: create, clone and
restore must stay flat as the database grows; restore grows only with the unflushed WAL).

    make build-release && .venv/bin/python benches/compare_checkpoints.py
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.config import DbOptions, ReaderOptions

STORE = "file:///"
OPTS = DbOptions(flush_interval=None, gc_enabled=False)


def median_ms(fn: Callable[[int], Any], runs: int) -> float:
    times = []
    for i in range(runs):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def build(path: str, n: int, tail: int) -> None:
    with Db.open(path, STORE, OPTS) as db:
        for s in range(0, n, 10_000):
            b = WriteBatch()
            for i in range(s, min(n, s + 10_000)):
                b.put(b"user:%011d" % i, b"v" * 100)
            db.write(b, await_durable=False)
        db.flush_memtable()
        for i in range(tail):  # an unflushed WAL tail: what restore must replay
            db.put(b"tail:%06d" % i, b"t" * 100, await_durable=False)
        db.flush()
        db._stop.set()  # leave the tail in the WAL (no close-time flush)


def bench_ours(n: int, tail: int, runs: int) -> dict[str, float]:
    tmp = tempfile.mkdtemp()
    path = tmp + "/db"
    try:
        build(path, n, tail)
        out: dict[str, float] = {}
        ids = []
        out["create"] = median_ms(
            lambda i: ids.append(admin.create_checkpoint(path, STORE).id), runs
        )
        out["list"] = median_ms(lambda i: admin.list_checkpoints(path, STORE), runs)
        from datetime import timedelta

        out["refresh"] = median_ms(
            lambda i: Db.refresh_checkpoint(path, STORE, ids[i], timedelta(hours=1)), runs
        )
        ro = ReaderOptions(manifest_poll_interval=None)
        out["reader_open"] = median_ms(
            lambda i: DbReader.open(path, STORE, checkpoint_id=ids[i], options=ro).close(), runs
        )
        out["clone"] = median_ms(
            lambda i: admin.create_clone(f"{tmp}/clone{i}", path, STORE, ids[i]), runs
        )
        out["restore"] = median_ms(lambda i: admin.restore_checkpoint(path, STORE, ids[0]), runs)
        out["delete"] = median_ms(lambda i: Db.delete_checkpoint(path, STORE, ids[i]), runs)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_official(n: int, runs: int) -> dict[str, float]:
    import slatedb.uniffi as u

    tmp = tempfile.mkdtemp()
    path = (tmp + "/db").lstrip("/")
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        store = u.ObjectStore.resolve("file:///")
        s = u.Settings.default()
        s.set("garbage_collector_options", "null")
        s.set("compactor_options", "null")
        b = u.DbBuilder(path, store)
        b.with_settings(s)
        db = run(b.build())

        async def fill() -> None:
            for st in range(0, n, 1000):
                wb = u.WriteBatch()
                for i in range(st, min(n, st + 1000)):
                    wb.put(b"user:%011d" % i, b"v" * 100)
                await db.write(wb)

        run(fill())
        run(db.shutdown())
        adm = u.AdminBuilder(path, store).build()

        def maybe(x: Any) -> Any:
            return run(x) if asyncio.iscoroutine(x) else x

        ids: list[str] = []
        out: dict[str, float] = {}
        out["create"] = median_ms(
            lambda i: ids.append(
                str(
                    maybe(
                        adm.create_detached_checkpoint(
                            u.CheckpointOptions(lifetime_ms=None, source=None, name=None)
                        )
                    ).id
                )
            ),
            runs,
        )
        out["list"] = median_ms(lambda i: maybe(adm.list_checkpoints(None)), runs)
        out["refresh"] = median_ms(lambda i: maybe(adm.refresh_checkpoint(ids[i], 3_600_000)), runs)

        def reader(i: int) -> None:
            rb = u.DbReaderBuilder(path, store)
            rb.with_reader_mode(u.ReaderMode.CHECKPOINT(ids[i]))
            r = run(rb.build())
            run(r.shutdown())

        out["reader_open"] = median_ms(reader, runs)

        def clone(i: int) -> None:
            cb = maybe(
                adm.create_clone_builder_from_source(
                    u.CloneSourceSpec(path=path, checkpoint=ids[i], projection_range=None)
                )
            )
            cb.with_clone_path(f"{path}-clone{i}")
            maybe(cb.build())

        out["clone"] = median_ms(clone, runs)
        out["delete"] = median_ms(lambda i: maybe(adm.delete_checkpoint(ids[i])), runs)
        return out
    finally:
        loop.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--big", type=int, default=1_000_000)
    args = ap.parse_args()
    small = bench_ours(10_000, 100, args.runs)
    big = bench_ours(args.big, 100, args.runs)
    big_tail = bench_ours(args.big, 10_000, args.runs)
    official = bench_official(10_000, args.runs)
    print(
        f"{'operation (median ms)':22} {'official 10k':>13} {'ours 10k':>10} "
        f"{'ours ' + str(args.big // 1000) + 'k':>10} {'ours big, 100x WAL':>19} "
        f"{'x official':>11}"
    )
    for op in ("create", "list", "refresh", "delete", "reader_open", "clone", "restore"):
        off = official.get(op)
        ratio = f"{off / small[op]:.1f}x" if off else "-"
        print(
            f"{op:22} {off if off is not None else float('nan'):13.2f} {small[op]:10.2f} "
            f"{big[op]:10.2f} {big_tail[op]:19.2f} {ratio:>11}"
        )


if __name__ == "__main__":
    main()
