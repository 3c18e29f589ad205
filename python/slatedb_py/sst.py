"""SSTs on the object store: open from the tail, read blocks on demand through one cache.

Opening fetches the last 64 KiB in one ranged GET (footer, info, index and filter usually fit;
otherwise one more GET for the rest of the metadata). A lookup asks the native handle, which
answers from the block cache or names the one block it needs; that block is fetched with one
ranged GET, cached, and the lookup repeated.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from slatedb_py import _native
from slatedb_py.errors import UnavailableError
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
            raise UnavailableError(f"SST {path!r} is missing from the store")
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

    def fetch_block(self, table: Table, index: int, start: int, end: int) -> None:
        [raw] = self.store.get_ranges(table.path, [(start, end)])
        table.native.add_block(self.blocks, table.uid, index, raw)

    def get(self, table: Table, key: bytes) -> Any:
        """The newest version of `key` in the table (a Row), or None."""
        while True:
            found, what = table.native.lookup(key, self.blocks, table.uid)
            if found or what is None:
                return what
            self.fetch_block(table, *what)

    def range_rows(self, table: Table, start: bytes | None, end: bytes | None) -> Any:
        """Every version of the keys in [start, end) as a native RowList."""
        for _ in range(2):
            got = table.native.range_rows(self.blocks, table.uid, start, end)
            if not isinstance(got, list):
                return got
            raws = self.store.get_ranges(table.path, [(s, e) for _, s, e in got])
            for (index, _, _), raw in zip(got, raws, strict=True):
                table.native.add_block(self.blocks, table.uid, index, raw)
        # The range needs more blocks than the cache holds: read it from the whole object.
        data = self.store.get(table.path)
        if data is None:
            raise UnavailableError(f"SST {table.path!r} is missing from the store")
        whole = _native.decode_sst(data, table.path)
        scratch = _native.BlockCache(0)
        return whole.range_rows(scratch, 0, start, end)
