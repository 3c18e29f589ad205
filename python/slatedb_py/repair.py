"""Repair: the way back when a WAL object inside the replay range is corrupt.

Every open replays the WAL written after the manifest's replay point, so one object there that
does not decode makes every open fail (the error names it). Objects are written once and never
changed, so the bad one cannot be fixed in place. `skip_wal_objects` moves the database past
it, losing only the rows of the named objects:

1. Fence whoever writes now (a new writer epoch and a WAL fence, as restore does).
2. Replay every other WAL object of the range into a new L0 SST; any object that fails and was
   not named is an error, and nothing but the fence has been written.
3. A manifest version adds that L0 and moves the replay point to the fence, so the skipped
   objects are never replayed again (the collector reclaims them later).
A checkpoint taken before the damage is the other way back (`admin.restore_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from slatedb_py.clock import Clock
from slatedb_py.config import DbOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.restore import fence_out_writers, wal_to_l0
from slatedb_py.wal import list_wal_ids


@dataclass(frozen=True)
class RepairResult:
    """The manifest version written, the WAL objects left out, and the range replayed."""

    manifest_id: int
    skipped: list[str]
    replayed: tuple[int, int]


def skip_corrupt_wal(
    manifests: ManifestStore, wal_ids: Iterable[int], options: DbOptions, clock: Clock
) -> RepairResult:
    # Every check comes before the first write: fencing out the writer is not undone.
    try:
        skip = frozenset(wal_ids)
    except TypeError:
        raise InvalidTypeError(
            f"wal_ids must be an iterable of ints, not {type(wal_ids).__name__}"
        ) from None
    if any(not isinstance(i, int) or isinstance(i, bool) for i in skip):
        raise InvalidTypeError(f"name the WAL ids to skip as ints, not {sorted(map(repr, skip))}")
    if not skip:
        raise InvalidArgumentError("name at least one WAL id to skip")
    paths = manifests.paths
    _, m = manifests.require_latest()
    outside = sorted(i for i in skip if i <= m.replay_after_wal_id)
    if outside:
        raise InvalidArgumentError(
            f"WAL ids {outside} of {paths.root!r} are not replayed any more (the replay point is "
            f"{m.replay_after_wal_id}): there is nothing to skip"
        )
    last = max(
        [m.replay_after_wal_id, *list_wal_ids(manifests.store, paths, after=m.replay_after_wal_id)]
    )
    beyond = sorted(i for i in skip if i > last)
    if beyond:
        raise InvalidArgumentError(
            f"WAL ids {beyond} of {paths.root!r} are past its last WAL object ({last}); "
            "nothing was written"
        )
    fence, fence_id = fence_out_writers(manifests)
    _, m = manifests.require_latest()  # the writer may have flushed before it was fenced
    first, last = m.replay_after_wal_id + 1, fence_id - 1
    view, max_seq = wal_to_l0(manifests, first, last, m.last_l0_seq, options, clock, skip)

    def repaired(_mid: int, cur: Manifest) -> tuple[Manifest | None, None]:
        if cur.replay_after_wal_id >= fence_id:
            return None, None  # applied already (re-applied after an unknown outcome)
        last_seq = max(cur.last_l0_seq, max_seq)
        return replace(
            cur,
            l0=cur.l0 if view is None else (view, *cur.l0),
            replay_after_wal_id=fence_id,
            wal_id_last_seen=max(cur.wal_id_last_seen, fence_id),
            last_l0_seq=last_seq,
            recent_snapshot_min_seq=last_seq,
        ), None

    mid, _, _ = fence.update(repaired)
    return RepairResult(mid, [paths.wal(i) for i in sorted(skip)], (first, last))
