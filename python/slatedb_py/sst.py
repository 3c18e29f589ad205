"""SSTs on the object store: written once (`store_ssts`, `write_l0_sst`), then opened once per
handle and read through one block cache.

SSTs are written in pieces as the native core encodes them (a compaction's outputs, an L0
flush): one smaller than the store's part size is one piece and one PUT; a larger one is a
multipart upload of its pieces (`Store.upload`), so memory holds a few parts, not the SST.

The native `Tables` holds every SST a database handle has opened and the block cache its
reads share; opening and block reads go through the fetch contract (`fetch.py`). On a local
folder the native core opens and reads the files itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from slatedb_py import _native
from slatedb_py.clock import Clock
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.disk_cache import DiskCache
from slatedb_py.errors import InternalError
from slatedb_py.fetch import Fetch, drive
from slatedb_py.ids import new_ulid
from slatedb_py.manifest.model import SstHandle, SstTableInfo, SstView
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

if TYPE_CHECKING:  # the native zero-copy buffers' type
    from typing_extensions import Buffer


T = TypeVar("T")


def _namespace(inner: Any) -> str:
    """Which store a disk-cache entry belongs to: kind, where (bucket, account, endpoint) and
    prefix, never credentials (cache entries hold their key in the clear). A store with no
    such identity (a MemoryStore) gets its process-local repr."""
    config = getattr(inner, "config", None)
    if not isinstance(config, dict):
        return repr(inner)
    where = {k: v for k, v in config.items() if k in _IDENTITY}
    return f"{type(inner).__name__}|{sorted(where.items())}|{getattr(inner, 'prefix', None)}"


_IDENTITY = {"bucket", "endpoint", "region", "account_name", "container_name", "bucket_name", "url"}


class TableCache:
    def __init__(
        self, store: Store, block_cache_bytes: int, disk_cache: DiskCache | None = None
    ) -> None:
        self.store = store
        self.disk_cache = disk_cache
        self.native = _native.Tables(block_cache_bytes, store.local_root)
        # Reads count here (`metrics`), after they answer: a read the asyncio twin abandons
        # on the event loop to run again in a thread counts once.
        self.count = store.metrics.add2
        self.metrics = store.metrics

    def block_cache_gauges(self) -> dict[str, int | float]:
        hits, misses, blocks, held = self.native.cache_stats()
        return {
            "block_cache_hits_total": hits,
            "block_cache_misses_total": misses,
            "block_cache_blocks": blocks,
            "block_cache_bytes": held,
        }

    @classmethod
    def for_options(cls, store: Store, options: DbOptions | ReaderOptions) -> TableCache:
        """The cache a `Db` or `DbReader` reads through, with its options' block cache and,
        for a remote store, its on-disk cache (a local folder is read directly instead)."""
        disk = None
        if options.disk_cache_dir is not None and store.local_root is None:
            disk = DiskCache(
                options.disk_cache_dir, options.disk_cache_bytes, namespace=_namespace(store.inner)
            )
        return cls(store, options.block_cache_bytes, disk)

    def drive(self, got: Fetch | T) -> T:
        """Serves a native call's byte requests until it answers (`fetch.drive`)."""
        return drive(self.store, got, self.disk_cache)

    def add_written(self, path: str, file: _native.SstFile) -> _native.SstFile:
        """Registers an SST this process just wrote, from the metadata its last piece came
        with, so reads need not fetch it back; its blocks are read when a read needs them."""
        return self.native.add_written(path, file)

    def retain(self, paths: set[str]) -> None:
        """Drops every SST but `paths` (the handle moved to a new tree): slots, open files and
        cached blocks of the rest. Reads still on the old tree hold their own references."""
        self.native.retain(paths)

    def forget(self, path: str) -> None:
        self.native.forget(path)


# What the native core hands out as it writes SSTs: `(data, None)` while an SST goes on,
# `(data, its metadata opened)` for its last piece.
Piece = tuple["Buffer", "_native.SstFile | None"]


def store_ssts(
    store: Store,
    paths: DbPaths,
    pieces: Iterable[Piece],
    clock: Clock,
    tables: TableCache | None = None,
) -> list[SstView]:
    """Puts the SSTs `pieces` delivers, each under `compacted/<new ULID>.sst` (module
    docstring), and returns their views for the manifest. An SST whose pieces stop coming
    (an error in the merge that makes them, or in its upload) is aborted: it never appears.
    With `tables`, each SST is registered there (`TableCache.add_written`)."""
    views = []
    it = iter(pieces)
    for first, last in it:
        ulid = new_ulid(clock.now_ms())
        path = paths.compacted(ulid)
        if last is None:
            with store.upload(path) as up:
                up.write(first)
                del first  # uploading: let it go once sent
                for data, last in it:
                    up.write(data)
                    if last is not None:
                        break
            if last is None:
                raise InternalError(f"the pieces of {path!r} ended before its last one")
        else:
            store.put(path, first)
            del first
        opened = last if tables is None else tables.add_written(path, last)
        views.append(SstView(ulid, SstHandle(ulid, SstTableInfo.from_native(opened.info()), 2)))
    return views


def write_l0_sst(
    store: Store,
    paths: DbPaths,
    memtable: _native.Memtable,
    options: DbOptions,
    clock: Clock,
    tables: TableCache | None = None,
    retain_seq: int | None = None,
    operator: _native.MergeOperator | None = None,
) -> SstView | None:
    """Writes a memtable's rows as one L0 SST, encoded with the database's options; None
    when it holds no row. With `retain_seq` (the oldest open snapshot's), older versions a
    snapshot at or after it reads are kept too; otherwise only the newest of each key. With
    `operator`, merge operands fold as a compaction folds them (as SlateDB does at flush)."""
    o = options
    now = clock.now_ms()
    pieces = memtable.encode_l0(
        o.block_size,
        o.compression,
        o.bloom_bits_per_key,
        o.min_filter_keys,
        store.part_size,
        now,
        retain_seq,
        operator,
        o.sst_block_alignment,
    )
    views = [] if pieces is None else store_ssts(store, paths, pieces, clock, tables)
    return views[0] if views else None
