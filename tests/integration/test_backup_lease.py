"""Backup operations on one location run one at a time (`slatedb_py.backup_lease`): a purge
beside a running backup is refused, a backup whose lease was taken over stops before it
records anything, and a killed backup's lease is taken over at once by the next backup,
which reuses what the killed one copied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, admin
from slatedb_py.backup_lease import LEASE, Holder
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import BackupInProgressError
from tests.support import FaultyStore, gate

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
CHILD = Path(__file__).with_name("backup_child.py")


def make_db(store: Any, parts: int = 4, path: str = "db") -> dict[bytes, bytes]:
    model = {}
    with Db.open(path, store, OPTS) as db:
        for p in range(parts):
            for i in range(200):
                k = b"k%02d-%04d" % (p, i)
                model[k] = b"v%d" % i * 20
                db.put(k, model[k], await_durable=False)
            db.flush_memtable()
    return model


def test_a_purge_beside_a_running_backup_is_refused_and_changes_nothing() -> None:
    src, bak = MemoryStore(), MemoryStore()
    model = make_db(src)
    first = admin.create_backup("db", src, "bak", bak)
    slow = FaultyStore(bak)
    reached = gate(slow, None, "put", "compacted")
    make_db(src, parts=1, path="db")  # something new for the second backup to copy
    result: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: result.setdefault("b", admin.create_backup("db", src, "bak", slow))
    )
    t.start()
    assert reached.wait(10)
    with pytest.raises(BackupInProgressError, match="create_backup by pid") as err:
        admin.purge_backups("bak", bak, keep_last=0)
    assert "create_backup" in (err.value.holder or "")
    with pytest.raises(BackupInProgressError):
        admin.delete_backup("bak", bak, first.id)
    with pytest.raises(BackupInProgressError):
        admin.create_backup("db", src, "bak", bak)
    slow.gate.set()
    t.join(30)
    second = result["b"]
    assert [b.id for b in admin.list_backups("bak", bak)] == [first.id, second.id]
    for b in (first, second):
        assert admin.verify_backup("bak", bak, b.id).ok
    assert [b.id for b in admin.purge_backups("bak", bak, keep_last=1)] == [first.id]
    admin.restore_backup("bak", bak, second.id, "r", src)
    with Db.open("r", src, OPTS) as r:
        assert dict(r.scan()) == model


def test_a_backup_whose_lease_expired_and_was_taken_stops_before_recording() -> None:
    """The lease expires while the backup is stalled; a purge takes it and deletes the
    objects of the backup it removes, which the stalled backup had decided to reuse. The
    backup notices at its next check and records nothing."""
    src, bak = MemoryStore(), MemoryStore()
    clock = ManualClock()
    model = make_db(src)
    old = admin.create_backup("db", src, "bak", bak, clock=clock)
    slow = FaultyStore(bak)
    reached = threading.Event()

    def held(what: str, path: str) -> bool:  # the stalled backup's record write
        if what == "put-if-absent" and "/backups/" in path and path.endswith(".json"):
            reached.set()
            return True
        return False

    slow.gate_when = held
    slow.gate.clear()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            admin.create_backup("db", src, "bak", slow, clock=clock)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert reached.wait(10)
    clock.advance(int(LEASE.total_seconds() * 1000) + 1)
    gone = admin.purge_backups("bak", bak, keep_last=0, clock=clock)
    assert [b.id for b in gone] == [old.id]
    slow.gate.set()
    t.join(30)
    # The record write was already past its check: the lease check after it is what stops
    # the backup from being reported; either way no record claims deleted objects.
    for b in admin.list_backups("bak", bak):
        assert admin.verify_backup("bak", bak, b.id).ok
    if not errors:
        pytest.fail("the backup finished although its lease was taken")
    assert isinstance(errors[0], BackupInProgressError)
    fresh = admin.create_backup("db", src, "bak", bak, clock=clock)
    assert admin.verify_backup("bak", bak, fresh.id).ok
    admin.restore_backup("bak", bak, fresh.id, "r", src, clock=clock)
    with Db.open("r", src, OPTS) as r:
        assert dict(r.scan()) == model


def test_a_lease_that_is_garbage_or_expired_is_taken_over() -> None:
    src, bak = MemoryStore(), MemoryStore()
    clock = ManualClock()
    make_db(src, parts=1)
    obstore.put(bak, "bak/backups/LEASE", b"not json")
    assert admin.create_backup("db", src, "bak", bak, clock=clock).objects > 0
    live = Holder("someone", "purge_backups", "another-host", 1, clock.now_ms() + 1000)
    obstore.put(bak, "bak/backups/LEASE", live.encode())
    with pytest.raises(BackupInProgressError, match="another-host"):
        admin.create_backup("db", src, "bak", bak, clock=clock)
    clock.advance(1001)
    admin.create_backup("db", src, "bak", bak, clock=clock)
    assert len(admin.list_backups("bak", bak)) == 2
    with pytest.raises(FileNotFoundError):  # released at the end
        obstore.get(bak, "bak/backups/LEASE")


def test_a_killed_backup_leaves_no_record_and_the_next_takes_over_and_reuses(
    tmp_path: Path,
) -> None:
    store = LocalStore(str(tmp_path))
    model = make_db(store, parts=8)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "copying"
        copied = tmp_path / "bak" / "compacted"
        while not copied.exists() or len(list(copied.iterdir())) < 2:
            assert child.poll() is None
            threading.Event().wait(0.01)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert (tmp_path / "bak" / "backups" / "LEASE").exists()
    assert admin.list_backups("bak", store) == []
    before = {p.name: p.stat().st_size for p in copied.iterdir() if p.suffix == ".sst"}
    b = admin.create_backup("db", store, "bak", store)
    reused = sum(before.values())
    assert reused > 0 and b.new_bytes <= b.bytes - reused
    assert admin.verify_backup("bak", store, b.id).ok
    admin.restore_backup("bak", store, b.id, "r", store)
    with Db.open("r", store, OPTS) as r:
        assert dict(r.scan()) == model


def test_a_purge_sweeps_what_interrupted_creates_left() -> None:
    """A create that died after its manifest update leaves a checkpoint and copies that no
    record names: the next purge removes both, and keeps every kept backup whole."""
    src, bak = MemoryStore(), MemoryStore()
    model = make_db(src, parts=2)
    kept = admin.create_backup("db", src, "bak", bak)
    stray = "bak/compacted/01J00000000000000000000000.sst"
    obstore.put(bak, stray, b"half a copy")
    failing = FaultyStore(bak)

    def fail(what: str, path: str) -> bool:
        if what == "put-if-absent" and path.endswith(".json"):
            raise RuntimeError("injected: dies before its record")
        return False

    failing.gate_when = fail
    with pytest.raises(RuntimeError, match="injected"):
        admin.create_backup("db", src, "bak", failing)
    orphans = [c for c in admin.list_checkpoints("bak", bak) if c.id != kept.id]
    assert len(orphans) == 1
    assert admin.purge_backups("bak", bak, keep_last=1) == []
    assert [c.id for c in admin.list_checkpoints("bak", bak)] == [kept.id]
    with pytest.raises(FileNotFoundError):
        obstore.get(bak, stray)
    assert admin.verify_backup("bak", bak, kept.id).ok
    admin.restore_backup("bak", bak, kept.id, "r", src)
    with Db.open("r", src, OPTS) as r:
        assert dict(r.scan()) == model


def test_a_lease_left_by_a_failed_operation_of_this_process_is_taken_over() -> None:
    """The operation failed and so did the deletion of its lease (the store was down): the
    next operation of this process does not wait out the lease."""
    src, bak = MemoryStore(), MemoryStore()
    make_db(src, parts=1)
    down = FaultyStore(bak)

    def fail(what: str, path: str) -> bool:
        if what != "put-if-absent" or "LEASE" not in path:
            raise RuntimeError(f"injected: the store is down ({what} {path})")
        return False

    down.gate_when = fail
    with pytest.raises(RuntimeError, match="injected"):
        admin.create_backup("db", src, "bak", down)
    assert obstore.get(bak, "bak/backups/LEASE").bytes()  # left behind
    b = admin.create_backup("db", src, "bak", bak)
    assert admin.verify_backup("bak", bak, b.id).ok
