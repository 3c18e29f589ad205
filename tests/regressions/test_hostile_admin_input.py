"""Found in the second adversarial round of the collector fixes: refused admin calls that still
wrote (and fenced the writer), stray names in versioned folders that broke every open, and
options that took any value for a bool."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import obstore
import pytest

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)


def objects(store: Any) -> dict[str, int]:
    return {m["path"]: m["size"] for batch in obstore.list(store, "db") for m in batch}


@pytest.mark.parametrize(
    "ids, error",
    [
        ([10**6], InvalidArgumentError),
        ([2**64], InvalidArgumentError),
        ([], InvalidArgumentError),
        (5, InvalidTypeError),
        (None, InvalidTypeError),
        (["3"], InvalidTypeError),
        ([True], InvalidTypeError),
    ],
)
def test_a_refused_skip_writes_nothing_and_fences_no_one(store, ids: Any, error: type) -> None:  # type: ignore[no-untyped-def]
    db = Db.open("db", store, OPTS)
    db.put(b"k", b"v")
    before = objects(store)
    with pytest.raises(error):
        admin.skip_wal_objects("db", store, ids)
    assert objects(store) == before
    db.put(b"still", b"the writer")  # not fenced
    db.close()


@pytest.mark.parametrize("stray", ["99.manifest", "\u0661\u0662.manifest", "\u00b2.manifest"])
def test_stray_names_in_versioned_folders_are_not_versions(store, stray: str) -> None:  # type: ignore[no-untyped-def]
    with Db.open("db", store, OPTS) as db:
        db.put(b"k", b"v")
    for folder in ("manifest", "compactions"):
        obstore.put(store, f"db/{folder}/{stray.replace('.manifest', '.' + folder)}", b"junk")
    obstore.put(store, "db/wal/7.sst", b"junk")
    with Db.open("db", store, DbOptions(flush_interval=None, gc_enabled=False)) as db:
        assert db.get(b"k") == b"v"
        db.compact()
    admin.run_gc_once("db", store, GcOptions(min_age=timedelta(0)))
    with Db.open("db", store, OPTS) as db:
        assert db.get(b"k") == b"v"


@pytest.mark.parametrize(
    "make",
    [
        lambda: GcOptions(delete_wal_fences="no"),
        lambda: GcOptions(delete_wal_fences=1),
        lambda: DbOptions(gc_enabled="false"),
        lambda: DbOptions(compactor_enabled=None),
        lambda: ReaderOptions(managed_checkpoint="yes"),
    ],
)
def test_flags_take_only_bools(make: Any) -> None:
    with pytest.raises(InvalidTypeError):
        make()


def test_huge_lifetimes_and_control_characters(store) -> None:  # type: ignore[no-untyped-def]
    with Db.open("db", store, OPTS) as db:
        cp = db.create_checkpoint(CheckpointOptions(lifetime=timedelta.max))
    Db.refresh_checkpoint("db", store, cp.id, timedelta.max)
    [listed] = admin.list_checkpoints("db", store)
    assert listed.expire_time is not None and listed.expire_time.year == 2106
    for bad in ("db\x00x", "a\nb"):
        with pytest.raises(InvalidArgumentError):
            Db.open(bad, store, OPTS)
