"""A writer SIGKILLed at random moments loses no acknowledged write and never leaves half of
a write batch visible."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def crash_loop(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    acked: set[int] = set()
    start = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        # Let it open and write for a while, then kill it without warning.
        first = proc.stdout.readline()
        assert first, proc.stderr.read() if proc.stderr else "child died"
        acked.add(int(first))
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acked.update(int(x) for x in out.split())
        with Db.open("crash/db", LocalStore(str(tmp_path))) as db:
            seen: dict[int, int] = {}
            for key, _ in db.scan():
                m = re.match(rb"batch(\d+)/(\d)", key)
                assert m
                seen[int(m[1])] = seen.get(int(m[1]), 0) + 1
        assert all(n == 3 for n in seen.values()), "a write batch is half visible"
        missing = acked - set(seen)
        assert not missing, f"acknowledged batches lost: {sorted(missing)[:10]}"
        start = max(seen, default=0) + 1


def test_crash_a_few_times(tmp_path: Path) -> None:
    crash_loop(tmp_path, rounds=3, seed=1)


@pytest.mark.slow
def test_crash_twenty_times(tmp_path: Path) -> None:
    crash_loop(tmp_path, rounds=20, seed=2)
