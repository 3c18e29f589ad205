"""After a full compaction and a collection with zero minimum ages, a database holds about
one copy of its data: the SSTs the latest manifest names, the WAL from its replay point on,
and a little metadata. Nothing the tree no longer needs survives: no L0 SST or sorted-run SST
compacted away, no WAL object below the replay point, no manifest or compactor state but the
latest (and the few written less than the collector's floor before the newest object).

The collector keeps manifests, compactor states and WAL fences younger than
`safety.COLLECTOR_FLOOR` (measured against the newest object in the database, on the store's
clock) whatever its options, so the test ages every object by an hour
(`tests.support.pass_time`), then reopens the database: the writer's fence and manifest update
are the store's new "now", and everything written before is past the floor.
"""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from obstore.store import LocalStore

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions
from slatedb_py.paths import DbPaths
from slatedb_py.safety import COLLECTOR_FLOOR
from tests.support import pass_time

ZERO = timedelta(0)
# Every minimum age zero; WAL fences (0 bytes) stay unless `delete_wal_fences`.
GC_ZERO = GcOptions(
    min_age=ZERO,
    manifest_min_age=ZERO,
    wal_min_age=ZERO,
    wal_fence_min_age=ZERO,
    compacted_min_age=ZERO,
)
GC_ZERO_FENCES = dataclasses.replace(GC_ZERO, delete_wal_fences=True)
OPTS = DbOptions(
    flush_interval=None,
    l0_sst_size_bytes=512 * 1024,
    max_sst_size=1024 * 1024,  # the sorted run is several SSTs
    compactor_enabled=False,
    gc_enabled=False,
)
KEYS = 6000
HOUR_MS = 3_600_000
PATHS = DbPaths.of("db")


def files(root: Path) -> dict[str, int]:
    """Object key (relative to the store root) -> size, of every file under `root/db`."""
    return {
        str(f.relative_to(root)): f.stat().st_size for f in (root / "db").rglob("*") if f.is_file()
    }


def kind(key: str) -> str:
    return key.split("/")[1]


