"""A checkpoint with a lifetime under one second was already expired when it was created
(reported with the adversarial review's format limits): expiry times are whole seconds and the
lifetime was rounded down. Lifetimes now round up, and a zero lifetime is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slatedb_py import Db, DbReader, admin
from slatedb_py.config import CheckpointOptions, DbOptions
from slatedb_py.errors import InvalidArgumentError

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)


def test_a_sub_second_lifetime_is_live_when_created(store) -> None:  # type: ignore[no-untyped-def]
    with Db.open("db", store, OPTS) as db:
        db.put(b"k", b"v")
        cp = db.create_checkpoint(CheckpointOptions(lifetime=timedelta(milliseconds=300)))
    [listed] = admin.list_checkpoints("db", store)
    assert listed.expire_time is not None and listed.expire_time > listed.create_time
    with DbReader.open("db", store, checkpoint_id=cp.id) as reader:
        assert reader.get(b"k") == b"v"


def test_a_zero_lifetime_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError):
        CheckpointOptions(lifetime=timedelta(0))
    with Db.open("db", store, OPTS) as db:
        cp = db.create_checkpoint()
    with pytest.raises(InvalidArgumentError, match="lifetime"):
        Db.refresh_checkpoint("db", store, cp.id, timedelta(0))
