"""The read path shared by `Db` and `DbReader`: memtables -> L0 newest first -> sorted runs.

A `ReadView` is an immutable picture of where rows live (memtables and the manifest's tree);
the owner swaps in a new view when it flushes or sees a new manifest. The search itself is
native (`rust/src/read.rs`, `rust/src/scan.rs`): a view hands the core its tree once, and every
read is one native call driven through the fetch contract (`fetch.py`). Expired rows and
tombstones read as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from slatedb_py import _native
from slatedb_py.batch import check_key
from slatedb_py.columnar import BATCH_BYTES, BATCH_ROWS, ArrowBatches, RecordBatch, check_batch_size
from slatedb_py.errors import (
    ClosedError,
    InvalidArgumentError,
    MissingObjectError,
    SnapshotTooOldError,
)
from slatedb_py.manifest.model import EXCLUDED, INCLUDED, BytesBound, Manifest, SstView
from slatedb_py.metrics import INDEX
from slatedb_py.paths import DbPaths
from slatedb_py.sst import TableCache

# Rows per crossing of a scan: large enough to amortise it, small enough to stream.
SCAN_PAGE = 1024

_BOUND_KIND = {INCLUDED: 1, EXCLUDED: 2}


def _bound(b: BytesBound) -> tuple[int, bytes | None]:
    return _BOUND_KIND.get(b.kind, 0), b.key


@dataclass(frozen=True)
class ReadView:
    memtables: tuple[_native.Memtable, ...]  # newest first
    manifest: Manifest
    paths: DbPaths
    tables: TableCache
    operator: _native.MergeOperator | None = None  # what reads fold merge operands with

    def _path(self, view: SstView) -> str:
        return self.paths.sst_in(self.manifest, view.sst.id)

    def _ref(self, view: SstView) -> tuple[Any, ...]:
        info = view.sst.info
        r = view.visible_range
        visible = None if r is None else (*_bound(r[0]), *_bound(r[1]))
        return (self._path(view), info.first_entry, info.last_entry, visible)

    def sst_paths(self) -> set[str]:
        """Every SST this view's tree reads."""
        return {self._path(v) for v in self.manifest.all_views()}

    @cached_property
    def tree(self) -> _native.Tree:
        """The native tree: memtables, then each L0 SST, then each sorted run (searched by
        bisecting on its SSTs' key ranges); segments (RFC-0024) keep their key prefix."""
        m = self.manifest
        levels: list[tuple[bytes, bool, list[tuple[Any, ...]]]] = []
        for prefix, l0, runs in [
            (b"", m.l0, m.compacted),
            *((s.prefix, s.l0, s.compacted) for s in m.segments),
        ]:
            levels.extend((prefix, False, [self._ref(v)]) for v in l0)
            levels.extend((prefix, True, [self._ref(v) for v in r.views]) for r in runs)
        return _native.Tree(self.tables.native, list(self.memtables), levels, self.operator)

    def get(self, key: bytes, snapshot_seq: int, now: int) -> bytes | None:
        return self.tables.drive(self.tree.get(key, snapshot_seq, now))

    def get_many(self, keys: _native.Bulk, snapshot_seq: int, now: int) -> list[bytes | None]:
        return self.tables.drive(self.tree.get_many(keys, snapshot_seq, now))


_SCAN_ROWS = INDEX["scans_rows_total"]

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


def check_keeps(view: ReadView, seq: int, who: str, cause: Exception | None = None) -> None:
    """Raises SnapshotTooOldError when `view`'s tree no longer keeps every version a read at
    `seq` needs (`recent_snapshot_min_seq`): `who` moved to it after its own tree was
    compacted and collected."""
    # 0 is a real value (a snapshot at seq 0 was open at the last flush: every version is
    # kept), not "unset": falling back to last_l0_seq there refused reads that were fine.
    keeps_from = view.manifest.recent_snapshot_min_seq
    if seq < keeps_from:
        raise SnapshotTooOldError(
            f"{who} reads the database as of seq {seq}; the tree it read was compacted and "
            f"collected, and the current one keeps versions only from seq {keeps_from} on: "
            "open it again"
        ) from cause


