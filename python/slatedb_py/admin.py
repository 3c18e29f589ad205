"""Administration of a database by path, with or without an open writer (API.md):
checkpoints, garbage collection, clones, restore (to a checkpoint or a time) and repair.

Every function checks its arguments before it touches the store: database paths through
`DbPaths.of` (InvalidTypeError for a non-str, InvalidArgumentError for '.'/'..' segments or
an empty path), `options` through `config.check_options` (InvalidTypeError unless None or the
right options class).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from slatedb_py import backup, checkpoint, restore, seq_tracker, stats, time_travel
from slatedb_py.backup_copy import Backup, Record, VerifyReport
from slatedb_py.checkpoint import Checkpoint, CheckpointCreateResult
from slatedb_py.clock import Clock, SystemClock
from slatedb_py.clone import clone_at, make_clone
from slatedb_py.compactor import Compactor
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, _flag, check_options
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError
from slatedb_py.garbage_collector import GcResult, collect_garbage
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.repair import RepairResult, skip_corrupt_wal
from slatedb_py.restore import restore_to_checkpoint
from slatedb_py.store import Store

__all__ = [
    "Checkpoint",
    "CheckpointCreateResult",
    "GcResult",
    "create_checkpoint",
    "create_clone",
    "describe",
    "list_checkpoints",
    "restore_checkpoint",
    "restore_to_time",
    "run_compactor",
    "run_gc_once",
    "sequence_for_time",
    "skip_wal_objects",
    "time_for_sequence",
]


def _manifests(path: str, store: Any, what: str = "database path") -> ManifestStore:
    paths = DbPaths.of(path, what)
    return ManifestStore(Store.resolve(store), paths)


def _live(path: str, store: Any, what: str = "database path") -> ManifestStore:
    """`_manifests`, refused (DatabaseDeletingError) while a delete of the database is
    unfinished: rolled back or cloned, its remains would pass for a database."""
    manifests = _manifests(path, store, what)
    manifests.refuse_if_deleting()
    return manifests


def create_checkpoint(
    path: str, store: Any, options: CheckpointOptions | None = None, *, clock: Clock | None = None
) -> CheckpointCreateResult:
    """Pins the database's current durable state (its latest manifest) as a checkpoint.

    Works on a closed database, and alongside a running writer: the checkpoint holds what
    that writer made durable in the manifest (use `Db.create_checkpoint` to flush first).
    """
    options = check_options(options, CheckpointOptions)
    # No look for a `.deleting` marker here (as in SlateDB): a checkpoint is one manifest
    # write that a delete under way removes with the rest, and the look would be a fifth
    # request where the budget is four (tests/integration/test_request_budgets_s3.py).
    return checkpoint.add_checkpoint(_manifests(path, store), options, clock or SystemClock())


def describe(path: str, store: Any) -> dict[str, Any]:
    """What the database holds (`slatedb_py.stats`): its L0 SSTs and sorted runs with their
    sizes, checkpoints, WAL range, sequence tracker range and recorded history retention,
    from the latest manifest and one listing of the WAL. `slatedb-py stats` prints it."""
    return stats.describe(_manifests(path, store))


def list_checkpoints(path: str, store: Any, name: str | None = None) -> list[Checkpoint]:
    """The checkpoints of the latest manifest, optionally only those named `name`."""
    if name is not None and not isinstance(name, str):
        raise InvalidTypeError(
            f"name must be a str or None, not {type(name).__name__} {name!r:.60}"
        )
    return checkpoint.checkpoints_named(_manifests(path, store), name)


def _tracker(path: str, store: Any) -> bytes | None:
    latest = _manifests(path, store).latest()
    # No database at `path`: no points, and 0.17.0's Admin answers None too.
    return None if latest is None else latest[1].sequence_tracker


def sequence_for_time(
    path: str, store: Any, when: datetime, *, round_up: bool = False
) -> int | None:
    """The sequence number the latest manifest's tracker records at `when` (an aware
    datetime, compared in whole seconds), as 0.17.0's `Admin.get_sequence_for_timestamp`:
    between two points, the earlier one's (or with `round_up` the later one's); None before
    the first point (after the last with `round_up`), or with no points at all.

    Points are at most a minute apart per writer, so the answer is approximate: the seq
    written at the recorded second, not necessarily the last one written by `when`."""
    secs = seq_tracker.unix_seconds(when)  # checked before the store is touched
    return seq_tracker.decode(_tracker(path, store)).find_seq(secs, round_up)


def time_for_sequence(
    path: str, store: Any, seq: int, *, round_up: bool = False
) -> datetime | None:
    """When (UTC, whole seconds) the latest manifest's tracker says `seq` was written, as
    0.17.0's `Admin.get_timestamp_for_sequence`: between two points, the earlier one's time
    (or with `round_up` the later one's); None before the first (after the last with
    `round_up`), or with no points at all."""
    seq_tracker.check_seq(seq)
    return seq_tracker.time_for_sequence(_tracker(path, store), seq, round_up)


def run_gc_once(
    path: str,
    store: Any,
    options: GcOptions | None = None,
    *,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> GcResult:
    """One garbage collection: removes expired checkpoints, then deletes the manifests, WAL
    objects and SSTs that no live checkpoint and not the latest manifest need (`progress`
    hears of each deletion)."""
    options = check_options(options, GcOptions)
    # Refused on a half-deleted database: removing an expired checkpoint writes a manifest,
    # which would bring back a database its deleter has already emptied.
    m = _live(path, store)
    m.require_latest()
    return collect_garbage(m.store, m.paths, options, clock or SystemClock(), _progress(progress))


def create_clone(
    clone_path: str,
    parent_path: str,
    store: Any,
    checkpoint_id: uuid.UUID | None = None,
    *,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> None:
    """A writable, zero-copy clone of `parent_path` at `checkpoint_id`, as it was at `as_of`
    (an aware datetime within its retained history, `DbOptions.history_retention`; else
    OutsideRetentionError), or now. `progress` hears of the WAL objects it copies (or, at a
    time, replays)."""
    DbPaths.of(clone_path, "clone_path")
    DbPaths.of(parent_path, "parent_path")
    _live(parent_path, store, "parent_path")
    _live(clone_path, store, "clone_path")
    c = clock or SystemClock()
    if as_of is not None:
        if checkpoint_id is not None:
            raise InvalidArgumentError("a clone takes checkpoint_id or as_of, not both")
        clone_at(Store.resolve(store), clone_path, parent_path, as_of, c, _progress(progress))
        return
    make_clone(
        Store.resolve(store),
        clone_path,
        parent_path,
        checkpoint_id,
        c,
        progress=_progress(progress),
    )


def restore_checkpoint(
    path: str,
    store: Any,
    checkpoint_id: uuid.UUID,
    *,
    options: DbOptions | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> int:
    """Rolls the database itself back to `checkpoint_id`; returns the new manifest id.
    `options`: the database's own, used to write the L0 SST of the checkpoint's WAL tail;
    `progress` hears of the WAL objects replayed into it."""
    options = check_options(options, DbOptions)
    return restore_to_checkpoint(
        _live(path, store),
        checkpoint_id,
        options,
        clock or SystemClock(),
        progress=_progress(progress),
    )


def restore_to_time(
    path: str,
    store: Any,
    when: datetime,
    *,
    options: DbOptions | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> int:
    """Rolls the database itself back to how it was at `when` (an aware datetime within its
    retained history, and within `options.history_retention` when set; else
    OutsideRetentionError); returns the new manifest id. Fences a running writer, as
    `restore_checkpoint` does. `options`: the database's own (the L0 SST of the WAL rows);
    `progress` hears of the WAL objects replayed."""
    options = check_options(options, DbOptions)
    time_travel.when_ms(when)
    return restore.restore_to_time(
        _live(path, store), when, options, clock or SystemClock(), _progress(progress)
    )


def skip_wal_objects(
    path: str,
    store: Any,
    wal_ids: Iterable[int],
    *,
    options: DbOptions | None = None,
    clock: Clock | None = None,
) -> RepairResult:
    """Moves the database past corrupt WAL objects of its replay range (every open fails on
    one), losing only their rows: fences any running writer, replays the other WAL objects into
    an L0 SST (written with `options`) and moves the replay point past them all. See
    `slatedb_py.repair`."""
    options = check_options(options, DbOptions)
    return skip_corrupt_wal(_live(path, store), wal_ids, options, clock or SystemClock())


def run_compactor(
    path: str,
    store: Any,
    options: DbOptions | None = None,
    *,
    once: bool = False,
    full: bool = False,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> int:
    """A standalone compactor on the database at `path`: it fences older compactors, then
    compacts as `options` plan (with `full`, the first round merges everything into one run).
    With `once` it returns when nothing is left to compact; otherwise it runs until the
    process is interrupted or a newer compactor fences it. Returns the compactions it ran."""
    options = check_options(options, DbOptions)
    _flag("once", once)
    _flag("full", full)
    paths = DbPaths.of(path)
    compactor = Compactor(Store.resolve(store), paths, options, clock or SystemClock())
    compactor.progress = _progress(progress)  # each compaction's outputs, as they commit
    compactor.manifests.refuse_if_deleting()
    compactor.manifests.require_latest()
    if full:
        compactor.run_once(full=True)
    if once:
        while compactor.run_once():
            pass
    else:
        compactor.run_forever()
    return compactor.compactions


# Backups (slatedb_py.backup; docs/architecture.md, "Backups") ---------------------------------


def _location(path: str, store: Any, what: str) -> tuple[Store, DbPaths]:
    return Store.resolve(store), DbPaths.of(path, what)


def create_backup(
    path: str,
    store: Any,
    backup_path: str,
    backup_store: Any,
    *,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> Backup:
    """Copies the database's current durable state into the backup location (itself a
    database), copying only the SSTs and WAL objects it does not hold yet. `progress`
    (`slatedb_py.progress.Progress`) hears of the objects and bytes as they go. Holds the
    location's lease: `BackupInProgressError` while another create, delete or purge runs."""
    src, src_paths = _location(path, store, "database path")
    dst, dst_paths = _location(backup_path, backup_store, "backup path")
    ManifestStore(src, src_paths).refuse_if_deleting()  # what is left of it is partial
    return backup.create_backup(
        src, src_paths, dst, dst_paths, clock or SystemClock(), _progress(progress)
    )


