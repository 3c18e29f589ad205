"""Memory stays bounded at real size: a process writes more than 1 GB through the default
options, then a new process scans all of it. Each runs in its own subprocess so its peak RSS
(`ru_maxrss`) is its own; the bounds are stated here, well under what the old code used
(a scan then decoded its whole range before yielding a row: its RSS grew with the data)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# 1.1 GB of 4 KiB incompressible values: few rows, so a debug build writes it quickly.
ROWS = 270_000
VALUE = 4096
WRITER_RSS_MB = 550  # max_unflushed_bytes (128 MiB) + an L0 SST being encoded + a compaction output
SCANNER_RSS_MB = 350  # blocks in flight, plus the compaction the reopened Db starts (old: > 1 GB)

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    from obstore.store import LocalStore
    from slatedb_py import Db, WriteBatch
    from slatedb_py.config import DbOptions

    mode, root, rows, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    db = Db.open("db", LocalStore(root), DbOptions())
    buf = os.urandom(1 << 22)
    if mode == "write":
        for s in range(0, rows, 100):
            b = WriteBatch()
            for i in range(s, min(s + 100, rows)):
                off = (i * 4099) % (len(buf) - size)
                b.put(b"key%09d" % i, buf[off:off + size])
            db.write(b, await_durable=False)
        out = {"rows": rows}
    else:
        n = total = 0
        last = b""
        for k, v in db.scan():
            assert k > last
            last = k
            n += 1
            total += len(v)
        out = {"rows": n, "bytes": total}
    db.close()
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    """
)


def _run(mode: str, root: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(root), str(ROWS), str(VALUE)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_gigabyte_loads_and_scans_in_bounded_memory(tmp_path: Path) -> None:
    wrote = _run("write", tmp_path)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "db" / "compacted").iterdir())
    assert on_disk > 1_000_000_000, f"only {on_disk} bytes of SSTs"
    assert wrote["rss_mb"] < WRITER_RSS_MB, wrote
    scanned = _run("scan", tmp_path)
    assert scanned["rows"] == ROWS and scanned["bytes"] == ROWS * VALUE
    assert scanned["rss_mb"] < SCANNER_RSS_MB, scanned
