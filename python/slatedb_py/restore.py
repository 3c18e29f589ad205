"""Restore in place: the database itself goes back to a checkpoint's state (SlateDB lacks
this; their issue #1047).

1. The checkpoint must exist and be live, at the start and still at the commit; otherwise
   the tree is not changed.
2. A manifest version bumps the writer epoch: a writer still running is fenced from the
   manifest, and a zero-byte WAL fence just past the last WAL object fences its next upload.
   Seqs go on from the highest it wrote, its unflushed WAL tail included (`written_seq`).
3. The checkpoint's unflushed WAL range is replayed into a new L0 SST.
4. A manifest version makes the checkpoint's tree (plus that L0) the database's tree, with the
   WAL replay point at the fence: post-checkpoint WAL objects are never replayed again.
Older manifests and every checkpoint stay valid; sequence numbers and the clock only go up.
A restore to a time (`restore_to_time`) is one to a short-lived checkpoint on the version a
read at that time chooses, with only the WAL rows written by then.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime

from slatedb_py.checkpoint import is_live, remove_checkpoint, resolve
from slatedb_py.clock import Clock
from slatedb_py.config import DbOptions
from slatedb_py.errors import CheckpointNotFoundError
from slatedb_py.manifest.fence import WriterFence
from slatedb_py.manifest.model import Manifest, SstView
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.memtable import new_memtable
from slatedb_py.merge import engine_operator
from slatedb_py.progress import SILENT, Progress
from slatedb_py.sst import write_l0_sst
from slatedb_py.time_travel import PIN_LIFETIME, open_at, replay_until, when_ms
from slatedb_py.wal import (
    FENCE_MAX_BYTES,
    list_wal_ids,
    list_wal_objects,
    replay_into,
    write_fence,
)

_log = logging.getLogger("slatedb_py.restore")


def fence_out_writers(manifests: ManifestStore) -> tuple[WriterFence, int]:
    """Fences whoever writes now: a new writer epoch in the manifest, then a zero-byte WAL
    fence past the last WAL object (a running writer's next upload fails). Returns the fence
    and the WAL id of the zero-byte object."""
    store, paths = manifests.store, manifests.paths
    fence = WriterFence(manifests)
    fence.claim()
    _log.info("fenced the writers of %r (writer epoch %d)", manifests.paths.root, fence.epoch)
    _, latest = manifests.require_latest()
    listed = list_wal_ids(store, paths, after=latest.replay_after_wal_id)
    frontier = max([latest.replay_after_wal_id, latest.wal_id_last_seen, *listed])
    return fence, write_fence(store, paths, frontier, fence)


def written_seq(manifests: ManifestStore, fence_id: int) -> int:
    """The highest seq written before the fence at `fence_id`: the latest manifest's
    `last_l0_seq`, or a row above it in the WAL after its replay point that no flush recorded
    (a writer fenced while it ran). A restore's version keeps `last_l0_seq` at least this
    high: below it, the next writer would hand out those seqs again, and a version at seq 0
    is an empty database's to time travel, chosen at any time. Seqs rise with WAL ids, so
    the newest object with rows below the fence holds the highest."""
    store, paths = manifests.store, manifests.paths
    _, latest = manifests.require_latest()
    for wid, size in reversed(list_wal_objects(store, paths, after=latest.replay_after_wal_id)):
        if wid < fence_id and size > FENCE_MAX_BYTES:
            return replay_into(new_memtable(), store, paths, wid, wid, latest.last_l0_seq)
    return latest.last_l0_seq


def wal_to_l0(
    manifests: ManifestStore,
    first: int,
    last: int,
    after_seq: int,
    options: DbOptions,
    clock: Clock,
    skip: frozenset[int] = frozenset(),
    progress: Progress = SILENT,
) -> tuple[SstView | None, int]:
    """Replays WAL ids first..last (rows with seq > after_seq, ids in `skip` left out) into
    one new L0 SST; returns its view (None when there were no rows) and the highest seq."""
    store, paths = manifests.store, manifests.paths
    memtable = new_memtable()
    max_seq = replay_into(
        memtable, store, paths, first, last, after_seq, skip=skip, progress=progress
    )
    operator = engine_operator(options.merge_operator)
    return write_l0_sst(store, paths, memtable, options, clock, operator=operator), max_seq


def restore_to_checkpoint(
    manifests: ManifestStore,
    checkpoint_id: uuid.UUID,
    options: DbOptions,
    clock: Clock,
    *,
    upto_ms: int | None = None,
    progress: Progress = SILENT,
) -> int:
    """Restores in place (module docstring); returns the id of the manifest it wrote.
    With `upto_ms` (a restore to a time, `slatedb_py.time_travel`) the WAL tail is every
    object after the checkpoint's replay point up to the fence, rows written at or before
    `upto_ms` only."""
    target_id, target = resolve(manifests, checkpoint_id, clock.now_ms() // 1000)
    fence, fence_id = fence_out_writers(manifests)
    written = written_seq(manifests, fence_id)

    # The checkpoint's WAL tail becomes an L0 SST (it may be collected once unpinned).
    if upto_ms is None:
        view, max_seq = wal_to_l0(
            manifests,
            target.replay_after_wal_id + 1,
            target.wal_id_last_seen,
            target.last_l0_seq,
            options,
            clock,
            progress=progress,
        )
    else:
        store, paths = manifests.store, manifests.paths
        memtable = new_memtable()
        max_seq = replay_until(memtable, store, paths, target, upto_ms, fence_id - 1, progress)
        operator = engine_operator(options.merge_operator)
        view = write_l0_sst(store, paths, memtable, options, clock, operator=operator)
    l0 = target.l0 if view is None else (view, *target.l0)

    def restore(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
        if m.replay_after_wal_id >= fence_id:
            # Restored already (re-applied after an unknown outcome); writing the target tree
            # again would undo whatever was committed on top since.
            return None, None
        # Still pinned now? Had it expired or been deleted meanwhile, a collector may have
        # taken the very SSTs and WAL objects this version is about to name.
        cp = m.checkpoint(checkpoint_id)
        if cp is None or not is_live(cp, clock.now_ms() // 1000) or cp.manifest_id != target_id:
            raise CheckpointNotFoundError(
                f"checkpoint {checkpoint_id} of {manifests.paths.root!r} expired or was deleted "
                "during the restore; the database was not changed "
                "(writers opened before are fenced)",
                checkpoint_id=checkpoint_id,
            )
        return with_tree(m, target, l0, fence_id, max(max_seq, written), clock.now_ms()), None

    mid, _, _ = fence.update(restore)
    return mid


def with_tree(
    m: Manifest,
    target: Manifest,
    l0: tuple[SstView, ...],
    fence_id: int,
    max_seq: int,
    now_ms: int,
) -> Manifest:
    """The current manifest `m` with `target`'s tree (and `l0` in front: the target's WAL
    tail as an L0 SST), the one way every in-place restore swaps it: the WAL replay point
    moves to the fence, so no writer fenced before replays its old tail on top; sequence
    numbers and clock never move back; `m`'s checkpoints and external parents stay (those
    checkpoints still pin their own versions), with the target's parents added. The clock
    tick becomes at least `now_ms`, the restore's own time: from it on this tree is the
    database's state (time travel chooses a version by this tick, `slatedb_py.time_travel`)."""
    externals = {e.path: e for e in m.external_dbs}
    externals.update({e.path: e for e in target.external_dbs})
    return replace(
        m,
        l0=l0,
        compacted=target.compacted,
        segments=target.segments,
        segment_extractor_name=target.segment_extractor_name,
        last_compacted_l0_view_id=target.last_compacted_l0_view_id,
        replay_after_wal_id=fence_id,
        wal_id_last_seen=fence_id,
        last_l0_seq=max(m.last_l0_seq, max_seq),
        recent_snapshot_min_seq=max(m.last_l0_seq, max_seq),
        last_l0_clock_tick=max(m.last_l0_clock_tick, target.last_l0_clock_tick, now_ms),
        external_dbs=tuple(externals.values()),
    )


def restore_to_time(
    manifests: ManifestStore,
    when: datetime,
    options: DbOptions,
    clock: Clock,
    progress: Progress = SILENT,
) -> int:
    """Restores in place to the database as it was at `when` (`slatedb_py.time_travel`): a
    short-lived checkpoint on the version a read at `when` chooses (checked whole first),
    then `restore_to_checkpoint` with the WAL rows up to `when`. Fences a running writer."""
    _, pin, _ = open_at(
        manifests,
        when,
        clock,
        new_memtable(),
        lifetime=PIN_LIFETIME,
        retention=options.history_retention,
    )
    assert pin is not None
    try:
        return restore_to_checkpoint(
            manifests, pin.id, options, clock, upto_ms=when_ms(when), progress=progress
        )
    finally:
        try:
            remove_checkpoint(manifests, pin.id)
        except CheckpointNotFoundError:
            pass
