"""A bounded soak on a local S3-compatible server: a writer, two readers, a standalone
compactor and a collector, each its own process, every request with a 5% chance of an
injected transient error. At the end the database equals the writer's acknowledged model,
no reader saw half a batch or a value going backwards, and nothing acknowledged was lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slatedb_py import Db
from tests.support import S3Server

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("soak_child.py")


@pytest.mark.slow
def test_soak_writer_readers_compactor_collector_on_s3() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "60" if os.environ.get("CI") else "20"))
    server = S3Server.get()
    bucket = server.new_bucket()
    store = server.store(bucket)
    Db.open("soak", store).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def spawn(role: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(CHILD), role, server.endpoint, bucket, str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    procs = {r: spawn(r) for r in ("writer", "reader", "compactor", "collector")}
    procs["reader2"] = spawn("reader")
    time.sleep(seconds)
    outs = {}
    for role in ("writer", "reader", "reader2", "compactor", "collector"):
        out, err = procs[role].communicate(input="", timeout=120)
        assert procs[role].returncode == 0, f"{role} failed: {err[-3000:]}"
        outs[role] = out.splitlines()
    acked: dict[int, int] = {}
    for line in outs["writer"]:
        if line.startswith("ack "):
            _, g, n = line.split()
            acked[int(g)] = int(n)
    assert outs["writer"][-1] == "closed"
    assert sum(1 for line in outs["writer"] if line.startswith("ack ")) > 50
    for role in ("reader", "reader2"):
        assert not [line for line in outs[role] if line.startswith("bad")], outs[role][:20]
        assert outs[role][-1].startswith("ok ") and int(outs[role][-1].split()[1]) > 5
    assert outs["compactor"][-1].startswith("ok ")
    print(
        f"soak {seconds:.0f}s: {len(acked)} groups,"
        f" {sum(1 for x in outs['writer'] if x.startswith('ack'))} batches,"
        f" reads {outs['reader'][-1]}/{outs['reader2'][-1]}, compactions {outs['compactor'][-1]},"
        f" gc rounds {outs['collector'][-1]}"
    )
    with Db.open("soak", store) as db:
        rows = dict(db.scan())
    want = {b"g%02d/%s" % (g, p.encode()): b"%08d" % n for g, n in acked.items() for p in "abc"}
    assert rows == want
