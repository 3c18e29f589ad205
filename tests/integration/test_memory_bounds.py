"""Memory stays bounded at real size: a process writes more than 1 GB through the default
options, then a new process scans all of it. Each runs in its own subprocess and reports its
own peak RSS (VmHWM: `tests.support.peak_rss_mb`); the bounds are stated here, well under what
the old code used (a scan then decoded its whole range before yielding a row: its RSS grew with
the data). `ru_maxrss` would not do: a child's starts at the test runner's own peak, and after
half the suite that alone was over 400 MB (the scan "failed" at 405 and 449 MB while its own
peak was about 135 MB; `test_a_child_reports_its_own_peak_not_its_parents`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support import run_child

# 1.1 GB of 4 KiB incompressible values: few rows, so a debug build writes it quickly.
ROWS = 270_000
VALUE = 4096
WRITER_RSS_MB = 550  # max_unflushed_bytes (128 MiB) + an L0 SST being encoded + a compaction output
SCANNER_RSS_MB = 350  # blocks in flight, plus the compaction the reopened Db starts (old: > 1 GB)

CHILD = textwrap.dedent(
    """
    import json, os, sys
    from obstore.store import LocalStore
    from slatedb_py import Db, WriteBatch
    from slatedb_py.config import DbOptions
    from tests.support import peak_rss_mb

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
    out["rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_a_gigabyte_loads_and_scans_in_bounded_memory(tmp_path: Path) -> None:
    wrote = run_child(CHILD, "write", str(tmp_path), str(ROWS), str(VALUE))
    on_disk = sum(p.stat().st_size for p in (tmp_path / "db" / "compacted").iterdir())
    assert on_disk > 1_000_000_000, f"only {on_disk} bytes of SSTs"
    assert wrote["rss_mb"] < WRITER_RSS_MB, wrote
    scanned = run_child(CHILD, "scan", str(tmp_path), str(ROWS), str(VALUE))
    assert scanned["rows"] == ROWS and scanned["bytes"] == ROWS * VALUE
    assert scanned["rss_mb"] < SCANNER_RSS_MB, scanned


# A child that reports both measures of its peak after its parent (another child, so the test
# runner's own memory stays as it is) held `argv[1]` MB before starting it.
PARENT = textwrap.dedent(
    """
    import subprocess, sys
    held = bytearray(int(sys.argv[1]) << 20)
    held[::4096] = b"x" * len(held[::4096])  # touched: resident, not just reserved
    del held
    child = (
        "import json, resource; from tests.support import peak_rss_mb; print(json.dumps("
        "{'own': peak_rss_mb(), 'ru_maxrss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
        " / 1024}))"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    print(out.stdout)
    """
)


def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    got = run_child(PARENT, "300")
    # The kernel hands the parent's high-water mark down (what made the scan above look like
    # 405 MB in the full suite); the child's own peak is that of a bare interpreter.
    assert got["ru_maxrss"] > 300, got
    assert got["own"] < 100, got
