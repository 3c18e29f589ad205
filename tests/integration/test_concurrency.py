"""Several processes on one database: a writer keeps writing while this process creates,
refreshes and deletes checkpoints."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions

ROOT = Path(__file__).resolve().parents[2]


def test_checkpoints_from_another_process_while_a_writer_writes(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    Db.open("db", store).close()
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("writer_child.py")), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    rng = random.Random(5)
    live: set = set()
    ops = 0
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            action = rng.random()
            if action < 0.5 or not live:
                cp = admin.create_checkpoint(
                    "db", store, CheckpointOptions(lifetime=timedelta(hours=1))
                )
                live.add(cp.id)
            elif action < 0.75:
                Db.refresh_checkpoint("db", store, rng.choice(sorted(live)), timedelta(hours=2))
            else:
                victim = rng.choice(sorted(live))
                Db.delete_checkpoint("db", store, victim)
                live.discard(victim)
            ops += 1
            listed = {c.id for c in admin.list_checkpoints("db", store)}
            assert listed == live, "a checkpoint went missing or came back"
    finally:
        out, err = writer.communicate(input="", timeout=60)  # closing stdin stops the writer
    assert writer.returncode == 0, err
    lines = out.split()
    assert lines[-1] == "closed"
    acked = lines[:-1]
    assert len(acked) > 20 and ops > 20
    with Db.open("db", store) as db:
        missing = [k for k in acked if db.get(k.encode()) is None]
    assert missing == []
    assert {c.id for c in admin.list_checkpoints("db", store)} == live
