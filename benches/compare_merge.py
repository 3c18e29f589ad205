"""Counters by merge operator, and transactions: slatedb_py (native AddU64), the official
SlateDB 0.17.0 binding (a Python MergeOperator, through asyncio) and rocksdict, in one run.

    make build-release && .venv/bin/python benches/compare_merge.py [--quick] [--json FILE]

1,000 counters (`counter:%04d`, round-robin, u64 LE operands of 1) take `--n` merges in
WriteBatches of 1,000, then `--n` single non-durable merges (one flush after each); then random
gets before and after a full compaction, then read-modify-write transactions. The official
binding runs smaller counts (`--official-*`); rates are per second. rocksdict 0.3.29 has no
merge operator and no transactions: its counters are get + put in Python (marked *).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch, _native
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import TransactionConflictError
from slatedb_py.merge import AddU64

KEYS, BATCH, HOT, THREADS = 1000, 1000, 10, 4
ONE = struct.pack("<Q", 1)
Out = dict[str, float]


def ckey(i: int) -> bytes:
    return b"counter:%04d" % (i % KEYS)


def u64(v: bytes | None) -> int:
    return 0 if v is None else int(struct.unpack("<Q", v)[0])


def p64(x: int) -> bytes:
    return struct.pack("<Q", x & 0xFFFF_FFFF_FFFF_FFFF)


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@dataclass
class Engine:
    """One database, driven the way its users would."""

    batches: Callable[[int], None]  # n merges in WriteBatches of BATCH, durable at the end
    singles: Callable[[int], None]  # n single non-durable merges, durable at the end
    get: Callable[[bytes], bytes | None]
    compact: Callable[[], None]  # a full compaction, however the engine offers one
    txn: Callable[[bytes], bool] | None  # read-modify-write; False on a conflict
    close: Callable[[], None]


def measure(e: Engine, n: int, reads_unfolded: int, reads: int, txns: int) -> Out:
    out: Out = {"counters_ok": 1.0}

    def check(ok: bool) -> None:
        out["counters_ok"] = min(out["counters_ok"], float(ok))

    def gets(name: str, count: int) -> None:  # random counters, the same for every engine
        rng = random.Random(7)
        keys, got = [ckey(rng.randrange(KEYS)) for _ in range(count)], list[bytes | None]()
        out[name] = count / timed(lambda: got.extend(e.get(k) for k in keys))
        check(all(u64(v) == want for v in got))

    out["merge_batch"] = n / timed(lambda: e.batches(n))
    out["merge_single"] = n / timed(lambda: e.singles(n))
    want = 2 * n // KEYS
    gets("get_unfolded", reads_unfolded)
    out["compact_s"] = timed(e.compact)
    check(all(u64(e.get(ckey(i))) == want for i in range(KEYS)))
    gets("get_compacted", reads)
    if e.txn is not None:
        txn = e.txn
        out["txn_1"] = txns / timed(lambda: [txn(ckey(i)) for i in range(txns)])
        check(sum(u64(e.get(ckey(i))) for i in range(KEYS)) == KEYS * want + txns)
    return out


# ----------------------------------------------------------------------------- slatedb_py


def open_ours(tmp: str) -> Engine:
    # No background compactor: the gets before db.compact() fold the memtable's operands onto
    # the L0 SSTs' rows (a flush folds a counter's operands into one row, as SlateDB does).
    opts = DbOptions(merge_operator=AddU64, compactor_enabled=False)
    db = Db.open("bench/db", LocalStore(tmp), opts)

    def batches(n: int) -> None:
        for s in range(0, n, BATCH):
            b = WriteBatch()
            for i in range(s, s + BATCH):
                b.merge(ckey(i), ONE)
            db.write(b, await_durable=False)
        db.flush()

    def singles(n: int) -> None:
        for i in range(n):
            db.merge(ckey(i), ONE, await_durable=False)
        db.flush()

    def txn(k: bytes) -> bool:
        t = db.begin(IsolationLevel.SNAPSHOT)
        t.put(k, p64(u64(t.get(k)) + 1))
        try:
            t.commit(await_durable=False)
        except TransactionConflictError:
            return False
        return True

    return Engine(batches, singles, db.get, db.compact, txn, db.close)


def hot_txns(txn: Callable[[bytes], bool], e: Engine, txns: int, out: Out) -> None:
    """THREADS threads of read-modify-write transactions on HOT keys, retried on conflict."""

    def worker(t: int) -> tuple[int, int]:
        rng, done, conflicts = random.Random(t), 0, 0
        while done < txns // THREADS:
            if txn(ckey(rng.randrange(HOT))):
                done += 1
            else:
                conflicts += 1
        return done, conflicts

    before = sum(u64(e.get(ckey(i))) for i in range(HOT))
    with ThreadPoolExecutor(THREADS) as ex:
        start = time.perf_counter()
        counts = list(ex.map(worker, range(THREADS)))
        elapsed = time.perf_counter() - start
    commits = sum(c[0] for c in counts)
    out["txn_4_hot"], out["txn_4_conflicts"] = commits / elapsed, float(sum(c[1] for c in counts))
    if sum(u64(e.get(ckey(i))) for i in range(HOT)) != before + commits:
        out["counters_ok"] = 0.0


# ----------------------------------------------------------------------------- official 0.17.0

OFFICIAL_CALLS = [0, 0]  # calls of its Python operator: in all, and during the writes


def open_official(tmp: str) -> Engine:
    import slatedb.uniffi as u  # type: ignore[import-untyped]

    class Add(u.MergeOperator):  # type: ignore[misc]
        def merge(self, key: bytes, existing_value: bytes | None, operand: bytes) -> bytes:
            OFFICIAL_CALLS[0] += 1
            return p64(u64(existing_value) + u64(operand))

    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    store, path = u.ObjectStore.resolve("file:///"), tmp.lstrip("/") + "/bench/db"
    settings = u.Settings.default()
    settings.set("garbage_collector_options", "null")
    # Its embedded compactor, let to take a single L0: the nearest it has to a full compaction.
    settings.set("compactor_options.poll_interval", json.dumps("50ms"))
    settings.set(
        "compactor_options.scheduler_options",
        json.dumps({"min_compaction_sources": "1", "max_compaction_sources": "8"}),
    )
    b = u.DbBuilder(path, store)
    b.with_settings(settings)
    b.with_merge_operator(Add())
    db = run(b.build())
    admin = u.AdminBuilder(path, store).build()

    async def batches(n: int) -> None:
        for s in range(0, n, BATCH):
            wb = u.WriteBatch()
            for i in range(s, s + BATCH):
                wb.merge(ckey(i), ONE)
            h = await db.write(wb)
        await h.await_durable()

    async def singles(n: int) -> None:
        for i in range(n):
            h = await db.merge(ckey(i), ONE)  # a WriteHandle: durability not awaited
        await h.await_durable()
        OFFICIAL_CALLS[1] = OFFICIAL_CALLS[0]

    def compact() -> None:  # flush the memtable to L0, then wait for the compactor to drain it
        run(db.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE)))
        deadline = time.perf_counter() + 600
        while (m := run(admin.read_manifest(None))) is None or m.l0 or not m.compacted:
            if time.perf_counter() > deadline:
                raise TimeoutError("0.17.0's compactor did not drain L0 in 600 s")
            time.sleep(0.02)

    async def txn(k: bytes) -> bool:
        t = await db.begin(u.IsolationLevel.SNAPSHOT)
        await t.put(k, p64(u64(await t.get(k)) + 1))
        await t.commit()  # its WriteHandle is not awaited: not durable
        return True

    def close() -> None:
        run(db.shutdown())
        loop.close()

    return Engine(
        lambda n: run(batches(n)),
        lambda n: run(singles(n)),
        lambda k: run(db.get(k)),
        compact,
        lambda k: run(txn(k)),
        close,
    )


# ----------------------------------------------------------------------------- rocksdict


def open_rocksdict(tmp: str) -> Engine:
    import rocksdict

    db = rocksdict.Rdict(tmp + "/db", options=rocksdict.Options(raw_mode=True))

    def batches(n: int) -> None:  # no merge operator: read each counter, add, put it back
        for s in range(0, n, BATCH):
            acc: dict[bytes, int] = {}
            for i in range(s, s + BATCH):
                k = ckey(i)
                acc[k] = (acc[k] if k in acc else u64(db.get(k))) + 1
            wb = rocksdict.WriteBatch(raw_mode=True)
            for k, v in acc.items():
                wb.put(k, p64(v))
            db.write(wb)
        db.flush_wal(True)

    def singles(n: int) -> None:
        for i in range(n):
            db.put(ckey(i), p64(u64(db.get(ckey(i))) + 1))
        db.flush_wal(True)

    def compact() -> None:
        db.flush()
        db.compact_range(None, None)

    return Engine(batches, singles, db.get, compact, None, db.close)


ROWS = [  # metric, label, lower is better
    ("merge_batch", "merge, WriteBatch of 1000 (merges/s)", False),
    ("merge_single", "merge, single non-durable call (merges/s)", False),
    ("get_unfolded", "get counter, operands unfolded (gets/s)", False),
    ("compact_s", "full compaction (s; lower is better)", True),
    ("get_compacted", "get counter after full compaction (gets/s)", False),
    ("txn_1", "RMW txn, 1 thread, 1000 keys (commits/s)", False),
    ("txn_4_hot", f"RMW txn, {THREADS} threads, {HOT} hot keys (commits/s)", False),
    ("txn_4_conflicts", "  conflicts retried in that run (count)", True),
]


def ratio(ours: float, other: float | None, lower: bool, metric: str) -> str:
    if other is None or metric == "txn_4_conflicts" or not (ours if lower else other):
        return "-"
    x = other / ours if lower else ours / other
    return f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def peak_rss_mb() -> float:  # VmHWM of this process (Linux)
    m = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="merges per write mode")
    ap.add_argument("--official-n", type=int, default=100_000)
    ap.add_argument("--reads", type=int, default=100_000)
    ap.add_argument("--official-reads", type=int, default=10_000, help="1/20 before compaction")
    ap.add_argument("--txns", type=int, default=20_000)
    ap.add_argument("--official-txns", type=int, default=2_000)
    ap.add_argument("--quick", action="store_true", help="every count 10x smaller")
    ap.add_argument("--json", help="write the figures here too")
    a = ap.parse_args()
    d = 10 if a.quick else 1
    n, on, rd, ord_, tx, otx = (
        x // d for x in (a.n, a.official_n, a.reads, a.official_reads, a.txns, a.official_txns)
    )
    if n % KEYS or on % KEYS or tx % THREADS:
        ap.error(f"merge counts must be multiples of {KEYS}, --txns of {THREADS}")
    if _native.DEBUG_BUILD:
        print("WARNING: debug build of the extension; run `make build-release` first")
    runs: list[tuple[str, Callable[[str], Engine], tuple[int, int, int, int]]] = [
        ("slatedb_py", open_ours, (n, rd, rd, tx)),
        ("official", open_official, (on, max(ord_ // 20, 10), ord_, otx)),
        ("rocksdict", open_rocksdict, (n, rd, rd, 0)),
    ]
    r: dict[str, Out] = {}
    for name, opener, sizes in runs:
        tmp = tempfile.mkdtemp()
        try:
            e = opener(tmp)
            r[name] = measure(e, *sizes)
            if name == "slatedb_py" and e.txn is not None:
                hot_txns(e.txn, e, tx, r[name])
            e.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    rss = peak_rss_mb()
    print(
        f"\n== slatedb_py and rocksdict* n={n}+{n}, official n={on}+{on} merges on {KEYS} "
        f"counters; gets {rd}, official {max(ord_ // 20, 10)} unfolded and {ord_} compacted =="
    )
    print(
        f"{'operation':52} {'slatedb_py':>12} {'official':>12} {'rocksdict*':>12} "
        f"{'x official':>11} {'x rocksdict':>12}"
    )

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:,.0f}" if x >= 100 or x.is_integer() else f"{x:,.2f}"

    for metric, label, lower in ROWS:
        ours, off, rocks = (r[e].get(metric) for e in ("slatedb_py", "official", "rocksdict"))
        if ours is not None:
            print(
                f"{label:52} {fmt(ours):>12} {fmt(off):>12} {fmt(rocks):>12} "
                f"{ratio(ours, off, lower, metric):>11} {ratio(ours, rocks, lower, metric):>12}"
            )
    per_merge = [c / (2 * on) for c in OFFICIAL_CALLS]
    r["official"]["operator_calls_per_merge"], r["official"]["calls_per_merge_writing"] = per_merge
    correct = ", ".join(f"{e} {'ok' if v['counters_ok'] else 'WRONG'}" for e, v in r.items())
    print(
        f"\ncounters correct: {correct}; official called its Python operator "
        f"{per_merge[1]:.2f} times per merge while writing, {per_merge[0]:.2f} in all\n"
        f"operands written per counter: slatedb_py {2 * n // KEYS}, official "
        f"{2 * on // KEYS} (its gets fold fewer); official 'compaction' = memtable flush + its "
        "compactor draining L0\n* rocksdict 0.3.29 has no merge operator: get + add + put in "
        "Python, so its gets read plain values; no transactions (n/a)\npeak RSS of the whole "
        f"process (all three engines, one after another): {rss:,.0f} MB"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": r, "peak_rss_mb": rss, "quick": a.quick}, f, indent=2)
    if not all(v["counters_ok"] for v in r.values()):
        raise SystemExit("a counter was wrong")


if __name__ == "__main__":
    main()
