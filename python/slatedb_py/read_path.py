"""The read path shared by `Db` and `DbReader`: memtables -> L0 newest first -> sorted runs.

A `ReadView` is an immutable picture of where rows live (memtables and the manifest's tree);
the owner swaps in a new view when it flushes or sees a new manifest. Expired rows and
tombstones read as absent.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from slatedb_py.errors import InvalidArgumentError, MissingObjectError
from slatedb_py.format import merge_rows
from slatedb_py.manifest.model import EXCLUDED, INCLUDED, Manifest, SortedRun, SstView
from slatedb_py.paths import DbPaths
from slatedb_py.sst import TableCache

SCAN_PAGE = 1024


def _in_range(view: SstView, key: bytes) -> bool:
    r = view.visible_range
    if r is None:
        return True
    lo, hi = r
    if lo.kind == INCLUDED and key < (lo.key or b""):
        return False
    if lo.kind == EXCLUDED and key <= (lo.key or b""):
        return False
    if hi.kind == INCLUDED and key > (hi.key or b""):
        return False
    return not (hi.kind == EXCLUDED and key >= (hi.key or b""))


def _run_view_for(run: SortedRun, key: bytes) -> SstView | None:
    """The SST of a sorted run whose key range may hold `key` (runs do not overlap)."""
    firsts = [v.sst.info.first_entry or b"" for v in run.views]
    i = bisect.bisect_right(firsts, key) - 1
    if i < 0:
        return None
    v = run.views[i]
    last = v.sst.info.last_entry
    if last is not None and key > last:
        return None
    return v


def _visible(row: Any, now: int) -> bytes | None:
    if row.kind == "tombstone":
        return None
    if row.expire_ts is not None and row.expire_ts <= now:
        return None
    if row.kind == "merge":
        raise InvalidArgumentError(
            f"key {row.key[:64]!r} holds merge operands; reading them needs a merge operator, "
            "which slatedb_py does not support yet"
        )
    return row.value  # type: ignore[no-any-return]


def _view_range(view: SstView) -> tuple[bytes | None, bytes | None]:
    return view.sst.info.first_entry, view.sst.info.last_entry


@dataclass(frozen=True)
class ReadView:
    memtables: tuple[Any, ...]  # native Memtables, newest first
    manifest: Manifest
    paths: DbPaths
    tables: TableCache

    def _external_path(self, view: SstView) -> str:
        for ext in self.manifest.external_dbs:
            if view.sst.id in ext.sst_ids:
                return DbPaths.stored(ext.path).compacted(view.sst.id)
        return self.paths.compacted(view.sst.id)

    def _table(self, view: SstView) -> Any:
        return self.tables.open(self._external_path(view))

    def _trees(self) -> Iterator[tuple[bytes, tuple[SstView, ...], tuple[SortedRun, ...]]]:
        """(prefix, l0, sorted runs) of the top-level tree and of every segment (RFC-0024:
        with a segment extractor, each key prefix has its own tree and the top one is empty)."""
        yield b"", self.manifest.l0, self.manifest.compacted
        for seg in self.manifest.segments:
            yield seg.prefix, seg.l0, seg.compacted

    def sst_views_for(self, key: bytes) -> Iterator[SstView]:
        for prefix, l0, runs in self._trees():
            if not key.startswith(prefix):
                continue
            yield from l0
            for run in runs:
                v = _run_view_for(run, key)
                if v is not None:
                    yield v

    def get_row(self, key: bytes, snapshot_seq: int) -> Any:
        for mt in self.memtables:
            row = mt.get(key, snapshot_seq)
            if row is not None:
                return row
        for view in self.sst_views_for(key):
            if not _in_range(view, key):
                continue
            lo, hi = _view_range(view)
            if (lo is not None and key < lo) or (hi is not None and key > hi):
                continue
            row = self.tables.get(self._table(view), key)
            if row is not None:
                return row
        return None

    @cached_property
    def _native_path(self) -> tuple[Any, list[Any]] | None:
        """Memtables and SSTs in search order as one native object, so a get whose blocks
        are cached crosses into Rust once. None when a view has a key-range restriction
        (clone projections), which the Python path handles."""
        views = self.manifest.all_views()
        if any(v.visible_range is not None for v in views):
            return None
        tables = [self._table(v) for v in views]
        native = self.tables.read_path(self.memtables, tables)
        return native, tables

    def get(self, key: bytes, snapshot_seq: int, now: int) -> bytes | None:
        path = self._native_path
        if path is None:
            row = self.get_row(key, snapshot_seq)
            return None if row is None else _visible(row, now)
        native, tables = path
        blocks = None  # the blocks this read fetched (see sst.py), made on its first miss
        while True:
            status, what = native.get(key, snapshot_seq, now, blocks)
            if status == 2:
                index, block, start, end = what
                blocks = self.tables.fetch_block(tables[index], block, start, end, blocks)
                continue
            if status == 3:
                raise InvalidArgumentError(
                    f"key {key[:64]!r} holds merge operands; reading them needs a merge "
                    "operator, which slatedb_py does not support yet"
                )
            return what  # type: ignore[no-any-return]

    def scan(
        self, start: bytes | None, end: bytes | None, snapshot_seq: int, now: int
    ) -> Iterator[tuple[bytes, bytes]]:
        """The rows of [start, end). The SSTs are read when this is called, not when the
        iterator is first advanced, so the caller sees a missing object at once and can retry
        on a newer view."""
        if start is not None and end is not None and start >= end:
            return iter(())
        sources: list[Any] = [mt.range(start, end) for mt in self.memtables]
        for view in self.manifest.all_views():
            lo, hi = _view_range(view)
            if end is not None and lo is not None and lo >= end:
                continue
            if start is not None and hi is not None and hi < start:
                continue
            rows = self.tables.range_rows(self._table(view), start, end)
            if view.visible_range is not None:
                rows = [r for r in rows.to_list() if _in_range(view, r.key)]
            sources.append(rows)
        return _pages(merge_rows(sources, snapshot_seq=snapshot_seq, now=now))


def _pages(merged: Any) -> Iterator[tuple[bytes, bytes]]:
    while page := merged.next_kv_batch(SCAN_PAGE):
        yield from page


# Newer views a read tries after finding an object missing, before it gives up.
READ_ATTEMPTS = 3
T = TypeVar("T")


def read_again(
    view: ReadView,
    read: Callable[[ReadView], T],
    error: MissingObjectError,
    newer: Callable[[ReadView], ReadView | None],
) -> T:
    """Retries `read`, which found an object of `view` missing, on newer views: the owner's
    `newer(view)` loads the latest tree and returns its view, or None when there is nothing
    newer than `view` (then the object is really gone, and `error` is raised). The collector
    may reclaim what an old tree needs once a newer one exists, so a read that started on the
    old tree just moves on."""
    for _ in range(READ_ATTEMPTS):
        moved = newer(view)
        if moved is None:
            raise error
        view = moved
        try:
            return read(view)
        except MissingObjectError as e:
            error = e
    raise error
