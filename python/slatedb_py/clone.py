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
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from slatedb_py.checkpoint import add_checkpoint, resolve
from slatedb_py.clock import Clock
from slatedb_py.config import CheckpointOptions
from slatedb_py.errors import CheckpointNotFoundError, InvalidArgumentError, InvalidTypeError
from slatedb_py.ids import new_uuid
from slatedb_py.manifest.model import CheckpointEntry, ExternalDb, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
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


def make_clone(
    store: Store, clone_path: str, parent_path: str, checkpoint_id: uuid.UUID | None, clock: Clock
) -> None:
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
        if not clone.create_first(draft):
            raise InvalidArgumentError(f"{clone_path!r} is being created by someone else")
        existing = (1, draft)

    _, draft = existing
    for ext in draft.external_dbs:
        _ensure_final_checkpoint(store, ext, now_s)
    for wal_id in range(draft.replay_after_wal_id + 1, draft.wal_id_last_seen + 1):
        data = store.get(parent_paths.wal(wal_id))
        if data is not None:
            store.put_if_absent(clone_paths.wal(wal_id), data)
    clone.update(lambda _mid, m: (None if m.initialized else replace(m, initialized=True), None))