def _progress(progress: Progress | None) -> Progress:
    if progress is None:
        return SILENT
    if not isinstance(progress, Progress):
        raise InvalidTypeError(
            f"progress must be a slatedb_py.progress.Progress, not {type(progress).__name__}"
        )
    return progress


def list_backups(backup_path: str, backup_store: Any) -> list[Backup]:
    """The completed backups in the backup location, oldest first."""
    dst, dst_paths = _location(backup_path, backup_store, "backup path")
    return [r.backup for r in backup.read_records(dst, dst_paths)]


def verify_backup(
    backup_path: str,
    backup_store: Any,
    backup_id: uuid.UUID,
    *,
    progress: Progress | None = None,
) -> VerifyReport:
    """Re-reads every object of the backup and compares its size and SHA-256 with the record;
    the report names every missing or damaged object (`report.ok` when there are none)."""
    dst, dst_paths = _location(backup_path, backup_store, "backup path")
    return backup.verify_backup(dst, dst_paths, backup_id, _progress(progress))


def restore_backup(
    backup_path: str,
    backup_store: Any,
    backup_id: uuid.UUID,
    path: str,
    store: Any,
    *,
    options: DbOptions | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> int:
    """Restores a backup into `path`: a path with no database gets a copy; a database is
    restored in place (its running writer fenced). Refuses (DataError naming the object) a
    backup whose objects do not match their record. Returns the new manifest id there."""
    options = check_options(options, DbOptions)
    src, src_paths = _location(backup_path, backup_store, "backup path")
    dst, dst_paths = _location(path, store, "database path")
    return backup.restore_backup(
        src, src_paths, backup_id, dst, dst_paths, options, clock or SystemClock(),
        _progress(progress),
    )  # fmt: skip


def delete_backup(
    backup_path: str, backup_store: Any, backup_id: uuid.UUID, *, clock: Clock | None = None
) -> None:
    """Removes one backup and the objects no other backup needs (under the location's lease:
    `BackupInProgressError` while another create, delete or purge runs there)."""
    dst, dst_paths = _location(backup_path, backup_store, "backup path")
    backup.find_record(dst, dst_paths, backup_id)  # BackupNotFoundError before the lease

    def pick(records: list[Record]) -> list[Record]:
        gone = [r for r in records if r.backup.id == backup_id]
        # Deleted by someone else since the check: find_record raises BackupNotFoundError.
        return gone or [backup.find_record(dst, dst_paths, backup_id)]

    backup.forget_backups(dst, dst_paths, pick, clock or SystemClock(), "delete_backup")


def purge_backups(
    backup_path: str, backup_store: Any, *, keep_last: int = 7, clock: Clock | None = None
) -> list[Backup]:
    """Removes all but the newest `keep_last` backups, and the objects only they needed;
    returns the removed backups (under the location's lease, as `delete_backup`)."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int):
        raise InvalidTypeError(f"keep_last must be an int, not {type(keep_last).__name__}")
    if keep_last < 0:
        raise InvalidArgumentError(f"keep_last must be at least 0, not {keep_last}")
    dst, dst_paths = _location(backup_path, backup_store, "backup path")

    def pick(records: list[Record]) -> list[Record]:
        return records[: max(0, len(records) - keep_last)]

    gone = backup.forget_backups(dst, dst_paths, pick, clock or SystemClock(), "delete_backup")
    return [r.backup for r in gone]


__all__ += [
    "Backup",
    "VerifyReport",
    "create_backup",
    "delete_backup",
    "list_backups",
    "purge_backups",
    "restore_backup",
    "verify_backup",
]
