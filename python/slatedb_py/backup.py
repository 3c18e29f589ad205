"""Independent backups (docs/architecture.md, "Backups"): the backup location is itself a
SlateDB database whose manifest versions are the backed-up states and whose checkpoints are
the backups (a backup's id is its checkpoint's id), so readers, the collector and 0.17.0 can
open it like any database.

Create:
1. A short-lived checkpoint on the source pins the state to copy (the collector keeps it).
2. Every SST the pinned manifest names (a clone's parents' too) and every WAL object of its
   replay range is copied under the backup location with the same name, unless the backup
   already holds it (same name and size: SSTs and WAL objects are immutable), streamed in
   chunks a few objects at a time and hashed (SHA-256) as read.
3. A backup manifest version: the pinned tree with every SST local (no external databases)
   and, besides the earlier backups' checkpoints, a new one pinning this very version.
4. The record `backups/<id>.json` (objects, sizes, checksums), last, with put-if-absent.
   Without a record there is no backup: an interrupted one leaves only copies, which the
   next backup reuses (hashing them as they are). 5. The source checkpoint is removed.

Restore refuses a backup whose objects do not match its record. Into a path with no manifest
it copies the objects and writes the backup's manifest as version 1; in place it copies the
SSTs, fences the running writer and swaps the tree as `restore.restore_to_checkpoint` does,
the backup's WAL range replayed into an L0 SST. Delete and purge remove records, checkpoints
and the objects no kept backup needs. Create, delete and purge hold the location's lease
(`backup_lease`): they run one at a time; readers, verify and restore take none.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from slatedb_py.backup_copy import (
    Backup,
    ObjectEntry,
    ObjectProblem,
    Record,
    VerifyReport,
    check_object,
    copy_object,
    hash_object,
    in_parallel,
    sizes_under,
)
from slatedb_py.backup_lease import BackupLease
from slatedb_py.checkpoint import add_checkpoint, remove_checkpoint, resolve
from slatedb_py.clock import Clock
from slatedb_py.config import CheckpointOptions, DbOptions
from slatedb_py.errors import (
    BackupInProgressError,
    BackupNotFoundError,
    DataError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingObjectError,
)
from slatedb_py.ids import new_uuid
from slatedb_py.manifest.model import CheckpointEntry, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.memtable import new_memtable
from slatedb_py.merge import engine_operator
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.restore import fence_out_writers, with_tree, written_seq
from slatedb_py.sst import write_l0_sst
from slatedb_py.store import Store
from slatedb_py.wal import replay_into

PIN = timedelta(hours=6)  # the source checkpoint's lifetime, should the process die mid-copy


def _records_dir(paths: DbPaths) -> str:
    return f"{paths.root}/backups/"


def _record_key(paths: DbPaths, backup_id: uuid.UUID) -> str:
    return f"{_records_dir(paths)}{backup_id}.json"


def _abs(paths: DbPaths, rel: str) -> str:
    return f"{paths.root}/{rel}"


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] + "/"


def read_records(store: Store, paths: DbPaths) -> list[Record]:
    """Every completed backup's record, oldest first."""
    out = []
    for meta in store.list(_records_dir(paths)):
        if meta.path.endswith(".json"):
            data = store.get(meta.path)
            if data is not None:
                out.append(Record.decode(data, meta.path))
    return sorted(out, key=lambda r: r.backup.manifest_id)


def find_record(store: Store, paths: DbPaths, backup_id: uuid.UUID) -> Record:
    if not isinstance(backup_id, uuid.UUID):
        raise InvalidTypeError(f"backup id must be a uuid.UUID, not {type(backup_id).__name__}")
    key = _record_key(paths, backup_id)
    data = store.get(key)
    if data is None:
        raise BackupNotFoundError(
            f"no backup {backup_id} in the backup location {paths.root!r}", backup_id=backup_id
        )
    return Record.decode(data, key)


def _wal_ids(m: Manifest) -> range:
    return range(m.replay_after_wal_id + 1, m.wal_id_last_seen + 1)


