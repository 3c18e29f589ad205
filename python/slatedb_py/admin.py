"""Administration of a database by path, with or without an open writer (API.md):
checkpoints, garbage collection, clones and restore."""

from __future__ import annotations

import uuid
from typing import Any

from slatedb_py.checkpoint import (
    Checkpoint,
    CheckpointCreateResult,
)
from slatedb_py.checkpoint import create_checkpoint as _create
from slatedb_py.checkpoint import list_checkpoints as _list
from slatedb_py.clock import Clock, SystemClock
from slatedb_py.config import CheckpointOptions, GcOptions
from slatedb_py.errors import InvalidTypeError
from slatedb_py.garbage_collector import GcResult
from slatedb_py.garbage_collector import run_gc_once as _gc
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

__all__ = [
    "Checkpoint",
    "CheckpointCreateResult",
    "GcResult",
    "create_checkpoint",
    "create_clone",
    "list_checkpoints",
    "restore_checkpoint",
    "run_gc_once",
]


def _manifests(path: str, store: Any) -> ManifestStore:
    if not isinstance(path, str):
        raise InvalidTypeError(f"path must be a str, not {type(path).__name__}")
    return ManifestStore(Store.resolve(store), DbPaths.of(path))


def create_checkpoint(
    path: str, store: Any, options: CheckpointOptions | None = None, *, clock: Clock | None = None
) -> CheckpointCreateResult:
    """Pins the database's current durable state (its latest manifest) as a checkpoint.

    Works on a closed database, and alongside a running writer: the checkpoint holds what
    that writer made durable in the manifest (use `Db.create_checkpoint` to flush first).
    """
    return _create(_manifests(path, store), options or CheckpointOptions(), clock or SystemClock())


def list_checkpoints(path: str, store: Any, name: str | None = None) -> list[Checkpoint]:
    """The checkpoints of the latest manifest, optionally only those named `name`."""
    return _list(_manifests(path, store), name)


def run_gc_once(
    path: str, store: Any, options: GcOptions | None = None, *, clock: Clock | None = None
) -> GcResult:
    """One garbage collection: removes expired checkpoints, then deletes the manifests, WAL
    objects and SSTs that no live checkpoint and not the latest manifest need."""
    m = _manifests(path, store)
    m.require_latest()
    return _gc(m.store, m.paths, options or GcOptions(), clock or SystemClock())


def create_clone(
    clone_path: str,
    parent_path: str,
    store: Any,
    checkpoint_id: uuid.UUID | None = None,
    *,
    clock: Clock | None = None,
) -> None:
    """A writable, zero-copy clone of `parent_path` at `checkpoint_id` (or now)."""
    from slatedb_py.clone import create_clone as _clone

    _clone(Store.resolve(store), clone_path, parent_path, checkpoint_id, clock or SystemClock())


def restore_checkpoint(
    path: str, store: Any, checkpoint_id: uuid.UUID, *, clock: Clock | None = None
) -> int:
    """Rolls the database itself back to `checkpoint_id`; returns the new manifest id."""
    from slatedb_py.restore import restore_checkpoint as _restore

    return _restore(_manifests(path, store), checkpoint_id, clock or SystemClock())
