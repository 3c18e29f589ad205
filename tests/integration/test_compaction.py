"""Compaction: space reclaimed, reads bounded, crashes survived, older compactors fenced."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import obstore
import pytest
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.clock import SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import FencedError
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

NOW = GcOptions(min_age=timedelta(0))
ROOT = Path(__file__).resolve().parents[2]


def sst_bytes(store, prefix: str) -> int:
    return sum(m["size"] for batch in obstore.list(store, prefix) for m in batch)


def test_overwrites_and_deletes_are_reclaimed(store) -> None:
    opts = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    db = Db.open("db", store, opts)
    keys = [b"key%06d" % i for i in range(3000)]
    for k in keys:
        db.put(k, os.urandom(100), await_durable=False)
    db.flush_memtable()
    one_copy = sst_bytes(store, "db/compacted")
    for _ in range(9):
        for k in keys:
            db.put(k, os.urandom(100), await_durable=False)
        db.flush_memtable()
    assert sst_bytes(store, "db/compacted") > 9 * one_copy
    db.compact()
    admin.run_gc_once("db", store, NOW)
    assert sst_bytes(store, "db/compacted") <= 1.5 * one_copy
    for k in keys[::2]:
        db.delete(k, await_durable=False)
    db.compact()
    admin.run_gc_once("db", store, NOW)
    assert sst_bytes(store, "db/compacted") <= 0.6 * one_copy
    assert len(list(db.scan())) == 1500
    db.close()


def test_background_compaction_bounds_the_ssts_a_read_consults(store) -> None:
    opts = DbOptions(
        flush_interval=None,
        l0_sst_size_bytes=16 * 1024,
        compactor_poll_interval=timedelta(milliseconds=10),
        gc_enabled=False,
    )
    db = Db.open("db", store, opts)
    model = {}
    for i in range(20_000):
        k = b"k%06d" % random.Random(i).randrange(8000)
        db.put(k, b"v%d" % i, await_durable=False)
        model[k] = b"v%d" % i
    db.flush_memtable()
    # The compactor runs beside the test: wait until it has caught up (a slow store, such as
    # moto under load, may still be merging runs when the L0s first drop below the trigger).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = db.manifest()[1]
        if len(m.l0) < opts.compaction_min_sources and len(m.compacted) <= 6:
            break
        time.sleep(0.02)
    m = db.manifest()[1]
    flushes = 20_000 * 30 // opts.l0_sst_size_bytes
    assert len(m.l0) < opts.compaction_min_sources
    assert len(m.compacted) <= 6, [len(r.views) for r in m.compacted]
    # A read consults at most a quarter of the SSTs the flushes wrote.
    assert len(m.l0) + len(m.compacted) <= flushes / 4
    assert dict(db.scan()) == model
    assert all(db.get(k) == v for k, v in list(model.items())[::97])
    db.close()


def test_an_older_compactor_is_fenced(store) -> None:
    with Db.open("db", store, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        for r in range(5):
            db.put(b"k%d" % r, b"v")
            db.flush_memtable()
    s = Store.resolve(store)
    opts = DbOptions(compaction_min_sources=2)
    old = Compactor(s, DbPaths.of("db"), opts, SystemClock())
    old.claim()
    new = Compactor(s, DbPaths.of("db"), opts, SystemClock())
    assert new.run_once()
    with pytest.raises(FencedError):
        old.run_once()
    with Db.open("db", store) as db:
        assert dict(db.scan()) == {b"k%d" % r: b"v" for r in range(5)}


def test_compactor_killed_mid_compaction_leaves_a_readable_database(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, gc_enabled=False, l0_sst_size_bytes=64 * 1024
    )
    model = {}
    with Db.open("db", store, opts) as db:
        for i in range(60_000):
            k = b"key%06d" % (i * 7919 % 40_000)
            db.put(k, b"%d" % i * 10, await_durable=False)
            model[k] = b"%d" % i * 10
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "slatedb_py.cli", "compactor", "file:///", str(tmp_path / "db")]
    rng = random.Random(3)
    for _ in range(5):
        proc = subprocess.Popen(
            [*cli, "--once", "--full"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(rng.uniform(0.2, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        with Db.open("db", store, opts) as db:
            assert dict(db.scan()) == model
    done = subprocess.run(
        [*cli, "--once", "--full", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert '"compactions"' in done.stdout
    with Db.open("db", store, opts) as db:
        m = db.manifest()[1]
        assert not m.l0 and len(m.compacted) == 1
        assert dict(db.scan()) == model
