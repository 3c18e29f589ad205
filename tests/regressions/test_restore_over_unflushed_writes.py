"""An in-place restore that fenced a running writer set the new version's `last_l0_seq` from
the manifest and the restored state only, not from the rows that writer had in its WAL but
had not flushed yet.

Found by tests/property/test_history_faults_model.py: a backup of an empty database, a put
(durable in the WAL, not in an L0 SST), then `restore_backup` in place with the writer still
open. The restore's version had `last_l0_seq` 0, so:
- time travel took it for an empty database's version (one at seq 0 is chosen at any time)
  and read every earlier point, the put's included, as the restored state;
- the next writer started again at seq 1, handing out the fenced writer's seqs a second
  time. With flushed writes before, the first symptom goes but the second stays: the change
  stream (`WalReader`), which yields each seq once, skipped the new writer's writes.
`restore_checkpoint` and `restore_to_time` made the same version. Now every in-place restore
raises `last_l0_seq` to the highest seq written before its fence (`restore.written_seq`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, WalReader, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import FencedError
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

OPTS = DbOptions(
    flush_interval=None,
    compactor_enabled=False,
    gc_enabled=False,
    history_retention=timedelta(minutes=1),
)
NO_POLL = ReaderOptions(manifest_poll_interval=None)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def last_l0_seq(store: object) -> int:
    return ManifestStore(Store.resolve(store), DbPaths.of("db")).require_latest()[1].last_l0_seq


@pytest.mark.parametrize("kind", ["backup", "checkpoint", "time"])
def test_a_restore_that_fences_a_writer_keeps_its_unflushed_writes_history(kind: str) -> None:
    store = MemoryStore()
    clock = ManualClock(time.time_ns() // 1_000_000)
    db = Db.open("db", store, OPTS, clock=clock)
    empty_at = clock.now_ms()
    restore: Callable[[], object]
    if kind == "backup":
        b = admin.create_backup("db", store, "bak", store, clock=clock)
        restore = lambda: admin.restore_backup(
            "bak", store, b.id, "db", store, options=OPTS, clock=clock
        )
    elif kind == "checkpoint":
        cp = admin.create_checkpoint("db", store, clock=clock)
        restore = lambda: admin.restore_checkpoint("db", store, cp.id, options=OPTS, clock=clock)
    else:
        restore = lambda: admin.restore_to_time(
            "db", store, at(empty_at), options=OPTS, clock=clock
        )
    clock.advance(100)
    db.put(b"k0", b"v1")  # durable in the WAL only: no flush before the restore
    put_at = clock.now_ms()
    clock.advance(373)
    restore()
    with pytest.raises(FencedError):
        db.put(b"k0", b"fenced")
    db.close()
    restored_at = clock.now_ms()

    assert last_l0_seq(store) >= 1  # the fenced writer's seq 1 is never handed out again
    for t, expected in [
        (empty_at, {}),
        (put_at, {b"k0": b"v1"}),
        (restored_at - 1, {b"k0": b"v1"}),
        (restored_at, {}),
    ]:
        with DbReader.open("db", store, options=NO_POLL, as_of=at(t), clock=clock) as r:
            assert dict(r.scan()) == expected, t - put_at
    clock.advance(1)
    with Db.open("db", store, OPTS, clock=clock) as again:
        again.put(b"k1", b"after")
        again.flush_memtable()
    assert last_l0_seq(store) >= 2
    with DbReader.open("db", store, options=NO_POLL, as_of=at(put_at), clock=clock) as r:
        assert dict(r.scan()) == {b"k0": b"v1"}


@pytest.mark.parametrize("kind", ["backup", "checkpoint", "time"])
def test_writes_after_such_a_restore_get_new_seqs(kind: str) -> None:
    """With flushed writes before (so `last_l0_seq` was not 0), the fenced writer's
    unflushed seqs were handed out again: the change stream, which yields each seq once,
    skipped the new writer's writes."""
    store = MemoryStore()
    clock = ManualClock(time.time_ns() // 1_000_000)
    db = Db.open("db", store, OPTS, clock=clock)
    db.put(b"a", b"1")
    db.flush_memtable()  # seq 1 in L0: last_l0_seq 1
    flushed_at = clock.now_ms()
    b = admin.create_backup("db", store, "bak", store, clock=clock)
    cp = admin.create_checkpoint("db", store, clock=clock)
    clock.advance(10)
    db.put(b"b", b"2")  # seqs 2 and 3, in the WAL only
    db.put(b"c", b"3")
    clock.advance(10)
    if kind == "backup":
        admin.restore_backup("bak", store, b.id, "db", store, options=OPTS, clock=clock)
    elif kind == "checkpoint":
        admin.restore_checkpoint("db", store, cp.id, options=OPTS, clock=clock)
    else:
        admin.restore_to_time("db", store, at(flushed_at), options=OPTS, clock=clock)
    with pytest.raises(FencedError):
        db.put(b"x", b"fenced")
    db.close()
    clock.advance(10)
    with Db.open("db", store, OPTS, clock=clock) as again:
        again.put(b"d", b"4")
        assert dict(again.scan()) == {b"a": b"1", b"d": b"4"}
    with WalReader("db", store, clock=clock) as wal:
        changes = [(c.seq, c.key) for c in wal.changes()]
    assert [k for _, k in changes] == [b"a", b"b", b"c", b"d"]
    assert [s for s, _ in changes] == sorted({s for s, _ in changes})  # rising, none reused