def _max_seq(store: Store, paths: DbPaths, m: Manifest) -> tuple[Any, int]:
    """The WAL range of `m` replayed (from `store`/`paths`): the memtable and highest seq."""
    memtable = new_memtable()
    seq = replay_into(
        memtable, store, paths, m.replay_after_wal_id + 1, m.wal_id_last_seen, m.last_l0_seq
    )
    return memtable, max(seq, m.last_l0_seq)


def create_backup(
    src: Store,
    src_paths: DbPaths,
    dst: Store,
    dst_paths: DbPaths,
    clock: Clock,
    progress: Progress = SILENT,
) -> Backup:
    if src is dst and src_paths.root == dst_paths.root:
        raise InvalidArgumentError(f"a backup needs its own location, not {src_paths.root!r}")
    with BackupLease(dst, dst_paths, "create_backup", clock) as lease:
        return _create(src, src_paths, dst, dst_paths, clock, lease, progress)


def _create(
    src: Store,
    src_paths: DbPaths,
    dst: Store,
    dst_paths: DbPaths,
    clock: Clock,
    lease: BackupLease,
    progress: Progress,
) -> Backup:
    sources = ManifestStore(src, src_paths, clock)
    backups = ManifestStore(dst, dst_paths, clock)
    known = {rel: e for r in read_records(dst, dst_paths) for rel, e in r.objects.items()}
    pin = add_checkpoint(sources, CheckpointOptions(lifetime=PIN, name="backup-source"), clock)
    try:
        _, m = resolve(sources, pin.id, clock.now_ms() // 1000)
        plan = [(f"compacted/{sid}.sst", src_paths.sst_in(m, sid)) for sid in sorted(m.sst_ids())]
        plan += [(f"wal/{wid:020d}.sst", src_paths.wal(wid)) for wid in _wal_ids(m)]
        src_sizes = sizes_under(src, {_folder(p) for _, p in plan})
        dst_sizes = sizes_under(dst, {dst_paths.compacted_dir, dst_paths.wal_dir})
        progress.total(len(plan), sum(src_sizes.get(p, 0) for _, p in plan))

        def one(item: tuple[str, str]) -> tuple[str, ObjectEntry, int]:
            entry, copied = _copy_one(item)
            progress.advance(objects=1)
            return item[0], entry, copied

        def _copy_one(item: tuple[str, str]) -> tuple[ObjectEntry, int]:
            rel, path = item
            lease.touch()
            size = src_sizes.get(path)
            if size is None:
                raise MissingObjectError(f"object {path!r} is missing from the source", object=path)
            target = _abs(dst_paths, rel)
            if dst_sizes.get(target) == size:  # copied before (immutable: same name, same bytes)
                entry = known.get(rel)
                if entry is not None and entry.size == size:
                    progress.advance(nbytes=size)
                    return entry, 0
                return ObjectEntry(size, hash_object(dst, target, size, progress)), 0
            return ObjectEntry(size, copy_object(src, path, dst, target, size, progress)), size

        copied = in_parallel(one, plan)
        bid = new_uuid()
        now_s = clock.now_ms() // 1000

        def add(mid: int, cur: Manifest) -> tuple[Manifest | None, int]:
            mine = cur.checkpoint(bid)
            if mine is not None:  # landed already (re-applied after an unknown outcome)
                return None, mine.manifest_id
            entry = CheckpointEntry(bid, mid + 1, 0, now_s, name="backup")
            new = replace(
                m, initialized=True, external_dbs=(), checkpoints=(*cur.checkpoints, entry)
            )
            return new, mid + 1

        lease.check()  # what was found here to reuse is still here: nobody purged meanwhile
        _, _, pinned = backups.update(add, initial=Manifest())
        manifest_key = dst_paths.manifest(pinned)
        data = dst.get(manifest_key)
        if data is None:
            raise MissingObjectError(
                f"backup manifest {manifest_key!r} vanished", object=manifest_key
            )
        _, seq = _max_seq(dst, dst_paths, m)
        objects = {rel: e for rel, e, _ in copied}
        objects[f"manifest/{pinned:020d}.manifest"] = ObjectEntry(
            len(data), hashlib.sha256(data).hexdigest()
        )
        backup = Backup(
            id=bid,
            create_time=datetime.fromtimestamp(now_s, UTC),
            seq=seq,
            manifest_id=pinned,
            objects=len(objects),
            bytes=sum(e.size for e in objects.values()),
            new_bytes=sum(n for _, _, n in copied) + len(data),
        )
        record = Record(backup, src_paths.root, pin.manifest_id, objects)
        lease.check()
        key = _record_key(dst_paths, bid)
        if not dst.put_if_absent(key, record.encode()):
            raise InvalidArgumentError(f"backup record {bid} exists already")  # a fresh uuid
        try:
            # The lease may have expired during the record's write and a purge begun that
            # did not see the record: then the record goes again, claiming nothing.
            lease.check()
        except BackupInProgressError:
            dst.delete(key)
            raise
        return backup
    finally:
        remove_checkpoint(sources, pin.id)


def verify_backup(
    store: Store, paths: DbPaths, backup_id: uuid.UUID, progress: Progress = SILENT
) -> VerifyReport:
    rec = find_record(store, paths, backup_id)
    sizes = sizes_under(store, {_folder(_abs(paths, rel)) for rel in rec.objects})
    progress.total(rec.backup.objects, rec.backup.bytes)

    def one(kv: tuple[str, ObjectEntry]) -> ObjectProblem | None:
        problem = check_object(store, _abs(paths, kv[0]), kv[0], kv[1], sizes, progress)
        progress.advance(objects=1)
        return problem

    found = in_parallel(one, sorted(rec.objects.items()))
    problems = tuple(p for p in found if p is not None)
    return VerifyReport(backup_id, rec.backup.objects, rec.backup.bytes, problems)


def _refuse(backup_id: uuid.UUID, problems: list[ObjectProblem]) -> DataError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return DataError(
        f"backup {backup_id} does not verify: {first.path}: {first.problem}: {first.detail}"
        f"{more}; nothing was restored",
        object=first.path,
    )


def restore_backup(
    store: Store,
    paths: DbPaths,
    backup_id: uuid.UUID,
    dst: Store,
    dst_paths: DbPaths,
    options: DbOptions,
    clock: Clock,
    progress: Progress = SILENT,
) -> int:
    """Restores (module docstring); returns the destination's new manifest id."""
    rec = find_record(store, paths, backup_id)
    progress.total(rec.backup.objects, rec.backup.bytes)
    targets = ManifestStore(dst, dst_paths, clock)
    in_place = targets.latest() is not None
    sizes = sizes_under(store, {_folder(_abs(paths, rel)) for rel in rec.objects})
    have = sizes_under(dst, {dst_paths.compacted_dir, dst_paths.wal_dir})

    def one(kv: tuple[str, ObjectEntry]) -> ObjectProblem | None:
        problem = restore_one(kv)
        progress.advance(objects=1)
        return problem

    def restore_one(kv: tuple[str, ObjectEntry]) -> ObjectProblem | None:
        rel, want = kv
        path, target = _abs(paths, rel), _abs(dst_paths, rel)
        copy = rel.startswith("compacted/") or (rel.startswith("wal/") and not in_place)
        if not copy or have.get(target) == want.size or sizes.get(path) != want.size:
            return check_object(store, path, rel, want, sizes, progress)
        got = copy_object(store, path, dst, target, want.size, progress)
        if got == want.sha256:
            return None
        dst.delete(target)  # never leave a bad copy under a name a later restore would trust
        return ObjectProblem(rel, "checksum", f"{path!r} has SHA-256 {got}, recorded {want.sha256}")

    problems = [p for p in in_parallel(one, sorted(rec.objects.items())) if p is not None]
    if problems:
        raise _refuse(backup_id, problems)
    m = ManifestStore(store, paths, clock).read(rec.backup.manifest_id)
    if m is None:  # checked above; deleted since
        raise MissingObjectError(f"backup {backup_id} lost its manifest", object=paths.root)
    if not in_place:
        if not targets.create_first(replace(m, checkpoints=(), external_dbs=())):
            raise InvalidArgumentError(f"{dst_paths.root!r} was created by someone else meanwhile")
        return 1
    return _swap_tree(targets, store, paths, m, options, clock)


def _swap_tree(
    targets: ManifestStore,
    store: Store,
    paths: DbPaths,
    m: Manifest,
    options: DbOptions,
    clock: Clock,
) -> int:
    fence, fence_id = fence_out_writers(targets)
    written = written_seq(targets, fence_id)
    memtable, max_seq = _max_seq(store, paths, m)
    operator = engine_operator(options.merge_operator)
    view = write_l0_sst(targets.store, targets.paths, memtable, options, clock, operator=operator)
    l0 = m.l0 if view is None else (view, *m.l0)

    def swap(_mid: int, cur: Manifest) -> tuple[Manifest | None, None]:
        if cur.replay_after_wal_id >= fence_id:  # swapped already (unknown outcome)
            return None, None
        return with_tree(cur, m, l0, fence_id, max(max_seq, written), clock.now_ms()), None

    mid, _, _ = fence.update(swap)
    return mid


def forget_backups(
    store: Store,
    paths: DbPaths,
    pick: Callable[[list[Record]], list[Record]],
    clock: Clock,
    operation: str,
) -> list[Record]:
    """Removes the backups `pick` chooses from all of them (oldest first), under the lease:
    their checkpoints (the latest backup manifest takes the newest kept backup's tree, or an
    empty one), the objects no kept backup needs, then the records (last: an interrupted
    delete leaves records to delete again). Returns the removed records."""
    with BackupLease(store, paths, operation, clock) as lease:
        records = read_records(store, paths)
        gone = pick(records)
        gone_ids = {r.backup.id for r in gone}
        _forget(store, paths, gone, [r for r in records if r.backup.id not in gone_ids], lease)
        return gone


def _forget(
    store: Store, paths: DbPaths, gone: list[Record], kept: list[Record], lease: BackupLease
) -> None:
    lease.check()
    manifests = ManifestStore(store, paths)
    if manifests.latest() is None:
        return  # nothing was ever backed up here
    kept_ids = {r.backup.id for r in kept}
    newest = kept[-1] if kept else None
    base = None if newest is None else manifests.read(newest.backup.manifest_id)

    def change(_mid: int, cur: Manifest) -> tuple[Manifest | None, None]:
        # A backup checkpoint without a kept record is a removed backup's, or an orphan of
        # a create that died between its manifest update and its record (no create runs
        # now: this holds the lease). Other checkpoints are someone else's: kept.
        cps = tuple(c for c in cur.checkpoints if c.name != "backup" or c.id in kept_ids)
        tree = base or replace(
            cur, l0=(), compacted=(), segments=(), replay_after_wal_id=cur.wal_id_last_seen
        )
        new = replace(tree, checkpoints=cps)
        return (None if new == cur else new), None

    latest, _, _ = manifests.update(change)
    # Mark and sweep: everything in the location's data folders that no kept backup names
    # goes, the removed backups' objects and any left by interrupted creates alike.
    needed = {rel for r in kept for rel in r.objects} | {f"manifest/{latest:020d}.manifest"}
    folders = {paths.compacted_dir, paths.wal_dir, paths.manifest_dir}
    doomed = sorted(p for p in sizes_under(store, folders) if _rel(paths, p) not in needed)
    lease.check()
    in_parallel(store.delete, doomed)
    for r in gone:
        store.delete(_record_key(paths, r.backup.id))


def _rel(paths: DbPaths, path: str) -> str:
    return path[len(paths.root) + 1 :]