class _Pages:
    """Loads an iterator's pages for its native cursor (`_native.Cursor`): drives the native
    scan through the fetch contract, and moves to a newer tree when the one it reads was
    collected. Holds no reference to the cursor or the iterator, so an iterator is freed as
    soon as its user drops it (no cycle for the garbage collector to find)."""

    def __init__(
        self,
        view: ReadView,
        start: bytes | None,
        end: bytes | None,
        snapshot_seq: int,
        now: int,
        reverse: bool,
        newer: Callable[[ReadView], ReadView | None],
        check_usable: Callable[[], None],
    ) -> None:
        self.view: ReadView | None = view
        self.start, self.end = start, end
        self.range_start = start  # `start` moves forward with seeks; this is the range's
        self.seq, self.now, self.reverse = snapshot_seq, now, reverse
        # Raises why the owner's iterators cannot go on: closed, or failed (a fenced writer
        # raises its FencedError, as its other reads do).
        self.newer, self.check_usable = newer, check_usable
        empty = start is not None and end is not None and start >= end
        self.native = None if empty else view.tree.scan(start, end, snapshot_seq, now, reverse)
        self.page_rows = SCAN_PAGE
        # What the owner holds for this scan (the versions at its seq); let go at the end.
        self.release: Callable[[], object] | None = None

    def done(self) -> None:
        """The scan ended or was closed: the owner may stop keeping versions for it."""
        if self.release is not None:
            self.release()

    def __call__(self, last: bytes | None) -> list[tuple[bytes, bytes]]:
        """The next page of rows (empty at the end); `last` is the last key handed out."""
        page: list[tuple[bytes, bytes]] = self._load(last, lambda s: s.next_page(self.page_rows))
        return page

    def arrow(self, last: bytes | None, rows: int, nbytes: int) -> RecordBatch | None:
        """The next page as an Arrow batch of up to `rows` rows and `nbytes` bytes of keys and
        values (empty or None at the end); `last` as for `__call__`."""
        batch: RecordBatch | None = self._load(last, lambda s: s.next_arrow(rows, nbytes))
        return batch

    def _load(self, last: bytes | None, take: Callable[[_native.Scan], Any]) -> Any:
        """`take(scan)` driven through the fetch contract, moving to a newer tree when an
        object of this one is gone (the page, or None when the range is empty)."""
        self.check_usable()
        if self.view is None:
            raise ClosedError("the database this iterator reads is closed")
        metrics = self.view.tables.metrics  # one per handle: a newer view's is the same
        if self.native is None:
            self.done()
            return []
        for _ in range(READ_ATTEMPTS):
            try:
                page = self.view.tables.drive(take(self.native))
                break
            except MissingObjectError as err:
                self._move(err, last)
        else:
            page = self.view.tables.drive(take(self.native))
        if not len(page):
            self.done()
        metrics.add(_SCAN_ROWS, len(page))
        return page

    def _move(self, err: MissingObjectError, last: bytes | None) -> None:
        """Continues on the owner's newer tree after `last`, the last key returned."""
        assert self.view is not None
        view = self.newer(self.view)
        if view is None:
            raise err
        # The newer tree's compactions kept, of versions at or below some seq, only the
        # newest: reading it at an older snapshot could skip rows silently.
        check_keeps(view, self.seq, "this iterator", err)
        self.view = view
        start, end = self.start, self.end
        if last is not None:
            # After the last key handed out, and never before a seek's target (`start`).
            if self.reverse:
                end = last if end is None else min(end, last)
            else:
                start = last + b"\x00" if start is None else max(start, last + b"\x00")
        self.native = view.tree.scan(start, end, self.seq, self.now, self.reverse)


