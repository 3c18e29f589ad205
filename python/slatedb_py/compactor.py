"""Compaction. For now the full compaction behind `Db.compact()` (RocksDB's `compact_range`):
every L0 SST and sorted run merged into one new sorted run.

The merge is native and streams into output SSTs (split at `max_sst_size`) without the GIL.
It keeps the newest version of each key and drops tombstones and expired rows: the output is
the bottom of the tree and no snapshot needs older versions. The manifest update removes only
what was compacted, so L0 SSTs flushed meanwhile stay in front.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slatedb_py.clock import Clock
from slatedb_py.config import DbOptions
from slatedb_py.errors import UnavailableError
from slatedb_py.format import decode_sst, merge_rows
from slatedb_py.ids import new_ulid
from slatedb_py.manifest.model import Manifest, SortedRun, SstHandle, SstView
from slatedb_py.manifest.store import WriterFence
from slatedb_py.paths import DbPaths
from slatedb_py.sst import TableCache
from slatedb_py.store import Store


def _sst_path(m: Manifest, paths: DbPaths, view: SstView) -> str:
    for ext in m.external_dbs:
        if view.sst.id in ext.sst_ids:
            return DbPaths.of(ext.path).compacted(view.sst.id)
    return paths.compacted(view.sst.id)


def full_compaction(
    store: Store,
    paths: DbPaths,
    fence: WriterFence,
    tables: TableCache,
    clock: Clock,
    options: DbOptions,
    snapshot: Manifest,
) -> tuple[int, Manifest] | None:
    """Compacts everything `snapshot` lists; returns the new manifest, or None if empty."""
    views = list(snapshot.l0)
    for run in snapshot.compacted:
        views.extend(run.views)
    if not views or any(v.visible_range is not None for v in views):
        return None
    sources: list[Any] = []
    for v in views:
        key = _sst_path(snapshot, paths, v)
        data = store.get(key)
        if data is None:
            raise UnavailableError(f"SST {key!r} listed in the manifest is missing")
        sources.append(decode_sst(data, name=key))
    merged = merge_rows(sources, now=clock.now_ms())
    outputs: list[SstView] = []
    from slatedb_py.db import info_from_native

    while True:
        data = merged.write_sst(
            options.max_sst_size, options.block_size, options.compression,
            options.bloom_bits_per_key, options.min_filter_keys,
        )
        if data is None:
            break
        ulid = new_ulid(clock.now_ms())
        key = paths.compacted(ulid)
        store.put(key, data)
        table = tables.add_written(key, data)
        outputs.append(SstView(ulid, SstHandle(ulid, info_from_native(table.native.info()), 2)))

    done_l0 = {v.id for v in snapshot.l0}
    done_runs = {r.id for r in snapshot.compacted}
    run_id = max((r.id for r in snapshot.compacted), default=-1) + 1

    def commit(m: Manifest) -> Manifest:
        kept_runs = tuple(r for r in m.compacted if r.id not in done_runs)
        new_id = max([run_id, *(r.id + 1 for r in kept_runs)])
        runs = ((SortedRun(new_id, tuple(outputs)),) if outputs else ()) + kept_runs
        return replace(
            m,
            l0=tuple(v for v in m.l0 if v.id not in done_l0),
            compacted=tuple(sorted(runs, key=lambda r: -r.id)),
            last_compacted_l0_view_id=snapshot.l0[0].id if snapshot.l0 else m.last_compacted_l0_view_id,
        )

    result = fence.update(commit)
    for v in views:
        tables.forget(_sst_path(snapshot, paths, v))
    return result
