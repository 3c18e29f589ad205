"""Checkpoints: entries in the manifest that pin a manifest version (FORMAT.md 5.1).

A checkpoint pins the version that contains it (created as version `latest + 1`), or with a
`source` the same version as another checkpoint. Pinning means the garbage collector keeps that
manifest and every SST and WAL object its view needs. Every change is a manifest update by
put-if-absent with re-read and retry, so it is safe while a writer, a compactor or another
process is editing the manifest too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from slatedb_py.clock import Clock
from slatedb_py.config import CheckpointOptions
from slatedb_py.errors import CheckpointNotFoundError, DataError, InvalidTypeError
from slatedb_py.ids import new_uuid
from slatedb_py.manifest.model import CheckpointEntry, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.manifest.versioned import Change
from slatedb_py.wal import list_wal_ids

# How a checkpoint change reaches the manifest: `ManifestStore.update`, or a writer's fenced one.
Updater = Callable[[Change[Manifest, int]], tuple[int, Manifest, int]]

U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as users see it (API.md)."""

    id: uuid.UUID
    manifest_id: int
    create_time: datetime
    expire_time: datetime | None
    name: str | None

    @classmethod
    def of(cls, entry: CheckpointEntry) -> Checkpoint:
        return cls(
            id=entry.id,
            manifest_id=entry.manifest_id,
            create_time=datetime.fromtimestamp(entry.create_time_s, UTC),
            expire_time=None
            if entry.expire_time_s == 0
            else datetime.fromtimestamp(entry.expire_time_s, UTC),
            name=entry.name,
        )


@dataclass(frozen=True)
class CheckpointCreateResult:
    id: uuid.UUID
    manifest_id: int


def is_live(entry: CheckpointEntry, now_s: int) -> bool:
    return entry.expire_time_s == 0 or entry.expire_time_s > now_s


def _expire_s(now_s: int, lifetime: timedelta | None) -> int:
    if lifetime is None:
        return 0
    # Whole seconds, as stored (u32 Unix seconds; 0 means "never", so expire no earlier than 1).
    # Rounded up: a lifetime under a second would otherwise end before the checkpoint exists.
    seconds, rest = divmod(lifetime, timedelta(seconds=1))  # no negation: timedelta.max fits
    whole = seconds + (1 if rest else 0)
    return min(U32_MAX, max(1, now_s + whole))


def resolve(manifests: ManifestStore, checkpoint_id: uuid.UUID, now_s: int) -> tuple[int, Manifest]:
    """The manifest version a live checkpoint pins, and its id: what readers, restores and
    clones open. An expired checkpoint counts as gone even before a collector removes it,
    since a collector may already be taking what it pinned."""
    cid = _check_id(checkpoint_id)
    _, latest = manifests.require_latest()
    cp = latest.checkpoint(cid)
    if cp is None or not is_live(cp, now_s):
        raise CheckpointNotFoundError(
            f"no live checkpoint {cid} in the database at {manifests.paths.root!r}",
            checkpoint_id=cid,
        )
    pinned = manifests.read(cp.manifest_id)
    if pinned is None:
        raise CheckpointNotFoundError(
            f"checkpoint {cid} of {manifests.paths.root!r} pins manifest {cp.manifest_id}, "
            "which is missing",
            checkpoint_id=cid,
        )
    return cp.manifest_id, pinned


def _check_id(checkpoint_id: object) -> uuid.UUID:
    if not isinstance(checkpoint_id, uuid.UUID):
        raise InvalidTypeError(
            f"checkpoint id must be a uuid.UUID, not {type(checkpoint_id).__name__}"
        )
    return checkpoint_id


def _not_found(manifests: ManifestStore, checkpoint_id: uuid.UUID) -> CheckpointNotFoundError:
    return CheckpointNotFoundError(
        f"no checkpoint {checkpoint_id} in the database at {manifests.paths.root!r}",
        checkpoint_id=checkpoint_id,
    )


def add_checkpoint(
    manifests: ManifestStore,
    options: CheckpointOptions,
    clock: Clock,
    *,
    update: Updater | None = None,
) -> CheckpointCreateResult:
    """Adds a checkpoint to the latest manifest. `update` is the manifest updater to use (a
    writer passes its fenced one); by default the plain store's."""
    if not isinstance(options, CheckpointOptions):
        raise InvalidTypeError(f"options must be CheckpointOptions, not {type(options).__name__}")
    cid = new_uuid()

    def add(mid: int, m: Manifest) -> tuple[Manifest | None, int]:
        mine = m.checkpoint(cid)
        if mine is not None:  # added already (re-applied after an unknown outcome)
            return None, mine.manifest_id
        if not m.initialized:
            raise DataError(
                f"the database at {manifests.paths.root!r} is not initialized "
                "(a clone being created)"
            )
        now_s = clock.now_ms() // 1000
        if options.source is not None:
            src = m.checkpoint(options.source)
            if src is None or not is_live(src, now_s):
                raise _not_found(manifests, options.source)
            pinned = src.manifest_id
        else:
            pinned = mid + 1
        entry = CheckpointEntry(
            id=cid,
            manifest_id=pinned,
            expire_time_s=_expire_s(now_s, options.lifetime),
            create_time_s=now_s,
            name=options.name,
        )
        # The pinned view must hold everything durable: WAL objects a running writer uploaded
        # since its last manifest update count too, so the version records the WAL frontier.
        tail = list_wal_ids(manifests.store, manifests.paths, after=m.replay_after_wal_id)
        new = replace(
            m,
            checkpoints=(*m.checkpoints, entry),
            wal_id_last_seen=max([m.wal_id_last_seen, *tail]),
        )
        return new, pinned

    _, _, pinned = (update or manifests.update)(add)
    return CheckpointCreateResult(cid, pinned)


def renew_checkpoint(
    manifests: ManifestStore, checkpoint_id: uuid.UUID, lifetime: timedelta | None, clock: Clock
) -> Checkpoint:
    cid = _check_id(checkpoint_id)
    CheckpointOptions(
        lifetime=lifetime
    )  # the one lifetime rule (InvalidTypeError / InvalidArgumentError)

    def refresh(_mid: int, m: Manifest) -> tuple[Manifest, CheckpointEntry]:
        now_s = clock.now_ms() // 1000
        entry = m.checkpoint(cid)
        if entry is None or not is_live(entry, now_s):
            raise _not_found(manifests, cid)
        new = replace(entry, expire_time_s=_expire_s(now_s, lifetime))
        return replace(m, checkpoints=tuple(new if c.id == cid else c for c in m.checkpoints)), new

    _, _, refreshed = manifests.update(refresh)
    return Checkpoint.of(refreshed)


def remove_checkpoint(manifests: ManifestStore, checkpoint_id: uuid.UUID) -> None:
    cid = _check_id(checkpoint_id)

    tried = False

    def delete(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
        nonlocal tried
        if m.checkpoint(cid) is None:
            if tried:  # our delete landed; this is a re-application after an unknown outcome
                return None, None
            raise _not_found(manifests, cid)
        tried = True
        return replace(m, checkpoints=tuple(c for c in m.checkpoints if c.id != cid)), None

    manifests.update(delete)


def checkpoints_named(manifests: ManifestStore, name: str | None = None) -> list[Checkpoint]:
    _, m = manifests.require_latest()
    return [Checkpoint.of(c) for c in m.checkpoints if name is None or c.name == name]
