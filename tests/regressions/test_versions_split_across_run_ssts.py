"""Found while adding snapshots (issue 12): a compaction cut its outputs at `max_sst_size`
wherever the size was reached, also between two versions of one key. With only the newest
version kept that never happened; with versions kept for an open snapshot (or iterator) it
did, and a point read, which bisects a sorted run on its SSTs' key ranges and looks in one
SST, found the older version in the next SST: a deleted key read as present. Outputs are now
cut only between keys."""

from __future__ import annotations

from obstore.store import MemoryStore

from slatedb_py import Db
from slatedb_py.config import DbOptions

OPTS = DbOptions(
    flush_interval=None,
    compactor_enabled=False,
    gc_enabled=False,
    block_size=256,
    max_sst_size=2048,
    min_filter_keys=4,
)


def test_point_reads_after_compacting_many_versions_into_small_ssts() -> None:
    with Db.open("db", MemoryStore(), OPTS) as db:
        model: dict[bytes, bytes] = {}
        for i in range(0, 1500, 2):
            db.put(b"k%05d" % i, b"v0", await_durable=False)
            model[b"k%05d" % i] = b"v0"
        with db.snapshot() as snap:
            for r in range(4):
                for i in range(r, 1500, 7):
                    k = b"k%05d" % i
                    if i % 4 == 0:
                        db.delete(k, await_durable=False)
                        model.pop(k, None)
                    else:
                        db.put(k, b"v%d" % (r + 1) + b"x" * (i % 50), await_durable=False)
                        model[k] = b"v%d" % (r + 1) + b"x" * (i % 50)
                db.flush_memtable()
            db.compact()
            _, m = db.manifest()
            [run] = m.compacted
            assert len(run.views) > 5  # small outputs, many versions per key in them
            for a, b in zip(run.views, run.views[1:]):
                assert a.sst.info.last_entry < b.sst.info.first_entry
            keys = sorted({b"k%05d" % i for i in range(1500)})
            assert [db.get(k) for k in keys] == [model.get(k) for k in keys]
            assert db.get_many(keys) == [model.get(k) for k in keys]
            assert snap.get_many(keys) == [b"v0" if int(k[1:]) % 2 == 0 else None for k in keys]
