"""WAL objects: `wal/<id>.sst`, ids contiguous, each created once with put-if-absent.

A zero-byte object is a writer's fence: a new writer creates one just past the last WAL id,
so an older writer's next upload finds its id taken and learns it was fenced.
"""

from __future__ import annotations

from typing import Any

from slatedb_py.errors import MissingObjectError
from slatedb_py.manifest.fence import WriterFence
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.store import Store


def list_wal_ids(store: Store, paths: DbPaths, after: int = 0) -> list[int]:
    """WAL ids present, only those above `after` (the listing starts past its key)."""
    return [wid for wid, _ in list_wal_objects(store, paths, after)]


def list_wal_objects(store: Store, paths: DbPaths, after: int = 0) -> list[tuple[int, int]]:
    """`(id, size)` of the WAL objects above `after`, in id order; one LIST of the folder's
    tail. A size of at most `FENCE_MAX_BYTES` is a fence (no rows)."""
    out = []
    for meta in store.list(paths.wal_dir, after=paths.wal(after) if after > 0 else None):
        wid = DbPaths.wal_id_of(meta.path)
        if wid is not None and wid > after:
            out.append((wid, meta.size))
    return sorted(out)


# A WAL object this small holds no rows: a 0-byte fence, or a pre-0.14 fence (an empty SST of
# at most a footer). The native replay reads such objects as empty too.
FENCE_MAX_BYTES = 10


def fence_ids(listed: list[tuple[int, int]]) -> frozenset[int]:
    """The fences among `(id, size)` listed WAL objects: a replay skips them unread (they
    hold no rows, and reading each costs a GET)."""
    return frozenset(wid for wid, size in listed if size <= FENCE_MAX_BYTES)


def write_fence(store: Store, paths: DbPaths, after: int, fence: WriterFence | None) -> int:
    """Creates the zero-byte fence at the first free id after `after`; returns its id."""
    wid = after + 1
    while not store.put_if_absent(paths.wal(wid), b""):
        if fence is not None:
            latest = fence.versions.latest()
            if latest is not None:
                fence.check(latest[1])
        wid += 1
    return wid


def replay_into(
    memtable: Any,
    store: Store,
    paths: DbPaths,
    first: int,
    last: int,
    after_seq: int,
    *,
    skip: frozenset[int] = frozenset(),
    progress: Progress = SILENT,
) -> int:
    """Replays WAL ids first..last (inclusive) into `memtable`, skipping rows with
    seq <= after_seq (already in L0). Returns the highest seq seen (at least after_seq).
    A missing id inside the range means the WAL was truncated: an error, not a silent gap.
    Ids in `skip` are left out on purpose (`repair.skip_wal_objects`)."""
    max_seq = after_seq
    progress.total(sum(1 for w in range(first, last + 1) if w not in skip), 0)
    for wid in range(first, last + 1):
        if wid in skip:
            continue
        key = paths.wal(wid)
        data = store.get(key)
        if data is None:
            raise MissingObjectError(
                f"WAL truncated: {key!r} is missing between ids {first} and {last}", object=key
            )
        _, seen, _ = memtable.replay_wal(data, after_seq, key)
        max_seq = max(max_seq, seen)
        progress.advance(1, len(data))
    return max_seq
