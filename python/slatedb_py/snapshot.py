"""Snapshots: a consistent read view at one instant (`Db.snapshot()`, `DbReader.snapshot()`).

A snapshot keeps the view it was taken on (memtables and tree) and its sequence number, and
reads through the shared read surface (`reads.Reads`). While it is open, the writer keeps the
versions it can see: every L0 flush keeps, per key, all versions above the oldest open
snapshot's sequence number and the newest at or below it, and records that number as the
manifest's `recent_snapshot_min_seq`, which compactions keep versions for (as SlateDB does).
So when the snapshot's own SSTs are compacted and collected, its reads move to the newer tree
at the same sequence number and find the same rows. Closing it releases them.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable

from slatedb_py.clock import Clock
from slatedb_py.errors import ClosedError
from slatedb_py.read_path import DbIterator, ReadView, check_keeps
from slatedb_py.reads import Reads


class SnapshotRegistry:
    """The sequence numbers open snapshots read at; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seqs: dict[int, int] = {}
        self._ids = itertools.count()

    def hold(self, owner: object, seq: int) -> Callable[[], object]:
        """Keeps the versions at `seq` for `owner` until the returned finalizer is called,
        or `owner` is dropped (whichever comes first; calling it again does nothing)."""
        with self._lock:
            token = next(self._ids)
            self._seqs[token] = seq
        return weakref.finalize(owner, self._release, token)

    def _release(self, token: int) -> None:
        with self._lock:
            self._seqs.pop(token, None)

    def oldest(self) -> int | None:
        """The lowest sequence number an open snapshot reads at, or None."""
        with self._lock:
            return min(self._seqs.values(), default=None)


class DbSnapshot(Reads):
    """A read-only view of the database as of one sequence number; a context manager.

    Reads: `get`, `get_many`, `scan`, `scan_prefix` (`reads.Reads`)."""

    def __init__(
        self,
        view: ReadView,
        seq: int,
        clock: Clock,
        newer: Callable[[ReadView], ReadView | None],
        owner: Reads,
        registry: SnapshotRegistry | None,
        name: str,
    ) -> None:
        self._view = view
        self._last_seq = seq  # reads and their retries are at this number, always
        self._clock = clock
        self._owner_newer = newer
        self._owner = owner  # its failure (a fenced writer's) is what reads here raise
        self._name = name
        self._closed = False
        self._iterators: weakref.WeakSet[DbIterator] = weakref.WeakSet()
        # What close() (or dropping the snapshot) releases; a reader's snapshot holds nothing.
        self._release = None if registry is None else registry.hold(self, seq)

    @property
    def seq(self) -> int:
        """The sequence number this snapshot reads at."""
        return self._last_seq

    def _is_open(self) -> bool:
        return not self._closed and self._owner._is_open()

    def _check_usable(self) -> None:
        if self._closed:
            raise ClosedError("the snapshot is closed")
        self._owner._check_usable()

    def _read_state(self) -> tuple[ReadView, int]:
        self._check_usable()
        return self._view, self._last_seq

    def _scan_state(self) -> tuple[ReadView, int]:
        return self._read_state()

    def _newer(self, view: ReadView) -> ReadView | None:
        moved = self._owner_newer(view)
        if moved is None:
            return None
        check_keeps(moved, self._last_seq, f"this snapshot of {self._name}")
        self._view = moved
        return moved

    def close(self) -> None:
        """Releases the versions this snapshot kept; reads after close raise ClosedError."""
        if self._closed:
            return
        self._closed = True
        self._close_iterators()
        if self._release is not None:
            self._release()

    def __enter__(self) -> DbSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
