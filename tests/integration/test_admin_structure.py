"""The admin entry points the structure issue added or widened: `admin.run_compactor` (the
CLI's compactor no longer assembles one itself) and the database's own options for the L0
SST that restore and repair write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions, DbOptions
from slatedb_py.errors import DatabaseNotFoundError, InvalidTypeError
from slatedb_py.format import decode_sst
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def fill(store: MemoryStore, l0s: int) -> dict[bytes, bytes]:
    model = {}
    with Db.open("db", store, OPTS) as db:
        for r in range(l0s):
            for i in range(r, 300, 2):
                db.put(b"k%04d" % i, b"r%d" % r, await_durable=False)
                model[b"k%04d" % i] = b"r%d" % r
            db.flush_memtable()
    return model


def test_run_compactor_once_and_full() -> None:
    store = MemoryStore()
    model = fill(store, 5)
    opts = DbOptions(compaction_min_sources=2, compaction_max_sources=2)
    ran = admin.run_compactor("db", store, opts, once=True)
    assert ran >= 2  # 5 L0s in pairs, then runs by size
    _, m = ManifestStore(Store.resolve(store), DbPaths.of("db")).require_latest()
    assert len(m.l0) < 2 and m.compacted and m.compactor_epoch == 1
    assert admin.run_compactor("db", store, opts, once=True, full=True) == 1
    _, m = ManifestStore(Store.resolve(store), DbPaths.of("db")).require_latest()
    assert not m.l0 and len(m.compacted) == 1 and m.compactor_epoch == 2
    with Db.open("db", store, OPTS) as db:
        assert dict(db.scan()) == model


def test_run_compactor_refuses_what_is_not_a_database() -> None:
    with pytest.raises(DatabaseNotFoundError):
        admin.run_compactor("nothing-here", MemoryStore(), once=True)
    with pytest.raises(InvalidTypeError):
        admin.run_compactor("db", MemoryStore(), options="fast", once=True)  # type: ignore[arg-type]


def test_restore_writes_its_l0_with_the_databases_options() -> None:
    store = MemoryStore()
    with Db.open("db", store, OPTS) as db:
        db.put(b"a", b"1")
        db.flush()  # in the WAL only: the checkpoint's tail becomes the restore's L0 SST
        cp = admin.create_checkpoint("db", store, CheckpointOptions(lifetime=timedelta(hours=1)))
        db.put(b"a", b"2")
    opts = DbOptions(compression="zstd", block_size=1024)
    admin.restore_checkpoint("db", store, cp.id, options=opts)
    _, m = ManifestStore(Store.resolve(store), DbPaths.of("db")).require_latest()
    newest = m.l0[0].sst
    data = Store.resolve(store).get(DbPaths.of("db").compacted(newest.id))
    assert data is not None and decode_sst(data).info.compression == "zstd"
    with Db.open("db", store, OPTS) as db:
        assert db.get(b"a") == b"1"
    with pytest.raises(InvalidTypeError):
        admin.restore_checkpoint("db", store, cp.id, options=CheckpointOptions())  # type: ignore[arg-type]