def check_seek(
    key: bytes,
    bounds: tuple[bytes | None, bytes | None],
    last: bytes | None,
    floor: bytes | None = None,
) -> None:
    """InvalidArgumentError unless an iterator over `bounds` may seek to `key`: inside the
    range, past `last` (the last key returned) and not behind `floor` (an earlier seek's
    key, or the scan's start)."""
    lo, hi = bounds
    if (lo is not None and key < lo) or (hi is not None and key >= hi):
        raise InvalidArgumentError(f"seek key {key[:64]!r} is outside the iterator's range")
    if last is not None and key <= last:
        raise InvalidArgumentError(f"seek key {key[:64]!r} is not past the last key returned")
    if floor is not None and key < floor:
        raise InvalidArgumentError(
            f"seek key {key[:64]!r} is behind the iterator's position (an earlier seek to "
            f"{floor[:64]!r}): iterators only move forward"
        )


class DbIterator:
    """A lazy iterator over `(key, value)` pairs of a range, in key order (descending when
    `reverse`). It reads as of the moment it was made: later writes are invisible to it.

    Memory is a few blocks per SST it reads, not the range: SSTs of sorted runs are opened
    when the walk reaches them, data blocks read ahead about 1 MiB at a time, and rows cross
    into Python a page at a time (a native cursor hands them out without a Python frame per
    row). If the tree it reads is compacted away and collected under it, it moves to the
    owner's newer tree and goes on after the last key it returned, or raises
    `SnapshotTooOldError` when that tree no longer keeps its snapshot.
    """

    def __init__(self, pages: _Pages) -> None:
        self._pages = pages
        self._cursor = _native.Cursor(self._pages)

    @property
    def _view(self) -> ReadView | None:
        return self._pages.view

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return self._cursor

    def __next__(self) -> tuple[bytes, bytes]:
        return next(self._cursor)

    def next_batch(self, n: int) -> list[tuple[bytes, bytes]]:
        """Up to `n` pairs (fewer at the end, or when loading the next page failed: the
        failure then comes with the next call); an empty list once finished."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidArgumentError(f"next_batch needs a positive int, not {n!r:.40}")
        self._pages.page_rows = max(SCAN_PAGE, min(n, 65_536))
        try:
            return self._cursor.take(n)
        finally:
            self._pages.page_rows = SCAN_PAGE

    def to_arrow(
        self, batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES
    ) -> ArrowBatches:
        """The rest of the scan as Arrow record batches (`key: binary, value: binary`),
        built natively, each of at most `batch_rows` rows and `batch_bytes` bytes of keys and
        values: an iterator of `RecordBatch`, and an Arrow stream for pyarrow, polars or
        DuckDB (`slatedb_py.columnar`). Memory stays bounded whatever the range. The rows
        go to the batches: iterating this iterator afterwards finds none left."""
        check_batch_size(batch_rows, batch_bytes)
        p = self._pages
        first = self._cursor.buffered()
        last = self._cursor.last
        load = lambda k: p.arrow(k, batch_rows, batch_bytes)
        return ArrowBatches(first, batch_rows, batch_bytes, load, last)

    def seek(self, key: bytes) -> None:
        """Moves forward to the first key >= `key`, which must lie inside the iterator's range,
        after the last key returned and not before an earlier seek's key (InvalidArgumentError
        otherwise)."""
        k = check_key(key)
        p = self._pages
        p.check_usable()
        if p.view is None:
            raise ClosedError("the database this iterator reads is closed")
        if p.reverse:
            raise InvalidArgumentError("a descending iterator cannot seek")
        check_seek(k, (p.range_start, p.end), self._cursor.last, p.start)
        # A move to a newer tree later must not bring back rows below the target.
        p.start = k
        # Buffered rows before the target are skipped without a crossing.
        if p.native is None or self._cursor.skip_below(k):
            return
        p.native.seek(k)

    def close(self) -> None:
        """Ends the iterator with its database: the buffered rows go, and so does what it
        read (its scan, and the view's SST handles and open files); later use raises
        ClosedError. Never waits for a page load under way in another thread."""
        self._cursor.invalidate()
        self._pages.native = None
        self._pages.view = None
        self._pages.done()
