"""The demo `slatedb-py demo` runs: a database in a local folder, written, read, scanned,
counted with merges, changed in a transaction, and reopened, with the time each step took."""

from __future__ import annotations

import struct
import time
from pathlib import Path

from slatedb_py import Db, WriteBatch, __version__
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.merge import AddU64


def run(directory: str, rows: int) -> int:
    """Runs the demo in `directory` (created if needed) with `rows` keys; prints as it goes."""
    folder = Path(directory).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    store = "file:///"  # a URL works wherever a store does
    path = str(folder / "demo-db")
    n = rows
    print(f"slatedb-py {__version__} demo: a database at {folder}/demo-db (local folder store)")

    def rate(count: int, seconds: float) -> str:
        return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"

    t = time.perf_counter()
    db = Db.open(path, store, DbOptions())
    print(f"  opened in {1000 * (time.perf_counter() - t):.1f} ms")
    t = time.perf_counter()
    for start in range(0, n, 1000):
        batch = WriteBatch()
        for i in range(start, min(n, start + 1000)):
            batch.put(b"user:%011d" % i, (b"%08d" % i) * 12 + b"abcd")
        db.write(batch)
    print(f"  wrote {n:,} keys in durable batches of 1000: {rate(n, time.perf_counter() - t)} keys")
    t = time.perf_counter()
    for i in range(200):
        db.put(b"durable:%04d" % i, b"x")
    print(
        f"  200 single durable puts: {1000 * (time.perf_counter() - t) / 200:.2f} ms "
        "each on average"
    )
    t = time.perf_counter()
    for i in range(0, n, 7):
        db.delete(b"user:%011d" % i, await_durable=False)
    db.flush()
    print(f"  deleted every 7th key: {rate(len(range(0, n, 7)), time.perf_counter() - t)} deletes")
    t = time.perf_counter()
    hits = sum(db.get(b"user:%011d" % i) is not None for i in range(0, n, 3))
    print(
        f"  {len(range(0, n, 3)):,} gets ({hits:,} found): "
        f"{rate(len(range(0, n, 3)), time.perf_counter() - t)}"
    )
    t = time.perf_counter()
    db.flush_memtable()
    print(f"  memtable written as an L0 SST in {1000 * (time.perf_counter() - t):.0f} ms")
    t = time.perf_counter()
    count = sum(1 for _ in db.scan_prefix(b"user:"))
    print(f"  scanned {count:,} live keys: {rate(count, time.perf_counter() - t)} rows")
    db.close()
    _merges_and_transactions(path, store)
    t = time.perf_counter()
    with Db.open(path, store, DbOptions(merge_operator=AddU64)) as again:
        value = again.get(b"user:%011d" % 1) or b""
        total = sum(1 for _ in again.scan())
    print(
        f"  reopened in {1000 * (time.perf_counter() - t):.0f} ms: {total:,} keys, "
        f"user:1 -> {value[:16]!r}..."
    )
    objects = sorted(p.relative_to(folder) for p in (folder / "demo-db").rglob("*") if p.is_file())
    size = sum((folder / p).stat().st_size for p in objects)
    print(
        f"  on disk: {len(objects)} objects, {size / 1e6:.1f} MB "
        f"(manifest/, wal/, compacted/); inspect an SST with: slatedb-py sst {folder / objects[0]}"
    )
    return 0


def _merges_and_transactions(path: str, store: str) -> None:
    """Counters kept with merge operands (no read-modify-write), then a transfer between two
    of them in a transaction."""
    with Db.open(path, store, DbOptions(merge_operator=AddU64)) as db:
        t = time.perf_counter()
        one = struct.pack("<Q", 1)
        for i in range(10_000):
            db.merge(b"counter:%d" % (i % 10), one, await_durable=False)
        db.flush()
        total = sum(struct.unpack("<Q", v)[0] for _, v in db.scan_prefix(b"counter:"))
        print(
            f"  10,000 AddU64 merges on 10 counters in {1000 * (time.perf_counter() - t):.0f} "
            f"ms; they add up to {total:,}"
        )
        with db.begin(IsolationLevel.SERIALIZABLE_SNAPSHOT) as txn:
            a = struct.unpack("<Q", txn.get(b"counter:0") or bytes(8))[0]
            txn.put(b"counter:0", struct.pack("<Q", a - 100))
            txn.merge(b"counter:1", struct.pack("<Q", 100))
        got = [struct.unpack("<Q", db.get(b"counter:%d" % i) or bytes(8))[0] for i in (0, 1)]
        print(
            f"  a transaction moved 100 from counter:0 to counter:1: now {got[0]:,} and {got[1]:,}"
        )
