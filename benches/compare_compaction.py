"""Compaction throughput beside SlateDB 0.17.0's own compactor, on the same database, and the
peak memory of a standalone slatedb_py compactor on a large input.

    make build-release && .venv/bin/python benches/compare_compaction.py [--mb 1024]

The input is written once by slatedb_py as 8 L0 SSTs of shuffled 16-byte keys and 100-byte
values (each L0 spans the whole key range, so the merge does real work), then copied: one
copy is compacted by `slatedb-py compactor --once --full` in a child process (peak RSS from
the kernel), the other by 0.17.0's embedded compactor (time until its L0 is drained).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions

ROOT = Path(__file__).resolve().parents[1]


def build(path: str, total_mb: int, l0s: int = 8) -> int:
    rows = total_mb * 1024 * 1024 // 116
    per_l0 = rows // l0s
    keys = list(range(rows))
    random.Random(1).shuffle(keys)
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, gc_enabled=False, l0_sst_size_bytes=1 << 40
    )
    with Db.open(path, "file:///", opts) as db:
        for j in range(l0s):
            chunk = sorted(keys[j * per_l0 : (j + 1) * per_l0])
            for s in range(0, len(chunk), 10_000):
                b = WriteBatch()
                for i in chunk[s : s + 10_000]:
                    b.put(b"user:%011d" % i, (b"%08d" % i) * 12 + b"abcd")
                db.write(b, await_durable=False)
            db.flush_memtable()
    return sum(f.stat().st_size for f in Path(path, "compacted").iterdir())


def ours(path: str) -> tuple[float, float]:
    """Runs the standalone compactor; its peak RSS is its own VmHWM (a child's ru_maxrss
    would count the parent's pages at fork time)."""
    t = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "slatedb_py.cli",
            "compactor",
            "file:///",
            path,
            "--once",
            "--full",
            "--json",
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.perf_counter() - t
    return elapsed, float(json.loads(out)["peak_rss_mb"])


def official(path: str) -> float | None:
    import slatedb.uniffi as u

    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    try:
        store = u.ObjectStore.resolve("file:///")
        s = u.Settings.default()
        s.set("garbage_collector_options", "null")
        s.set("compactor_options.poll_interval", json.dumps("50ms"))
        s.set(
            "compactor_options.scheduler_options",
            json.dumps({"min_compaction_sources": "2", "max_compaction_sources": "8"}),
        )
        b = u.DbBuilder(path.lstrip("/"), store)
        b.with_settings(s)
        t = time.perf_counter()
        db = run(b.build())
        adm = u.AdminBuilder(path.lstrip("/"), store).build()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            m = adm.read_manifest(None)
            m = run(m) if asyncio.iscoroutine(m) else m
            if m is not None and not m.l0 and len(m.compacted) >= 1:
                break
            time.sleep(0.05)
        else:
            return None
        elapsed = time.perf_counter() - t
        run(db.shutdown())
        return elapsed
    except Exception as e:  # the oracle's API may differ: report instead of failing the run
        print(f"official compactor: {e!r}")
        return None
    finally:
        loop.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="input size for the memory measurement")
    ap.add_argument("--compare-mb", type=int, default=256, help="input size for the side-by-side")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        a = f"{tmp}/a"
        size = build(a, args.compare_mb)
        shutil.copytree(a, f"{tmp}/b")
        t_ours, _ = ours(a)
        t_off = official(f"{tmp}/b")
        print(f"side by side, {size / 1e6:.0f} MB of input SSTs (8 L0s -> one run):")
        print(f"  slatedb_py compactor : {t_ours:6.2f} s  {size / 1e6 / t_ours:7.1f} MB/s")
        if t_off is not None:
            print(
                f"  SlateDB 0.17.0       : {t_off:6.2f} s  {size / 1e6 / t_off:7.1f} MB/s"
                f"   ratio {t_off / t_ours:.2f}x"
            )
        shutil.rmtree(a)
        shutil.rmtree(f"{tmp}/b")
        big = f"{tmp}/big"
        size = build(big, args.mb)
        t_big, peak = ours(big)
        print(
            f"large input, {size / 1e6:.0f} MB: {t_big:.1f} s, {size / 1e6 / t_big:.1f} MB/s,"
            f" peak RSS {peak:.0f} MB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
