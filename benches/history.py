"""History at real size: the change stream, time travel and backups on one database.

    make build-release && .venv/bin/python benches/history.py [--keys 1000000] [--quick]
        [--store local|s3]

A database in a local folder (or, with `--store s3`, a bucket of the local S3-compatible
server the tests use, moto on 127.0.0.1, backups in a second bucket) gets `--keys` keys
(16-byte keys, 100-byte values) in durable batches, then, a moment later, a second wave
overwriting half of them; `when` is the instant between the waves. Measured: change-stream
rows per second over the whole WAL; the time to open a `DbReader` as of `when` (and to
count its rows); `admin.restore_to_time` to `when`, in place; a first backup into another
folder or bucket (MB/s) and an incremental one after 1% of the keys changed (objects and
bytes copied). Every step checks its result. One table; `--json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.store import LocalStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import S3Server

from slatedb_py import Db, DbReader, WalReader, WriteBatch, _native, admin
from slatedb_py.config import DbOptions, ReaderOptions

BATCH = 10_000


def key(i: int) -> bytes:
    return b"user:%011d" % i


def value(i: int, wave: int) -> bytes:
    return (b"%08d" % i) * 12 + b"w%03d" % wave


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def write(db: Db, keys: range, wave: int) -> None:
    """`keys` (any step) in durable batches of `BATCH`."""
    for at in range(0, len(keys), BATCH):
        b = WriteBatch()
        for i in keys[at : at + BATCH]:
            b.put(key(i), value(i, wave))
        db.write(b)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def stored_mb(store: Any, prefix: str) -> float:
    return sum(m["size"] for batch in obstore.list(store, prefix) for m in batch) / 1e6


def run(n: int, store: Any, backups: Any) -> dict[str, Any]:
    opts = DbOptions(
        compactor_enabled=False,
        gc_enabled=False,
        history_retention=timedelta(hours=1),
    )
    out: dict[str, Any] = {"keys": n}
    with Db.open("db", store, opts) as db:
        out["write_s"], _ = timed(lambda: write(db, range(n), 1))
        out["write_s"] = round(out["write_s"], 2)
        db.flush_memtable()
        time.sleep(0.05)
        when = datetime.now(UTC)
        time.sleep(0.05)
        write(db, range(0, n, 2), 2)  # the second wave: every other key
        db.flush_memtable()
    out["db_mb"] = round(stored_mb(store, "db/"), 1)

    def stream() -> int:
        with WalReader("db", store) as wal:
            return sum(1 for _ in wal.changes())

    secs, rows = timed(stream)
    assert rows == n + len(range(0, n, 2)), rows
    out["changes_rows"], out["changes_rows_per_s"] = rows, round(rows / secs)

    def at_when() -> int:
        r = DbReader.open("db", store, as_of=when, options=ReaderOptions(managed_checkpoint=False))
        with r:
            assert r.get(key(0)) == value(0, 1), "as_of sees the first wave only"
            return sum(1 for _, v in r.scan() if v.endswith(b"w001"))

    out["as_of_open_s"], _ = timed(
        lambda: DbReader.open("db", store, as_of=when, options=ReaderOptions()).close()
    )
    out["as_of_open_and_scan_s"], count = timed(at_when)
    assert count == n, (count, n)

    out["restore_to_time_s"], _ = timed(lambda: admin.restore_to_time("db", store, when))
    with Db.open("db", store, opts) as db:
        assert db.get(key(0)) == value(0, 1) and db.get(key(2)) == value(2, 1)

    secs, first = timed(lambda: admin.create_backup("db", store, "backups", backups))
    out["backup_first_s"] = round(secs, 2)
    out["backup_first_mb"] = round(first.new_bytes / 1e6, 1)
    out["backup_first_mb_per_s"] = round(first.new_bytes / 1e6 / secs)
    with Db.open("db", store, opts) as db:
        write(db, range(0, n, 100), 3)  # 1% of the keys change
        db.flush_memtable()
    secs, second = timed(lambda: admin.create_backup("db", store, "backups", backups))
    out["backup_incremental_s"] = round(secs, 2)
    out["backup_incremental_new_mb"] = round(second.new_bytes / 1e6, 2)
    out["backup_incremental_objects_needed"] = second.objects
    report = admin.verify_backup("backups", backups, second.id)
    assert report.ok, report.problems
    out["verify_s"], _ = timed(lambda: admin.verify_backup("backups", backups, second.id))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100k keys")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--store", choices=["local", "s3"], default="local")
    args = ap.parse_args()
    if _native.DEBUG_BUILD:
        print("warning: a debug build of the extension; run `make build-release` first")
    n = 100_000 if args.quick else args.keys
    root = Path(tempfile.mkdtemp(prefix="slatedb-history-"))
    try:
        if args.store == "s3":
            s3 = S3Server.get()
            out = run(n, s3.store(s3.new_bucket()), s3.store(s3.new_bucket()))
            s3.stop()
        else:
            out = run(n, LocalStore(str(root)), LocalStore(str(root)))
        out["store"] = args.store
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    width = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
