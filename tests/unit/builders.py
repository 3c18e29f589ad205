"""Builders and hypothesis strategies of manifest values for the unit tests (model objects
only, no store)."""

from __future__ import annotations

import itertools
import uuid

from hypothesis import strategies as st

from slatedb_py.ids import new_ulid, ulid_from_int
from slatedb_py.manifest.fb import COMPRESSION
from slatedb_py.manifest.model import SortedRun, SstHandle, SstTableInfo, SstView

T0_MS = 1_700_000_000_000
_serial = itertools.count(1)


def ulid_at(ms: int, n: int | None = None) -> str:
    """A ULID with time `ms` and a deterministic random part (`n`, or the next serial)."""
    return new_ulid(ms, (next(_serial) if n is None else n).to_bytes(10, "big"))


def info(size: int = 100, first: bytes | None = b"a", last: bytes | None = b"z") -> SstTableInfo:
    """An SST info whose `estimated_size` is `size` (the stats block starts there)."""
    return SstTableInfo(
        first_entry=first,
        last_entry=last,
        index_offset=max(0, size - 10),
        index_len=min(size, 10),
        filter_offset=max(0, size - 10),
        filter_len=0,
        compression=None,
        sst_type="compacted",
        stats_offset=size,
        stats_len=8,
        filter_format=1,
    )


def sst_view(ms: int = T0_MS, size: int = 100) -> SstView:
    """A plain (unprojected) view of a new SST, view id == SST id as 0.17 writes them."""
    sid = ulid_at(ms)
    return SstView(sid, SstHandle(sid, info(size)))


def sorted_run(run_id: int, *sizes: int) -> SortedRun:
    return SortedRun(run_id, tuple(sst_view(size=s) for s in sizes))


# ---------------------------------------------------------------------------- strategies

U8, U64 = 2**8 - 1, 2**64 - 1
ulids = st.integers(0, 2**128 - 1).map(ulid_from_int)
uuids = st.integers(0, 2**128 - 1).map(lambda i: uuid.UUID(int=i))
u64s = st.integers(0, U64)
opt_bytes = st.none() | st.binary(max_size=12)

sst_infos = st.builds(
    SstTableInfo,
    first_entry=opt_bytes,
    last_entry=opt_bytes,
    index_offset=u64s,
    index_len=u64s,
    filter_offset=u64s,
    filter_len=u64s,
    compression=st.sampled_from(COMPRESSION),
    sst_type=st.sampled_from(["compacted", "wal"]),
    stats_offset=u64s,
    stats_len=u64s,
    filter_format=st.integers(0, U8),
)
