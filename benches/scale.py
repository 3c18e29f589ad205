"""Scale benchmark: slatedb_py against rocksdict on millions of keys, default options, local disk.

    make build-release && .venv/bin/python benches/scale.py [--n 5000000] [--gets 200000]
        [--only slatedb_py|rocksdict] [--json FILE] [--keep DIR]

What a user gets out of the box: `Db.open(..., DbOptions())` on `LocalStore(dir)` and
`rocksdict.Rdict(path)` in raw mode. N 16-byte keys in ascending order with 100 bytes of
incompressible values, then three phases per engine, each in a fresh child process so that its
peak RSS (VmHWM; a child's ru_maxrss starts at its parent's peak) is its own and each reopen
starts with empty caches (the OS page cache stays warm):

    load  open, write N keys in WriteBatches of 1000, close (close time counted)
    scan  reopen, iterate every row (key and value bytes objects made per row)
    gets  reopen, 3 passes of --gets random gets over the same sample; pass 1 = cold, 3 = warm

--keep DIR runs in DIR/<engine> (cleared before the load) and leaves it there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENGINES = ("slatedb_py", "rocksdict")
SEED = 20240517
BATCH = 1000
# A random buffer sliced at per-key offsets: values are incompressible to a block compressor
# while costing a slice, not an RNG call, per key.
BUF = random.Random(SEED).randbytes(1 << 20)


def key(i: int) -> bytes:
    return b"key:%012d" % i


def value(i: int) -> bytes:
    o = (i * 97) % (len(BUF) - 100)
    return BUF[o : o + 100]


# ----------------------------------------------------------------------------- one engine


def open_db(engine: str, root: str) -> Any:
    # Imports are local so each child loads only its own engine: its RSS is its own.
    if engine == "slatedb_py":
        from obstore.store import LocalStore

        from slatedb_py import Db
        from slatedb_py.config import DbOptions

        return Db.open("bench/db", LocalStore(root), DbOptions())
    import rocksdict

    # Raw mode (bytes in, bytes out, no type tags), as in compare_db.py: its fastest path.
    return rocksdict.Rdict(os.path.join(root, "db"), options=rocksdict.Options(raw_mode=True))


def new_batch(engine: str) -> Any:
    if engine == "slatedb_py":
        from slatedb_py import WriteBatch

        return WriteBatch()
    import rocksdict

    return rocksdict.WriteBatch(raw_mode=True)


def disk_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


def load(engine: str, root: str, n: int) -> dict[str, float]:
    # Keys and values of a batch are made before its timer starts: only the engine is timed.
    t = time.perf_counter()
    db = open_db(engine, root)
    spent = time.perf_counter() - t
    durable = {"await_durable": False} if engine == "slatedb_py" else {}
    for s in range(0, n, BATCH):
        pairs = [(key(i), value(i)) for i in range(s, min(s + BATCH, n))]
        t = time.perf_counter()
        wb = new_batch(engine)
        for k, v in pairs:
            wb.put(k, v)
        db.write(wb, **durable)
        spent += time.perf_counter() - t
    t = time.perf_counter()
    db.close()  # slatedb_py writes the memtable as an L0 SST here
    spent += time.perf_counter() - t
    return {"load_keys_s": n / spent, "load_s": spent, "disk_mb": disk_bytes(root) / 2**20}


def scan(engine: str, root: str, n: int) -> dict[str, float]:
    db = open_db(engine, root)
    rows = db.scan() if engine == "slatedb_py" else db.items()  # items() beats iter() here
    count = 0
    t = time.perf_counter()
    for _k, _v in rows:
        count += 1
    spent = time.perf_counter() - t
    db.close()
    assert count == n, (count, n)
    return {"scan_rows_s": n / spent}


def gets(engine: str, root: str, n: int, m: int) -> dict[str, float]:
    keys = [key(i) for i in random.Random(SEED).choices(range(n), k=m)]
    db = open_db(engine, root)
    out: dict[str, float] = {}
    for p in (1, 2, 3):
        t = time.perf_counter()
        for k in keys:
            assert db.get(k) is not None, k
        out[f"get_pass{p}_s"] = m / (time.perf_counter() - t)
    assert db.get(keys[0]) == value(int(keys[0][4:]))  # right value, not just some value
    db.close()
    return out


def child(engine: str, phase: str, root: str, n: int, m: int) -> None:
    if phase == "load":
        out = load(engine, root, n)
    elif phase == "scan":
        out = scan(engine, root, n)
    else:
        out = gets(engine, root, n, m)
    out[f"{phase}_rss_mb"] = own_peak_rss_mb()
    print(json.dumps(out), flush=True)


def own_peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(line for line in status if line.startswith("VmHWM:"))
    return int(hwm.split()[1]) / 1024  # KiB


# ----------------------------------------------------------------------------- parent


def run_engine(engine: str, root: str, n: int, m: int) -> dict[str, float]:
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    out: dict[str, float] = {}
    for phase in ("load", "scan", "gets"):
        print(f"{engine}: {phase} ...", file=sys.stderr, flush=True)
        argv = [sys.executable, __file__, "--child", engine, phase, root, str(n), str(m)]
        res = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True)
        out.update(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


# metric, label, unit, higher is better, target ratio (slatedb_py / rocksdict), RSS cap MB
ROWS = [
    ("load_keys_s", "load keys/s", "", True, 1.0, None),
    ("load_rss_mb", "load peak RSS", " MB", False, None, 400),
    ("disk_mb", "disk after load", " MB", False, None, None),
    ("scan_rows_s", "scan rows/s", "", True, 1.0, None),
    ("scan_rss_mb", "scan peak RSS", " MB", False, None, 400),
    ("get_pass1_s", "get cold /s", "", True, 0.3, None),
    ("get_pass3_s", "get warm /s", "", True, 0.8, None),
    ("gets_rss_mb", "gets peak RSS", " MB", False, None, None),
]


def table(results: dict[str, dict[str, float]]) -> None:
    ours, rocks = results.get("slatedb_py", {}), results.get("rocksdict", {})
    print(f"\n{'metric':16}{'slatedb_py':>16}{'rocksdict':>16}{'ratio':>9}   target")
    for metric, label, unit, higher, target, cap in ROWS:
        a, b = ours.get(metric), rocks.get(metric)
        cell = [("-" if x is None else f"{x:,.0f}{unit}") for x in (a, b)]
        ratio, note = "", ""
        if higher and a and b:
            ratio = f"{a / b:.2f} x"
            if target is not None:
                note = f">= {target} x  " + ("ok" if a / b >= target else "MISS")
        if cap is not None and a is not None:
            note = f"<= {cap} MB  " + ("ok" if a <= cap else "MISS")
        print(f"{label:16}{cell[0]:>16}{cell[1]:>16}{ratio:>9}   {note}".rstrip())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, phase, root, n, m = sys.argv[2:7]
        child(engine, phase, root, int(n), int(m))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5_000_000, help="keys to load")
    ap.add_argument("--gets", type=int, default=200_000, help="random gets per pass")
    ap.add_argument("--json", help="write all figures here too")
    ap.add_argument("--only", choices=ENGINES, help="run one engine only")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR (not a temp dir) and keep it")
    args = ap.parse_args()
    from slatedb_py import _native

    if _native.DEBUG_BUILD:
        print("WARNING: debug build of the extension; run `make build-release`", file=sys.stderr)
    base = args.keep or tempfile.mkdtemp(prefix="slatedb_scale_")
    results: dict[str, dict[str, float]] = {}
    try:
        for engine in [args.only] if args.only else ENGINES:
            results[engine] = run_engine(engine, os.path.join(base, engine), args.n, args.gets)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n== n={args.n:,} keys (16 B keys, 100 B values), {args.gets:,} gets per pass ==")
    table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "gets": args.gets, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
