"""Compaction throughput beside SlateDB 0.17.0's own compactor, on the same database, and the
peak memory and time of a standalone slatedb_py compactor on a large input, in a local folder
and on a local S3 server (moto), with outputs of `max_sst_size` (256 MiB by default).

    make build-release && .venv/bin/python benches/compare_compaction.py [--mb 1024]
        [--stores local,moto] [--max-sst-mb 256] [--memory-only]

The input is written once by slatedb_py in 8 flushes of shuffled 16-byte keys and 100-byte
values (each spans the whole key range, so the merge does real work; the writer's memory
budget cuts a flush into L0 SSTs of about 19 MiB, so a larger input is more L0 SSTs, all
merged at once by the full compaction: 36 at 600 MB, 64 at 1 GB), then copied: one
copy is compacted by `slatedb-py compactor --once --full` in a child process, the other by
0.17.0's embedded compactor (time until its L0 is drained). The memory phase writes `--mb`
of input to each store and compacts it in a child process of its own; its peak RSS is that
child's VmHWM (a child's ru_maxrss would count the parent's pages at fork time), and on S3
the child also reports its upload requests (a large output is a multipart upload).
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
sys.path.insert(0, str(ROOT))

# A standalone compactor in a child process on `store` (a folder, or an S3 bucket on an
# endpoint): one full compaction, then its time, peak RSS, outputs and store requests.
COMPACTOR_CHILD = """
import json, sys, time
from slatedb_py import admin
from slatedb_py.config import DbOptions
from slatedb_py.compactor import Compactor
from slatedb_py.clock import SystemClock
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

kind, where, bucket, path, max_sst = sys.argv[1:6]
if kind == "local":
    from obstore.store import LocalStore
    inner = LocalStore(where)
else:
    from tests.support import local_s3_store
    inner = local_s3_store(where, bucket)
store = Store(inner)
c = Compactor(store, DbPaths.of(path), DbOptions(max_sst_size=int(max_sst)), SystemClock())
t = time.perf_counter()
c.run_once(full=True)
elapsed = time.perf_counter() - t
_, m = c.manifests.require_latest()
peak = next(
    int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")
)
metrics = store.metrics.snapshot()
print(json.dumps({
    "seconds": elapsed,
    "peak_rss_mb": peak,
    "outputs": [v.sst.info.estimated_size for r in m.compacted for v in r.views],
    "requests": {k[6:-15]: v for k, v in metrics.items()
                 if k.startswith("store_") and k.endswith("_requests_total") and v},
}))
"""


def build(path: str, total_mb: int, l0s: int = 8, store: object = "file:///") -> tuple[int, int]:
    """Writes the input in `l0s` flushes; returns the L0 SSTs' total size and count."""
    rows = total_mb * 1024 * 1024 // 116
    per_l0 = rows // l0s
    keys = list(range(rows))
    random.Random(1).shuffle(keys)
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, gc_enabled=False, l0_sst_size_bytes=1 << 40
    )
    with Db.open(path, store, opts) as db:
        for j in range(l0s):
            chunk = sorted(keys[j * per_l0 : (j + 1) * per_l0])
            for s in range(0, len(chunk), 10_000):
                b = WriteBatch()
                for i in chunk[s : s + 10_000]:
                    b.put(b"user:%011d" % i, (b"%08d" % i) * 12 + b"abcd")
                db.write(b, await_durable=False)
            db.flush_memtable()
        l0 = db.manifest()[1].l0
        return sum(v.sst.info.estimated_size for v in l0), len(l0)


def compact_in_child(kind: str, where: str, bucket: str, path: str, max_sst: int) -> dict:
    """One full compaction by a standalone compactor in a child process (COMPACTOR_CHILD)."""
    out = subprocess.run(
        [sys.executable, "-c", COMPACTOR_CHILD, kind, where, bucket, path, str(max_sst)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def memory(stores: list[str], total_mb: int, max_sst: int) -> None:
    """The memory phase (module docstring), on each store in turn."""
    for kind in stores:
        tmp = tempfile.mkdtemp()
        try:
            if kind == "local":
                where, bucket = tmp, "-"
                size, n = build("big", total_mb, store=_local(tmp))
            else:
                from tests.support import S3Server

                server = S3Server.get()
                where, bucket = server.endpoint, server.new_bucket()
                size, n = build("big", total_mb, store=server.store(bucket))
            got = compact_in_child(kind, where, bucket, "big", max_sst)
            outs = got["outputs"]
            print(
                f"{kind:5}: {size / 1e6:.0f} MB in {n} L0s -> {len(outs)} SSTs of at most "
                f"{max(outs) / 2**20:.0f} MiB (max_sst_size {max_sst / 2**20:.0f} MiB): "
                f"{got['seconds']:.1f} s, {size / 1e6 / got['seconds']:.1f} MB/s, "
                f"compactor peak RSS {got['peak_rss_mb']:.0f} MB"
            )
            print(f"       compactor requests: {got['requests']}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _local(root: str) -> object:
    from obstore.store import LocalStore

    return LocalStore(root)


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
    ap.add_argument("--stores", default="local,moto", help="stores of the memory measurement")
    ap.add_argument(
        "--max-sst-mb",
        type=int,
        default=DbOptions().max_sst_size >> 20,
        help="compaction output size of the memory measurement",
    )
    ap.add_argument("--memory-only", action="store_true", help="skip the side-by-side")
    args = ap.parse_args()
    if not args.memory_only:
        side_by_side(args.compare_mb)
    memory(args.stores.split(","), args.mb, args.max_sst_mb << 20)


def side_by_side(total_mb: int) -> None:
    tmp = tempfile.mkdtemp()
    try:
        a = f"{tmp}/a"
        size, n = build(a, total_mb)
        shutil.copytree(a, f"{tmp}/b")
        t_ours, _ = ours(a)
        t_off = official(f"{tmp}/b")
        print(f"side by side, {size / 1e6:.0f} MB of input SSTs ({n} L0s -> one run):")
        print(f"  slatedb_py compactor : {t_ours:6.2f} s  {size / 1e6 / t_ours:7.1f} MB/s")
        if t_off is not None:
            print(
                f"  SlateDB 0.17.0       : {t_off:6.2f} s  {size / 1e6 / t_off:7.1f} MB/s"
                f"   ratio {t_off / t_ours:.2f}x"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