def by_kind(fs: dict[str, int]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for k, size in fs.items():
        n, b = out.get(kind(k), (0, 0))
        out[kind(k)] = (n + 1, b + size)
    return out


def load(db: Db, rng: random.Random) -> dict[bytes, bytes]:
    """Five rounds of overwrites (each an L0 SST or two), durable puts (one WAL object each),
    deletes, and a full compaction after the third round: the tree holds several copies of
    most keys until it is compacted again."""
    model: dict[bytes, bytes] = {}
    for rnd in range(5):
        batch = WriteBatch()
        for i in rng.sample(range(KEYS), KEYS // 2):
            k = b"key%06d" % i
            model[k] = rng.randbytes(rng.randrange(100, 300))
            batch.put(k, model[k])
        db.write(batch, await_durable=False)
        for i in range(20):  # each its own WAL object
            k = b"durable%02d-%02d" % (rnd, i)
            model[k] = b"d" * 50
            db.put(k, model[k])
        for i in rng.sample(range(KEYS), 100):
            k = b"key%06d" % i
            model.pop(k, None)
            db.delete(k, await_durable=False)
        db.flush_memtable()
        if rnd == 2:
            time.sleep(0.005)  # SST ids are ULIDs: keep the compaction's id past the last L0's
            db.compact()
    return model


def check(db: Any, model: dict[bytes, bytes], where: str) -> None:
    assert dict(db.scan()) == model, f"{where}: scan"
    keys = sorted(model)[::97]
    assert db.get_many(keys) == [model[k] for k in keys], f"{where}: get_many"
    assert db.get(b"key%06d" % KEYS) is None


def test_gc_after_compaction_leaves_one_copy(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    rng = random.Random(11)
    with Db.open("db", store, OPTS) as db:
        model = load(db, rng)
        time.sleep(0.005)
        db.compact()
        check(db, model, "after the compaction")
    before = files(tmp_path)

    # An hour passes on the store's clock; the reopen writes a fence and a manifest version,
    # which the collector takes as the store's "now".
    pass_time(tmp_path, HOUR_MS)
    with Db.open("db", store, OPTS) as db:
        check(db, model, "reopened before the collection")
        _, m = db.manifest()
    fresh = {k for k in files(tmp_path) if k not in before}
    assert fresh, "the reopen wrote a fence and a manifest version"

    result = admin.run_gc_once("db", store, GC_ZERO)
    after = files(tmp_path)

    # What the latest manifest needs.
    assert not m.l0 and len(m.compacted) == 1 and len(m.compacted[0].views) > 1, (
        len(m.l0),
        [len(r.views) for r in m.compacted],
    )
    live_ssts = {PATHS.compacted(i) for i in m.sst_ids()}
    assert all(p in after for p in live_ssts), "every live SST is kept"
    live_bytes = sum(after[p] for p in live_ssts)

    compacted_left = {k for k in after if kind(k) == "compacted"}
    assert compacted_left == live_ssts, (
        f"SSTs compacted away remain: {sorted(compacted_left - live_ssts)}"
    )

    replay = m.replay_after_wal_id
    wal_left = {k: s for k, s in after.items() if kind(k) == "wal"}
    below = {k: s for k, s in wal_left.items() if DbPaths.wal_id_of(k) < replay}  # type: ignore[operator]
    # Without `delete_wal_fences` the writers' 0-byte fences stay (as in SlateDB); nothing else.
    assert all(s == 0 for s in below.values()), (
        f"WAL objects with rows below the replay point {replay}: {below}"
    )

    manifests_left = sorted(k for k in after if kind(k) == "manifest")
    latest = PATHS.manifest(max(DbPaths.manifest_id_of(k) for k in manifests_left))  # type: ignore[type-var]
    assert all(k == latest or k in fresh for k in manifests_left), (
        f"only the latest manifest and those within {COLLECTOR_FLOOR} of the newest object:"
        f" {manifests_left}"
    )
    states_left = [k for k in after if kind(k) == "compactions"]
    assert len(states_left) == 1, f"only the latest compactor state: {states_left}"
    unexpected = {
        k for k in after if kind(k) not in ("compacted", "wal", "manifest", "compactions")
    }
    assert not unexpected, unexpected

    metadata = sum(s for k, s in after.items() if kind(k) != "compacted")
    total = sum(after.values())
    assert metadata <= 64 * 1024, by_kind(after)
    assert total <= 1.3 * live_bytes + metadata, (
        f"{total} bytes left for {live_bytes} bytes of live SSTs: {by_kind(after)}"
    )

    # With fence deletion on, not even the fences below the replay point stay.
    result_fences = admin.run_gc_once("db", store, GC_ZERO_FENCES)
    final = files(tmp_path)
    wal_final = [k for k in final if kind(k) == "wal"]
    assert all(DbPaths.wal_id_of(k) >= replay for k in wal_final), wal_final  # type: ignore[operator]
    assert {k for k in final if kind(k) == "compacted"} == live_ssts

    print(
        f"\nbefore the collection: {sum(before.values())} bytes {by_kind(before)}"
        f"\nafter: {total} bytes {by_kind(after)}; live SSTs {live_bytes} bytes"
        f" (ratio {total / live_bytes:.3f}); deleted {len(result.deleted)} objects, then "
        f"{len(result_fences.wal_fences)} fences; left: {by_kind(final)}"
    )

    # Everything still reads back, on a fresh writer and a fresh reader.
    with Db.open("db", store, OPTS) as db:
        check(db, model, "reopened after the collection")
    with DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=None)) as reader:
        check(reader, model, "reader after the collection")
    with Db.open("db", store, OPTS) as db:
        check(db, model, "reopened twice after the collection")
