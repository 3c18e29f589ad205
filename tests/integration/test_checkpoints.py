"""Checkpoints, the collector that honours them, restore in place, and clones."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import obstore
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions
from slatedb_py.errors import (
    CheckpointNotFoundError,
    DatabaseNotFoundError,
    FencedError,
    InvalidArgumentError,
)

NOW = GcOptions(min_age=timedelta(0))
OPTS = DbOptions(flush_interval=None, gc_enabled=False)
ROOT = Path(__file__).resolve().parents[2]


def objects(store, prefix: str) -> set[str]:
    return {m["path"] for batch in obstore.list(store, prefix) for m in batch}


def test_checkpoint_pins_its_view_until_deleted(store) -> None:
    db = Db.open("db", store, OPTS)
    for i in range(500):
        db.put(b"k%04d" % i, b"v1", await_durable=False)
    cp = db.create_checkpoint(CheckpointOptions(name="v1"))
    pinned_ssts = objects(store, "db/compacted")
    for round_ in range(4):
        for i in range(500):
            db.put(b"k%04d" % i, b"v2-%d" % round_, await_durable=False)
        db.flush_memtable()
    db.compact()
    admin.run_gc_once("db", store, NOW)
    with DbReader.open("db", store, checkpoint_id=cp.id) as reader:
        assert dict(reader.scan()) == {b"k%04d" % i: b"v1" for i in range(500)}
    assert pinned_ssts <= objects(store, "db/compacted"), "the checkpoint's SSTs were collected"

    Db.delete_checkpoint("db", store, cp.id)
    gone = admin.run_gc_once("db", store, NOW)
    assert pinned_ssts.isdisjoint(objects(store, "db/compacted"))
    assert set(gone.compacted) >= pinned_ssts
    assert dict(db.scan()) == {b"k%04d" % i: b"v2-3" for i in range(500)}
    db.close()


def test_expiry_refresh_and_permanence_with_an_injected_clock(store) -> None:
    clock = ManualClock(1_800_000_000_000)
    Db.open("db", store, OPTS, clock=clock).close()
    cp = admin.create_checkpoint(
        "db", store, CheckpointOptions(lifetime=timedelta(seconds=1)), clock=clock
    )
    [listed] = admin.list_checkpoints("db", store)
    assert listed.expire_time is not None
    assert (listed.expire_time - listed.create_time) == timedelta(seconds=1)

    clock.advance(500)
    assert admin.run_gc_once("db", store, NOW, clock=clock).expired_checkpoints == []
    Db.refresh_checkpoint("db", store, cp.id, timedelta(seconds=10), clock=clock)
    clock.advance(2_000)  # past the first lifetime, within the refreshed one
    assert admin.run_gc_once("db", store, NOW, clock=clock).expired_checkpoints == []
    Db.refresh_checkpoint("db", store, cp.id, None, clock=clock)
    clock.advance(10**9)
    assert admin.run_gc_once("db", store, NOW, clock=clock).expired_checkpoints == []
    assert admin.list_checkpoints("db", store)[0].expire_time is None

    short = admin.create_checkpoint(
        "db", store, CheckpointOptions(lifetime=timedelta(seconds=1)), clock=clock
    )
    clock.advance(1_000)
    result = admin.run_gc_once("db", store, NOW, clock=clock)
    assert result.expired_checkpoints == [str(short.id)]
    assert [c.id for c in admin.list_checkpoints("db", store)] == [cp.id]
    with pytest.raises(CheckpointNotFoundError):
        Db.refresh_checkpoint("db", store, short.id, None, clock=clock)


def test_errors_are_clear_and_write_nothing(store) -> None:
    with pytest.raises(DatabaseNotFoundError):
        admin.create_checkpoint("nothing", store)
    assert objects(store, "nothing") == set()
    Db.open("db", store, OPTS).close()
    before = objects(store, "db")
    unknown = uuid.uuid4()
    with pytest.raises(CheckpointNotFoundError, match=str(unknown)):
        Db.refresh_checkpoint("db", store, unknown, timedelta(hours=1))
    with pytest.raises(CheckpointNotFoundError):
        Db.delete_checkpoint("db", store, unknown)
    with pytest.raises(CheckpointNotFoundError):
        DbReader.open("db", store, checkpoint_id=unknown)
    with pytest.raises(CheckpointNotFoundError):
        admin.restore_checkpoint("db", store, unknown)
    with pytest.raises(CheckpointNotFoundError):
        admin.create_checkpoint("db", store, CheckpointOptions(source=unknown))
    with pytest.raises(InvalidArgumentError):
        CheckpointOptions(lifetime=timedelta(seconds=-1))
    cp = admin.create_checkpoint("db", store)
    after_create = objects(store, "db")
    with pytest.raises(InvalidArgumentError):
        Db.refresh_checkpoint("db", store, cp.id, timedelta(seconds=-5))
    assert objects(store, "db") == after_create
    assert before < after_create


def test_source_checkpoint_pins_the_same_manifest(store) -> None:
    Db.open("db", store, OPTS).close()
    first = admin.create_checkpoint("db", store, CheckpointOptions(name="a"))
    second = admin.create_checkpoint("db", store, CheckpointOptions(source=first.id, name="b"))
    assert second.manifest_id == first.manifest_id
    assert [c.name for c in admin.list_checkpoints("db", store, name="b")] == ["b"]


ops = st.lists(
    st.tuples(st.sampled_from([b"a", b"b", b"c", b"d", b"e"]), st.none() | st.binary(max_size=8)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(before=ops, after=ops, flush_at=st.integers(0, 3))
def test_restore_reads_exactly_the_checkpoint(before, after, flush_at) -> None:
    store = MemoryStore()
    db = Db.open("db", store, OPTS)
    model: dict[bytes, bytes] = {}

    def apply(batch_ops, n):
        for i, (k, v) in enumerate(batch_ops):
            if v is None:
                db.delete(k, await_durable=False)
                model.pop(k, None)
            else:
                db.put(k, v, await_durable=False)
                model[k] = v
            if i == n:
                db.flush_memtable()
        db.flush()

    apply(before, flush_at)
    cp = admin.create_checkpoint("db", store)  # durable WAL included, no flush
    at_checkpoint = dict(model)
    apply(after, flush_at)
    admin.restore_checkpoint("db", store, cp.id)
    with pytest.raises(FencedError):
        db.put(b"z", b"late")
    db.close()
    with Db.open("db", store, OPTS) as restored:
        assert dict(restored.scan()) == at_checkpoint
        restored.write(WriteBatch().put(b"new", b"1"))
    with Db.open("db", store, OPTS) as again:
        assert dict(again.scan()) == {**at_checkpoint, b"new": b"1"}
    # The checkpoint itself is still there and still reads the same.
    with DbReader.open("db", store, checkpoint_id=cp.id) as reader:
        assert dict(reader.scan()) == at_checkpoint


def test_clone_reads_parent_ssts_in_place_and_diverges(store) -> None:
    with Db.open("parent", store, OPTS) as db:
        for i in range(100):
            db.put(b"k%03d" % i, b"p", await_durable=False)
        db.flush_memtable()
        db.put(b"tail", b"in-wal")
        cp = db.create_checkpoint()
        db.put(b"after", b"not in clone")
    admin.create_clone("clone", "parent", store, cp.id)
    admin.create_clone("clone", "parent", store, cp.id)  # idempotent
    assert objects(store, "clone/compacted") == set()  # zero-copy
    with Db.open("clone", store, OPTS) as clone:
        got = dict(clone.scan())
        assert got[b"tail"] == b"in-wal" and b"after" not in got and len(got) == 101
        clone.put(b"k000", b"clone")
    with Db.open("parent", store, OPTS) as parent:
        assert parent.get(b"k000") == b"p"
    # The parent now carries the clone's final checkpoint: its SSTs survive collection.
    assert len(admin.list_checkpoints("parent", store)) == 2
    admin.run_gc_once("parent", store, NOW)
    with Db.open("clone", store, OPTS) as clone:
        assert clone.get(b"k050") == b"p" and clone.get(b"k000") == b"clone"


def test_the_seed_examples_print_the_seed_lines() -> None:
    want = {
        "create_checkpoint.py": [r"Created checkpoint: ID = [0-9a-f-]{36}, Manifest = \d+"],
        "refresh_checkpoint.py": [
            r"Created checkpoint with 5 min lifetime: ID = [0-9a-f-]{36}",
            r"Checkpoint refreshed with extended 2-hour lifetime\.",
        ],
        "delete_checkpoint.py": [
            r"Created checkpoint: ID = [0-9a-f-]{36}",
            r"Checkpoint deleted\.",
        ],
    }
    import re

    for name, lines in want.items():
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / name)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert len(out) == len(lines)
        for got, pattern in zip(out, lines, strict=True):
            assert re.fullmatch(pattern, got), (name, got)


def test_background_collector_in_an_open_db(tmp_path: Path) -> None:
    import time

    from obstore.store import LocalStore

    from tests.support import pass_time

    store = LocalStore(str(tmp_path))
    opts = DbOptions(
        flush_interval=None, gc=GcOptions(min_age=timedelta(0), interval=timedelta(milliseconds=20))
    )
    clock = ManualClock(time.time_ns() // 1_000_000)
    db = Db.open("db", store, opts, clock=clock)
    for i in range(5):
        db.put(b"k%d" % i, b"v")
        db.flush_memtable()
    time.sleep(0.2)
    assert len(objects(store, "db/manifest")) > 1, (
        "versions younger than the collector's floor stay"
    )
    pass_time(tmp_path, 3_600_000, clock)
    db.put(b"k0", b"v")
    db.flush_memtable()  # the store's clock moves on: the old versions are past the floor
    deadline = time.monotonic() + 5
    while len(objects(store, "db/manifest")) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(objects(store, "db/manifest")) == 1
    assert dict(db.scan()) == {b"k%d" % i: b"v" for i in range(5)}
    db.close()
