"""The collector removes the staging files (`<key>#<n>`) that plain uploads cut short by a
crash leave in a local folder, which obstore neither lists nor deletes: once nothing has
written them for their kind's minimum age (and the collector floor has passed). Those of SST
uploads follow the SSTs' rules too (test_upload_crash.py)."""

from __future__ import annotations

from pathlib import Path

from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.config import DbOptions, GcOptions
from tests.support import pass_time

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def test_dead_staging_files_of_wal_manifest_and_state_uploads_are_collected(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path)
    with Db.open("db", store, OPTS) as db:
        db.put(b"k", b"v")
        db.flush_memtable()
    db_dir = tmp_path / "db"
    (db_dir / "compactions").mkdir(exist_ok=True)
    dead = [
        db_dir / "wal" / "00000000000000000099.sst#1",
        db_dir / "manifest" / "00000000000000000099.manifest#2",
        db_dir / "compactions" / "00000000000000000099.compactions#1",
    ]
    for f in dead:
        f.write_bytes(b"half an object")
    pass_time(tmp_path, 10 * 60_000)  # older than the minimum age and the floor
    fresh = db_dir / "wal" / "00000000000000000100.sst#1"
    fresh.write_bytes(b"an upload in flight")
    with Db.open("db", store, OPTS) as db:
        db.put(b"k2", b"v2")  # the store's now moves on: the floor passes for the old ones
    result = admin.run_gc_once("db", store, GcOptions())
    assert sorted(result.leftovers) == sorted(str(f.relative_to(tmp_path)) for f in dead)
    assert not any(f.exists() for f in dead) and fresh.exists()
    assert set(result.leftovers) <= set(result.deleted)
    with Db.open("db", store, OPTS) as db:
        assert db.get(b"k") == b"v" and db.get(b"k2") == b"v2"
