"""Checkpoints, readers, clones and the collector, shared both ways with SlateDB 0.17.0."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.config import CheckpointOptions, DbOptions, ReaderOptions
from tests.interop import oracle
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
OPTS = DbOptions(flush_interval=None, gc_enabled=False)


def make_db(path: str, n: int = 300) -> dict[bytes, bytes]:
    model = {}
    with Db.open(path, ROOT, OPTS) as db:
        for i in range(n):
            db.put(b"k%04d" % i, b"v%d" % i, await_durable=False)
            model[b"k%04d" % i] = b"v%d" % i
        db.flush_memtable()
        db.put(b"tail", b"wal-only")
        model[b"tail"] = b"wal-only"
        db.flush()
    return model


def test_checkpoints_are_listed_alike_by_both(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    make_db(path)
    ours = admin.create_checkpoint(
        path, ROOT, CheckpointOptions(lifetime=timedelta(hours=1), name="ours")
    )
    theirs_id, theirs_manifest = oracle.create_checkpoint(
        path, name="theirs", lifetime_ms=7_200_000
    )
    seen_by_them = {c.id: c for c in oracle.list_checkpoints(path)}
    seen_by_us = {str(c.id): c for c in admin.list_checkpoints(path, ROOT)}
    assert set(seen_by_them) == set(seen_by_us) == {str(ours.id), theirs_id}
    for cid, c in seen_by_us.items():
        t = seen_by_them[cid]
        assert (t.manifest_id, t.name) == (c.manifest_id, c.name)
        assert t.create_time_secs == int(c.create_time.timestamp())
        assert t.expire_time_secs == (
            None if c.expire_time is None else int(c.expire_time.timestamp())
        )
    assert seen_by_us[theirs_id].manifest_id == theirs_manifest
    assert seen_by_us[str(ours.id)].manifest_id == ours.manifest_id


def test_readers_open_at_each_others_checkpoints(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    model = make_db(path)
    ours = admin.create_checkpoint(path, ROOT)
    theirs_id, _ = oracle.create_checkpoint(path)
    with Db.open(path, ROOT, OPTS) as db:
        db.put(b"later", b"x")
        db.delete(b"k0001")
    with DbReader.open(path, ROOT, checkpoint_id=uuid.UUID(theirs_id)) as reader:
        assert dict(reader.scan()) == model
    import slatedb.uniffi as u

    loop_reader = None
    b = u.DbReaderBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///"))
    b.with_reader_mode(u.ReaderMode.CHECKPOINT(str(ours.id)))
    loop_reader = Official.__new__(Official)
    import asyncio

    loop_reader.loop = asyncio.new_event_loop()
    loop_reader.reader = True
    loop_reader.db = loop_reader._run(b.build())
    assert loop_reader.scan() == model
    loop_reader.close()


def test_clones_made_by_either_open_in_the_other(tmp_path: Path) -> None:
    parent = str(tmp_path / "parent")
    model = make_db(parent)
    cp = admin.create_checkpoint(parent, ROOT)
    ours = str(tmp_path / "clone_ours")
    admin.create_clone(ours, parent, ROOT, cp.id)
    theirs = str(tmp_path / "clone_theirs")
    oracle.create_clone(theirs, parent, str(cp.id))

    official = Official(ours)
    assert official.scan() == model
    official.put(b"in-our-clone", b"1")
    official.close()
    with Db.open(theirs, ROOT, OPTS) as db:
        assert dict(db.scan()) == model
        db.put(b"in-their-clone", b"2")
    with Db.open(ours, ROOT, OPTS) as db:
        assert db.get(b"in-our-clone") == b"1" and db.get(b"in-their-clone") is None
    with Db.open(parent, ROOT, OPTS) as db:
        assert dict(db.scan()) == model


def test_0_17_collector_keeps_every_file_we_pin(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    model = make_db(path)
    cp = admin.create_checkpoint(path, ROOT)
    with Db.open(path, ROOT, OPTS) as db:
        for i in range(300):
            db.put(b"k%04d" % i, b"new", await_durable=False)
        db.flush_memtable()
        db.compact()
    oracle.run_gc_once(path)
    with DbReader.open(path, ROOT, checkpoint_id=cp.id) as reader:
        assert dict(reader.scan()) == model
    with DbReader.open(path, ROOT, options=ReaderOptions(manifest_poll_interval=None)) as latest:
        assert latest.get(b"k0005") == b"new"
