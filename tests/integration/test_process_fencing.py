"""Fencing across processes on the S3 server: a second writer process fences the first, a
second compactor fences the first, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from slatedb_py import Db
from slatedb_py.clock import SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from tests.support import S3Server

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("soak_child.py")


def spawn(role: str, server: S3Server, bucket: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), role, server.endpoint, bucket, str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_second_writer_process_fences_the_first() -> None:
    server = S3Server.get()
    bucket = server.new_bucket()
    store = server.store(bucket)
    Db.open("soak", store).close()
    first = spawn("writer", server, bucket)
    assert first.stdout is not None
    acked: dict[int, int] = {}
    while len(acked) < 5:  # let it acknowledge some batches
        _, g, n = first.stdout.readline().split()
        acked[int(g)] = int(n)
    second = Db.open("soak", store, DbOptions(compactor_enabled=False, gc_enabled=False))
    out, err = first.communicate(timeout=60)  # the first writer's next write fails: it exits
    for line in out.splitlines():
        if line.startswith("ack "):
            _, g, n = line.split()
            acked[int(g)] = int(n)
    assert first.returncode != 0 and "FencedError" in err
    rows = dict(second.scan())
    for g, n in acked.items():
        values = {rows.get(b"g%02d/%s" % (g, p)) for p in (b"a", b"b", b"c")}
        assert len(values) == 1 and int(values.pop()) >= n  # acknowledged (or later) value
    second.put(b"after", b"fence")
    second.close()


def test_second_compactor_process_fences_the_first() -> None:
    server = S3Server.get()
    bucket = server.new_bucket()
    store = server.store(bucket)
    with Db.open("soak", store, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        for r in range(3):
            db.put(b"k%d" % r, b"v")
            db.flush_memtable()
    first = spawn("compactor", server, bucket)
    time.sleep(3)  # it claims its epoch and compacts
    newer = Compactor(
        Store.resolve(store), DbPaths.of("soak"), DbOptions(compaction_min_sources=2), SystemClock()
    )
    newer.claim()
    with Db.open("soak", store, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        for r in range(3, 6):
            db.put(b"k%d" % r, b"v")
            db.flush_memtable()
    first.wait(timeout=60)  # it stops by itself once fenced (stdin still open)
    out, _ = first.communicate(timeout=10)
    assert first.returncode == 0 and out.strip().startswith("ok")
    assert newer.run_once()
    with Db.open("soak", store, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        assert dict(db.scan()) == {b"k%d" % r: b"v" for r in range(6)}
