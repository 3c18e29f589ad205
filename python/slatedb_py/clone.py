"""Zero-copy clones (FORMAT.md 5.2): a new database path whose manifest reads the parent's
SSTs in place (`external_dbs`) and owns copies of the parent's unflushed WAL objects.

1. Source: the given checkpoint on the parent, or a new short-lived one.
2. Clone manifest version 1, `initialized=False`: the parent's tree and WAL markers at that
   checkpoint, no checkpoints, and `external_dbs` = the parent's own external databases plus
   the parent, each with a fresh `final_checkpoint_id`.
3. On every external database, that final checkpoint (never expiring, pinning the same
   manifest as the source) keeps the shared SSTs safe from the parent's collector.
4. WAL objects the source manifest replays are copied under the clone (same ids).
5. Version 2 sets `initialized=True`. Re-running on a half-made clone finishes it.
A clone at a time (`clone_at`) is one at a short-lived checkpoint on the version a read at
that time chooses; step 4 is replaced by an L0 SST of the WAL rows written by then.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from slatedb_py import time_travel
from slatedb_py.checkpoint import add_checkpoint, resolve
from slatedb_py.clock import Clock
from slatedb_py.config import CheckpointOptions, DbOptions
from slatedb_py.errors import CheckpointNotFoundError, InvalidArgumentError, InvalidTypeError
from slatedb_py.ids import new_uuid
from slatedb_py.manifest.model import CheckpointEntry, ExternalDb, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.memtable import new_memtable
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.sst import write_l0_sst
from slatedb_py.store import Store

EPHEMERAL = timedelta(minutes=5)


def _ensure_final_checkpoint(store: Store, ext: ExternalDb, now_s: int) -> None:
    manifests = ManifestStore(store, DbPaths.stored(ext.path))

    def add(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
        if ext.final_checkpoint_id is None or m.checkpoint(ext.final_checkpoint_id) is not None:
            return None, None
        source = m.checkpoint(ext.source_checkpoint_id)
        if source is None:
            raise CheckpointNotFoundError(
                f"checkpoint {ext.source_checkpoint_id} is gone from {ext.path!r}; "
                "the clone cannot pin it",
                checkpoint_id=ext.source_checkpoint_id,
            )
        entry = CheckpointEntry(ext.final_checkpoint_id, source.manifest_id, 0, now_s)
        return replace(m, checkpoints=(*m.checkpoints, entry)), None

    manifests.update(add)


def clone_at(
    store: Store,
    clone_path: str,
    parent_path: str,
    when: datetime,
    clock: Clock,
    progress: Progress = SILENT,
) -> None:
    """A clone of the parent as it was at `when` (`slatedb_py.time_travel`): of the version a
    read at `when` chooses, pinned by a short-lived checkpoint, with the WAL rows up to `when`
    written into an L0 SST of the clone's own (no WAL object is copied)."""
    time_travel.when_ms(when)  # checked before the store is touched
    if DbPaths.of(parent_path).root == DbPaths.of(clone_path).root:
        raise InvalidArgumentError(f"a clone needs its own path, not the parent's {parent_path!r}")
    parent = ManifestStore(store, DbPaths.of(parent_path))
    tail = new_memtable()
    _, pin, cut = time_travel.open_at(
        parent, when, clock, tail, lifetime=time_travel.PIN_LIFETIME, progress=progress
    )
    assert pin is not None
    make_clone(store, clone_path, parent_path, pin.id, clock, tail=(tail, cut))


def _with_tail(
    store: Store, paths: DbPaths, draft: Manifest, tail: tuple[Any, int], clock: Clock
) -> Manifest:
    """`draft` with the rows of `tail` as a new L0 SST under `paths`, and a WAL replay point
    past every WAL id the source knew (none is copied)."""
    memtable, cut = tail
    view = write_l0_sst(store, paths, memtable, DbOptions(), clock)
    frontier = max(draft.replay_after_wal_id, draft.wal_id_last_seen)
    tick = memtable.max_create_ts
    return replace(
        draft,
        l0=draft.l0 if view is None else (view, *draft.l0),
        last_l0_seq=max(draft.last_l0_seq, cut),
        last_l0_clock_tick=max(draft.last_l0_clock_tick, tick or draft.last_l0_clock_tick),
        replay_after_wal_id=frontier,
        wal_id_last_seen=frontier,
    )


def make_clone(
    store: Store,
    clone_path: str,
    parent_path: str,
    checkpoint_id: uuid.UUID | None,
    clock: Clock,
    *,
    tail: tuple[Any, int] | None = None,
    progress: Progress = SILENT,
) -> None:
    """`tail`: a memtable of WAL rows (and the last seq in it) to write as an L0 SST of the
    clone in place of copying the WAL objects (a clone at a time)."""
    if checkpoint_id is not None and not isinstance(checkpoint_id, uuid.UUID):
        raise InvalidTypeError(
            f"checkpoint_id must be a uuid.UUID, not {type(checkpoint_id).__name__}"
        )
    parent_paths, clone_paths = DbPaths.of(parent_path), DbPaths.of(clone_path)
    if parent_paths.root == clone_paths.root:
        raise InvalidArgumentError(f"a clone needs its own path, not the parent's {parent_path!r}")
    parent = ManifestStore(store, parent_paths)
    clone = ManifestStore(store, clone_paths)
    now_s = clock.now_ms() // 1000

    existing = clone.latest()
    if existing is not None and existing[1].initialized:
        ext = next((e for e in existing[1].external_dbs if e.path == parent_paths.root), None)
        if ext is None:
            raise InvalidArgumentError(
                f"{clone_path!r} already holds a database that is not a clone of {parent_path!r}"
            )
        return  # already made: idempotent

    if existing is None:
        if checkpoint_id is None:
            checkpoint_id = add_checkpoint(parent, CheckpointOptions(lifetime=EPHEMERAL), clock).id
        _, source = resolve(parent, checkpoint_id, now_s)
        inherited = tuple(
            replace(
                e,
                source_checkpoint_id=e.final_checkpoint_id or e.source_checkpoint_id,
                final_checkpoint_id=new_uuid(),
            )
            for e in source.external_dbs
        )
        external_ssts = {s for e in source.external_dbs for s in e.sst_ids}
        own = tuple(sorted(i for i in source.sst_ids() if i not in external_ssts))
        draft = replace(
            source,
            initialized=False,
            checkpoints=(),
            external_dbs=(
                *inherited,
                ExternalDb(parent_paths.root, checkpoint_id, new_uuid(), own),
            ),
        )
        if tail is not None:
            draft = _with_tail(store, clone_paths, draft, tail, clock)
        if not clone.create_first(draft):
            raise InvalidArgumentError(f"{clone_path!r} is being created by someone else")
        existing = (1, draft)

    _, draft = existing
    for ext in draft.external_dbs:
        _ensure_final_checkpoint(store, ext, now_s)
    progress.total(max(0, draft.wal_id_last_seen - draft.replay_after_wal_id), 0)
    for wal_id in range(draft.replay_after_wal_id + 1, draft.wal_id_last_seen + 1):
        data = store.get(parent_paths.wal(wal_id))
        if data is not None:
            store.put_if_absent(clone_paths.wal(wal_id), data)
        progress.advance(1, 0 if data is None else len(data))
    clone.update(lambda _mid, m: (None if m.initialized else replace(m, initialized=True), None))
