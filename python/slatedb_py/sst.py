"""SSTs on the object store: open from the tail, read blocks on demand through one cache.

Opening fetches the last 64 KiB in one ranged GET (footer, info, index and filter usually fit;
otherwise one more GET for the rest of the metadata). A lookup asks the native handle, which
answers from the block cache or names the one block it needs; that block is fetched with one
ranged GET, and the lookup repeated.

The cache is best effort (a block larger than it is not kept; another thread may evict a
block before the retry), so a read never depends on it: on its first miss a read makes a
native `BlockSet`, every block it fetches goes into that set as well as the cache, and its
retries look in the set first. A read thus ends after at most one fetch per block it needs.
The set is dropped with the read; a read whose blocks are cached never makes one.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from slatedb_py import _native
from slatedb_py.errors import InternalError, MissingObjectError
from slatedb_py.store import Store

TAIL_BYTES = 64 * 1024


class Table:
    """One SST: its native handle and its uid in the block cache."""

    __slots__ = ("native", "path", "size", "uid")

    def __init__(self, native: Any, path: str, size: int, uid: int) -> None:
        self.native, self.path, self.size, self.uid = native, path, size, uid


class TableCache:
    def __init__(self, store: Store, block_cache_bytes: int) -> None:
        self.store = store
        self.blocks = _native.BlockCache(block_cache_bytes)
        self._tables: dict[str, Table] = {}
        self._uids = itertools.count(1)
        self._lock = threading.Lock()

    def _remember(self, path: str, native: Any, size: int) -> Table:
        with self._lock:
            existing = self._tables.get(path)
            if existing is not None:
                return existing
            t = Table(native, path, size, next(self._uids))
            self._tables[path] = t
            return t

    def open(self, path: str) -> Table:
        t = self._tables.get(path)
        if t is not None:
            return t
        got = self.store.get_tail(path, TAIL_BYTES)
        if got is None:
            # The manifest references it, so no retry can bring it back.
            raise MissingObjectError(f"SST {path!r} is missing from the store", object=path)
        tail, size = got
        opened = _native.open_sst_tail(tail, size, path)
        if isinstance(opened, int):
            [rest] = self.store.get_ranges(path, [(opened, size)])
            opened = _native.open_sst_tail(rest, size, path)
        return self._remember(path, opened, size)

    def add_written(self, path: str, data: bytes) -> Table:
        """Registers an SST this process just wrote; its blocks go straight into the cache
        (write-through), its metadata is parsed from memory."""
        whole = _native.decode_sst(data, path)
        start = whole.info()["filter_offset"]
        native = _native.open_sst_tail(memoryview(data)[start:], len(data), path)
        t = self._remember(path, native, len(data))
        for index, (s, e, _) in enumerate(whole.blocks()):
            native.add_block(self.blocks, t.uid, index, memoryview(data)[s:e])
        return t

    def forget(self, path: str) -> None:
        with self._lock:
            t = self._tables.pop(path, None)
        if t is not None:
            self.blocks.evict_sst(t.uid)

    def read_path(self, memtables: tuple[Any, ...], tables: list[Table]) -> Any:
        return _native.ReadPath(list(memtables), [(t.native, t.uid) for t in tables], self.blocks)

    def fetch_block(
        self, table: Table, index: int, start: int, end: int, blocks: Any = None
    ) -> Any:
        """Fetches data block `index` for one read, into the cache and the read's own block
        set `blocks` (made here on the read's first fetch when None); returns that set, which
        the read passes to its retries."""
        if blocks is None:
            blocks = _native.BlockSet()
        [raw] = self.store.get_ranges(table.path, [(start, end)])
        table.native.add_block(self.blocks, table.uid, index, raw, blocks)
        return blocks

    def get(self, table: Table, key: bytes) -> Any:
        """The newest version of `key` in the table (a Row), or None."""
        blocks = None
        while True:
            found, what = table.native.lookup(key, self.blocks, table.uid, blocks)
            if found or what is None:
                return what
            blocks = self.fetch_block(table, *what, blocks)

    def range_rows(self, table: Table, start: bytes | None, end: bytes | None) -> Any:
        """Every version of the keys in [start, end) as a native RowList."""
        got = table.native.range_rows(self.blocks, table.uid, start, end)
        if not isinstance(got, list):
            return got
        # Every missing block is fetched in one call and kept for this read, so the second
        # pass finds them all whatever the cache kept.
        blocks = _native.BlockSet()
        raws = self.store.get_ranges(table.path, [(s, e) for _, s, e in got])
        for (index, _, _), raw in zip(got, raws, strict=True):
            table.native.add_block(self.blocks, table.uid, index, raw, blocks)
        rows = table.native.range_rows(self.blocks, table.uid, start, end, blocks)
        if isinstance(rows, list):
            raise InternalError(
                f"range of SST {table.path!r} still misses blocks {rows} after fetching them"
            )
        return rows
