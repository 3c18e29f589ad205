"""Found by the structure review (issue 11): "the manifest a checkpoint pins" was resolved in
three places that had drifted. Restore and clone refused an expired checkpoint that no
collector had removed yet, while `DbReader` opened it, reading SSTs a collector may already be
deleting. All three now share `checkpoint.resolve` and refuse it alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import CheckpointOptions, DbOptions, ReaderOptions
from slatedb_py.errors import CheckpointNotFoundError

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
READER = ReaderOptions(manifest_poll_interval=None, managed_checkpoint=False)


def test_an_expired_checkpoint_is_refused_by_reader_restore_and_clone() -> None:
    store, clock = MemoryStore(), ManualClock()
    with Db.open("db", store, OPTS, clock=clock) as db:
        db.put(b"k", b"v")
        cp = db.create_checkpoint(CheckpointOptions(lifetime=timedelta(seconds=10)))
    with DbReader.open("db", store, cp.id, READER, clock=clock) as reader:
        assert reader.get(b"k") == b"v"  # live: readable

    clock.advance(11_000)  # expired, and no collector has run: the entry is still there
    assert [c.id for c in admin.list_checkpoints("db", store)] == [cp.id]
    with pytest.raises(CheckpointNotFoundError) as err:
        DbReader.open("db", store, cp.id, READER, clock=clock)
    assert err.value.checkpoint_id == cp.id and str(cp.id) in str(err.value)
    with pytest.raises(CheckpointNotFoundError):
        admin.restore_checkpoint("db", store, cp.id, clock=clock)
    with pytest.raises(CheckpointNotFoundError):
        admin.create_clone("clone", "db", store, cp.id, clock=clock)
