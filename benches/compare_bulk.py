"""Bulk and columnar side by side with rocksdict, in one run, on the same data:

    load  put_many from numpy arrays (keys S16 in ascending order, values a 2-D uint8 array
          of 100-byte rows, atomic=False: ingested straight to L0 SSTs, slatedb_py.ingest),
          then close; rocksdict writes WriteBatches of 1000 made from the same rows (bytes
          objects made before each batch's timer, as benches/scale.py does)
    shuffled  the same load with the rows in random order: the memtable and WAL path (pieces
          of 8 MiB), and compactions that merge; rocksdict the same order
    scan  reopen, a full scan: `to_arrow` batches for slatedb_py (rows counted, no Python
          object per row), the `items()` iterator for rocksdict
    gets  reopen, get_many with 10,000 numpy keys per call; rocksdict's multi-get (`get(list)`)
          with the same keys as bytes

    make build-release && .venv/bin/python benches/compare_bulk.py [--n 5000000] [--gets 20]

Each phase runs in its own child process: its peak RSS (VmHWM, as benches/scale.py reads it)
is its own. Prints one table, with the machine's load average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from scale import own_peak_rss_mb  # benches/ is this script's folder: on sys.path

ENGINES = ("slatedb_py", "rocksdict")
BATCH = 1000
GET_BATCH = 10_000


def arrays(n: int) -> tuple[Any, Any]:
    """Keys `key:%012d` (S16) and 100-byte incompressible values, one row of a 2-D uint8 array
    each (slices of one random buffer at per-key offsets)."""
    import numpy as np

    keys = np.char.add(b"key:", np.char.zfill(np.arange(n).astype("S12"), 12))
    buf = np.random.default_rng(20240517).integers(0, 256, 1 << 20, dtype=np.uint8)
    starts = (np.arange(n, dtype=np.int64) * 97) % (len(buf) - 100)
    values = np.lib.stride_tricks.sliding_window_view(buf, 100)[starts]  # one copy: n x 100
    return keys, values


def open_db(engine: str, root: str) -> Any:
    # Imports are local so each child loads only its own engine: its RSS is its own.
    if engine == "slatedb_py":
        from obstore.store import LocalStore

        from slatedb_py import Db
        from slatedb_py.config import DbOptions

        return Db.open("bench/db", LocalStore(root), DbOptions())
    import rocksdict

    return rocksdict.Rdict(os.path.join(root, "db"), options=rocksdict.Options(raw_mode=True))


def load(engine: str, root: str, n: int, shuffled: bool = False) -> dict[str, float]:
    import numpy as np

    keys, values = arrays(n)
    if shuffled:
        order = np.random.default_rng(3).permutation(n)
        keys, values = keys[order], values[order]
    t = time.perf_counter()
    db = open_db(engine, root)
    spent = time.perf_counter() - t
    if engine == "slatedb_py":
        t = time.perf_counter()
        db.put_many(keys, values, atomic=False, await_durable=False)
    else:
        import rocksdict

        for s in range(0, n, BATCH):
            ks, vs = keys[s : s + BATCH].tolist(), [bytes(v) for v in values[s : s + BATCH]]
            t0 = time.perf_counter()
            wb = rocksdict.WriteBatch(raw_mode=True)
            for k, v in zip(ks, vs):
                wb.put(k, v)
            db.write(wb)
            spent += time.perf_counter() - t0
        t = time.perf_counter()
    db.close()  # slatedb_py writes its last memtable as an L0 SST here
    spent += time.perf_counter() - t
    return {("shuffled_keys_s" if shuffled else "load_keys_s"): n / spent}


def scan(engine: str, root: str, n: int) -> dict[str, float]:
    db = open_db(engine, root)
    count = 0
    t = time.perf_counter()
    if engine == "slatedb_py":
        for batch in db.scan().to_arrow():
            count += batch.num_rows
    else:
        for _k, _v in db.items():
            count += 1
    spent = time.perf_counter() - t
    db.close()
    assert count == n, (count, n)
    return {"scan_rows_s": n / spent}


def gets(engine: str, root: str, n: int, calls: int) -> dict[str, float]:
    import numpy as np

    keys, values = arrays(n)
    rng = np.random.default_rng(7)
    picks = [rng.integers(0, n, GET_BATCH) for _ in range(calls)]
    db = open_db(engine, root)
    spent = 0.0
    for p in picks:
        ks = keys[p] if engine == "slatedb_py" else keys[p].tolist()
        t = time.perf_counter()
        got = db.get_many(ks) if engine == "slatedb_py" else db.get(ks)
        spent += time.perf_counter() - t
        assert got[0] == bytes(values[p[0]]), "the right value, not just some value"
    db.close()
    return {"gets_s": calls * GET_BATCH / spent}


def child(engine: str, phase: str, root: str, n: int, calls: int) -> None:
    if phase == "load":
        out = load(engine, root, n)
    elif phase == "shuffled":
        out = load(engine, root, n, shuffled=True)
    elif phase == "scan":
        out = scan(engine, root, n)
    else:
        out = gets(engine, root, n, calls)
    out[f"{phase}_rss_mb"] = own_peak_rss_mb()
    print(json.dumps(out), flush=True)


def run_engine(engine: str, n: int, calls: int) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix=f"bulk-{engine}-")
    out: dict[str, float] = {}
    try:
        for phase in ("load", "scan", "gets", "shuffled"):
            if phase == "shuffled":  # into an empty database
                shutil.rmtree(root, ignore_errors=True)
                os.makedirs(root)
            done = subprocess.run(
                [sys.executable, __file__, "--child", engine, phase, root, str(n), str(calls)],
                capture_output=True,
                text=True,
                check=True,
            )
            out.update(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, phase, root, n, calls = sys.argv[2:7]
        child(engine, phase, root, int(n), int(calls))
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5_000_000, help="keys (default 5M)")
    ap.add_argument("--gets", type=int, default=20, help="get_many calls of 10,000 keys")
    args = ap.parse_args()
    from slatedb_py import _native

    if _native.DEBUG_BUILD:
        print("warning: a debug build of slatedb_py: run `make build-release` first")
    load_avg = os.getloadavg()
    results = {e: run_engine(e, args.n, args.gets) for e in ENGINES}
    print(f"== bulk and columnar, n={args.n}, load average at start {load_avg[0]:.2f} ==")
    print(f"{'metric':40} {'slatedb_py':>12} {'rocksdict':>12} {'ratio':>8}")
    rows = [
        ("load_keys_s", "put_many from numpy (keys/s)"),
        ("shuffled_keys_s", "put_many, keys in random order (keys/s)"),
        ("scan_rows_s", "full scan, to_arrow vs items() (rows/s)"),
        ("gets_s", "get_many, 10k numpy keys/call (gets/s)"),
        ("load_rss_mb", "load peak RSS (MB)"),
        ("shuffled_rss_mb", "random-order load peak RSS (MB)"),
        ("scan_rss_mb", "scan peak RSS (MB)"),
        ("gets_rss_mb", "gets peak RSS (MB)"),
    ]
    for metric, label in rows:
        ours, theirs = results["slatedb_py"][metric], results["rocksdict"][metric]
        print(f"{label:40} {ours:>12,.0f} {theirs:>12,.0f} {ours / theirs:>7.2f}x")


if __name__ == "__main__":
    main()
