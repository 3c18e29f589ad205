"""WAL objects: `wal/<id>.sst`, ids contiguous, each created once with put-if-absent.

A zero-byte object is a writer's fence: a new writer creates one just past the last WAL id,
so an older writer's next upload finds its id taken and learns it was fenced.
"""

from __future__ import annotations

from typing import Any

from slatedb_py.errors import DataError
from slatedb_py.format import decode_sst
from slatedb_py.manifest.store import WriterFence
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store


def list_wal_ids(store: Store, paths: DbPaths) -> list[int]:
    ids = []
    for meta in store.list(paths.wal_dir):
        wid = DbPaths.wal_id_of(meta.path)
        if wid is not None:
            ids.append(wid)
    return sorted(ids)


def write_fence(store: Store, paths: DbPaths, after: int, fence: WriterFence | None) -> int:
    """Creates the zero-byte fence at the first free id after `after`; returns its id."""
    wid = after + 1
    while not store.put_if_absent(paths.wal(wid), b""):
        if fence is not None:
            latest = fence.manifests.read_latest()
            if latest is not None:
                fence.check(latest[1])
        wid += 1
    return wid


def read_wal_rows(store: Store, paths: DbPaths, wal_id: int) -> list[Any] | None:
    """The rows of one WAL object ([] for a fence), or None when it does not exist."""
    key = paths.wal(wal_id)
    data = store.get(key)
    if data is None:
        return None
    if len(data) <= 10:  # a fence (0 bytes), or an old-style empty SST
        return []
    return list(decode_sst(data, name=key).rows())


def replay_range(
    store: Store, paths: DbPaths, first: int, last: int, after_seq: int
) -> tuple[list[Any], int]:
    """Rows with seq > after_seq from WAL ids first..last (inclusive), and the max seq seen."""
    rows: list[Any] = []
    max_seq = after_seq
    for wid in range(first, last + 1):
        got = read_wal_rows(store, paths, wid)
        if got is None:
            raise DataError(
                f"WAL truncated: {paths.wal(wid)!r} is missing between {first} and {last}",
                object=paths.wal(wid),
            )
        for r in got:
            if r.seq > after_seq:
                rows.append(r)
                max_seq = max(max_seq, r.seq)
    return rows, max_seq
