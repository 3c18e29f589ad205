"""The one driver of the native fetch contract.

Native reads (get, get_many, scan pages, opening an SST, the compaction job) answer, or
return a `_native.Fetch`: the bytes they need as parts `(path, tail, ranges)`. `drive` serves
each request through `store.py`, every range of one object in one call and the objects of
one request in parallel, and resumes the call where it stopped, until it answers.

SSTs in a local folder never come here: the native core reads them itself (`Store.local_root`).
With a `DiskCache` (remote stores), ranges and tails are served from local disk when held there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from slatedb_py import _native
from slatedb_py.disk_cache import DiskCache
from slatedb_py.errors import MissingObjectError
from slatedb_py.loop_guard import WouldBlock, inline
from slatedb_py.store import Store

Fetch = _native.Fetch

# Threads serving the objects of one request at once (a get_many over many SSTs). obstore
# releases the GIL while it waits, so these overlap their round trips.
T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="slatedb-fetch")


def drive(store: Store, got: Fetch | T, cache: DiskCache | None = None) -> T:
    """Serves the Fetch requests of one native call until it answers; returns the answer."""
    if isinstance(got, Fetch) and inline.here():
        raise WouldBlock
    while isinstance(got, Fetch):
        parts = got.parts
        if len(parts) == 1:
            replies = [_serve(store, parts[0], cache)]
        else:
            replies = list(_POOL.map(lambda p: _serve(store, p, cache), parts))
        # A resumed call answers what the call that asked answers (the fetch contract).
        got = cast("Fetch | T", got.resume(replies))
    return got


def _serve(
    store: Store, part: tuple[str, int, list[tuple[int, int]]], cache: DiskCache | None
) -> tuple[list[Any], int]:
    path, tail, ranges = part
    if tail:
        held = cache.get_tail(path, tail) if cache is not None else None
        if held is not None:
            return [held[0]], held[1]
        got = store.get_tail(path, tail)
        if got is None:
            # The manifest references it, so no retry can bring it back.
            raise MissingObjectError(f"SST {path!r} is missing from the store", object=path)
        data, size = got
        if cache is not None:
            cache.put_tail(path, data, size)
        return [data], size
    if cache is None:
        return store.get_ranges(path, ranges), 0
    out: list[Any] = [cache.get(path, s, e) for s, e in ranges]
    missing = [i for i, b in enumerate(out) if b is None]
    if missing:
        fetched = store.get_ranges(path, [ranges[i] for i in missing])
        for i, data in zip(missing, fetched, strict=True):
            out[i] = data
            cache.put(path, ranges[i][0], ranges[i][1], data)
    return out, 0
