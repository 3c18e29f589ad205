"""`Db.snapshot()` and `DbReader.snapshot()`: a consistent view at one instant that flushes,
compactions and the collector keep readable until it is closed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import ClosedError

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))


def test_a_snapshot_reads_through_its_collected_ssts() -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    for i in range(200):
        db.put(b"k%03d" % i, b"old", await_durable=False)
    db.flush_memtable()  # the snapshot's view names this L0 SST
    with db.snapshot() as snap:
        for i in range(200):
            db.put(b"k%03d" % i, b"new", await_durable=False)
        db.delete(b"k007")
        db.flush_memtable()
        db.compact()  # one run: keeps "old" for the open snapshot
        assert admin.run_gc_once("db", store, ZERO).compacted  # the snapshot's SST is gone
        assert snap.get(b"k007") == b"old" and snap.get(b"k008") == b"old"
        assert set(dict(snap.scan()).values()) == {b"old"} and len(list(snap.scan())) == 200
        assert db.get(b"k007") is None and db.get(b"k008") == b"new"
    with pytest.raises(ClosedError):
        snap.get(b"k001")
    # Released: the next flush and compaction keep only the newest versions again.
    db.put(b"x", b"1")
    db.flush_memtable()
    _, m = db.manifest()
    assert m.recent_snapshot_min_seq == m.last_l0_seq
    db.close()


def test_an_open_snapshot_lowers_recent_snapshot_min_seq() -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        db.put(b"a", b"1")
        snap = db.snapshot()
        db.put(b"a", b"2")
        db.flush_memtable()
        _, m = db.manifest()
        assert m.recent_snapshot_min_seq == snap.seq < m.last_l0_seq
        snap.close()
        with pytest.raises(ClosedError):
            snap.get(b"a")


def test_a_dropped_snapshot_releases_its_versions() -> None:
    import gc

    with Db.open("db", MemoryStore(), OPTS) as db:
        db.put(b"a", b"1")
        db.snapshot()  # dropped at once
        gc.collect()
        db.put(b"a", b"2")
        db.flush_memtable()
        _, m = db.manifest()
        assert m.recent_snapshot_min_seq == m.last_l0_seq


def test_reader_snapshot_is_consistent_and_closes_with_the_reader() -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        db.put(b"a", b"1")
        reader = DbReader.open(
            "db",
            store,
            options=ReaderOptions(manifest_poll_interval=None, managed_checkpoint=False),
        )
        snap = reader.snapshot()
        db.put(b"a", b"2")
        db.flush()
        reader.refresh()
        assert reader.get(b"a") == b"2" and snap.get(b"a") == b"1"
        reader.close()
        with pytest.raises(ClosedError):
            snap.get(b"a")


def test_a_snapshot_taken_before_any_write_keeps_every_version_for_later_ones() -> None:
    """Found by the snapshot model: a snapshot at seq 0 makes the next flush record
    `recent_snapshot_min_seq = 0` (keep every version). Compaction and the too-old check read
    0 as "unset" and fell back to `last_l0_seq`: compaction dropped the versions a second,
    later snapshot read, and that snapshot's reads were refused as too old."""
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        empty = db.snapshot()  # seq 0
        db.put(b"a", b"1")
        db.flush_memtable()  # the next snapshot's view names this L0 SST
        one = db.snapshot()
        db.put(b"a", b"2")
        time.sleep(0.002)  # SST names (ULIDs) in later milliseconds: the collector takes them
        db.flush_memtable()
        assert db.manifest()[1].recent_snapshot_min_seq == 0
        time.sleep(0.002)
        db.compact()
        assert admin.run_gc_once("db", store, ZERO).compacted  # `one`'s L0 SST is gone
        assert empty.get(b"a") is None and one.get(b"a") == b"1" and db.get(b"a") == b"2"
        assert list(one.scan()) == [(b"a", b"1")]
        empty.close()
        one.close()
