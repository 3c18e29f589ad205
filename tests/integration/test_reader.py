"""DbReader: following a writer, and pinned to a checkpoint made by SlateDB 0.17.0."""

from __future__ import annotations

import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import CheckpointNotFoundError, DatabaseNotFoundError, InvalidTypeError
from tests.interop.golden import GOLDEN
from tests.support import plain

NO_POLL = ReaderOptions(manifest_poll_interval=None)


def test_reader_follows_the_writer(store) -> None:
    db = Db.open("db", store, DbOptions(flush_interval=None))
    db.put(b"a", b"1")
    reader = DbReader.open("db", store, options=NO_POLL)
    assert reader.get(b"a") == b"1"
    db.put(b"b", b"2")
    db.flush_memtable()
    db.put(b"c", b"3")
    db.delete(b"a")
    assert reader.get(b"b") is None  # not refreshed yet
    reader.refresh()
    assert dict(reader.scan()) == {b"b": b"2", b"c": b"3"}
    db.close()
    reader.refresh()
    assert dict(reader.scan()) == {b"b": b"2", b"c": b"3"}
    reader.close()


def test_polling_reader_catches_up(store) -> None:
    import time

    db = Db.open("db", store, DbOptions(flush_interval=None))
    reader = DbReader.open(
        "db", store, options=ReaderOptions(manifest_poll_interval=timedelta(milliseconds=20))
    )
    db.put(b"k", b"v")
    deadline = time.monotonic() + 5
    while reader.get(b"k") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.get(b"k") == b"v"
    reader.close()
    db.close()


def test_reader_errors(store) -> None:
    with pytest.raises(DatabaseNotFoundError):
        DbReader.open("nothing/here", store)
    Db.open("db", store).close()
    with pytest.raises(CheckpointNotFoundError):
        DbReader.open("db", store, checkpoint_id=uuid.uuid4())
    with pytest.raises(InvalidTypeError):
        DbReader.open("db", store, checkpoint_id="not-a-uuid")  # type: ignore[arg-type]


@pytest.mark.interop
def test_reader_at_a_checkpoint_made_by_0_17(tmp_path: Path) -> None:
    from tests.interop.oracle import create_checkpoint

    path = str(tmp_path / "db")
    shutil.copytree(GOLDEN / "codec_none" / "db", path)
    with Db.open(path, LocalStore("/")) as db:
        db.put(b"before-checkpoint", b"1")
        db.flush()
    cp_id, manifest_id = create_checkpoint(path, name="cp1")
    with Db.open(path, LocalStore("/")) as db:
        db.put(b"after-checkpoint", b"2")
        db.delete(b"before-checkpoint")
    pinned = DbReader.open(path, LocalStore("/"), checkpoint_id=uuid.UUID(cp_id))
    assert pinned.get(b"before-checkpoint") == b"1"
    assert pinned.get(b"after-checkpoint") is None
    pinned.close()
    latest = DbReader.open(path, LocalStore("/"), options=NO_POLL)
    assert latest.get(b"before-checkpoint") is None
    assert latest.get(b"after-checkpoint") == b"2"
    latest.close()
    assert manifest_id > 0


def test_managed_checkpoint_keeps_the_readers_files_from_the_collector(store) -> None:
    from slatedb_py import admin
    from slatedb_py.config import GcOptions

    now = GcOptions(min_age=timedelta(0))
    db = Db.open("db", store, DbOptions(flush_interval=None, gc_enabled=False))
    for i in range(300):
        db.put(b"k%03d" % i, b"v1", await_durable=False)
    db.flush_memtable()
    reader = DbReader.open("db", store, options=NO_POLL)
    assert [c.expire_time is not None for c in admin.list_checkpoints("db", store)] == [True]
    for i in range(300):
        db.put(b"k%03d" % i, b"v2", await_durable=False)
    db.flush_memtable()
    db.compact()
    admin.run_gc_once("db", store, now)
    # Not refreshed: still the old view, and its SSTs are still there to read.
    assert dict(reader.scan()) == {b"k%03d" % i: b"v1" for i in range(300)}
    reader.refresh()  # moves its checkpoint to the new tree
    assert dict(reader.scan()) == {b"k%03d" % i: b"v2" for i in range(300)}
    admin.run_gc_once("db", store, now)
    assert reader.get(b"k007") == b"v2"
    reader.close()
    assert admin.list_checkpoints("db", store) == []
    db.close()


def test_managed_checkpoint_is_recreated_after_being_reaped(store) -> None:
    from slatedb_py import admin
    from slatedb_py.clock import ManualClock
    from slatedb_py.config import GcOptions

    clock = ManualClock(1_800_000_000_000)
    with Db.open("db", store, DbOptions(flush_interval=None, gc_enabled=False), clock=clock) as db:
        db.put(b"k", b"v")
    opts = ReaderOptions(manifest_poll_interval=None, checkpoint_lifetime=timedelta(seconds=10))
    reader = DbReader.open("db", store, options=opts, clock=clock)
    clock.advance(60_000)  # the reader was away longer than its checkpoint's lifetime
    assert admin.run_gc_once(
        "db", store, GcOptions(min_age=timedelta(0)), clock=clock
    ).expired_checkpoints
    reader.refresh()
    assert reader.get(b"k") == b"v"
    assert len(admin.list_checkpoints("db", store)) == 1
    reader.close()


def test_segmented_databases_are_read_and_refused_for_writing(store) -> None:
    from dataclasses import replace

    from slatedb_py.errors import InvalidArgumentError
    from slatedb_py.manifest.model import Segment
    from slatedb_py.manifest.store import ManifestStore
    from slatedb_py.paths import DbPaths
    from slatedb_py.store import Store

    with Db.open("db", store, DbOptions(flush_interval=None, gc_enabled=False)) as db:
        for i in range(50):
            db.put(b"k%02d" % i, b"v%d" % i, await_durable=False)
    # As SlateDB writes a database with a segment extractor: the tree lives in a segment.
    ms = ManifestStore(Store.resolve(store), DbPaths.of("db"))
    ms.update(
        plain(
            lambda m: replace(
                m,
                l0=(),
                segment_extractor_name="first-byte",
                segments=(Segment(b"k", None, m.l0, ()),),
            )
        )
    )
    with DbReader.open(
        "db", store, options=ReaderOptions(manifest_poll_interval=None, managed_checkpoint=False)
    ) as r:
        assert r.get(b"k07") == b"v7"
        assert len(dict(r.scan())) == 50
    before = ms.ids()
    with pytest.raises(InvalidArgumentError, match="segments"):
        Db.open("db", store)
    assert ms.ids() == before
