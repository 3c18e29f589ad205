"""`Db`: the writer. Open, write, read, flush, recover and fence, on any object store.

Data flow (DESIGN.md): a write gets the next sequence number and goes into the active native
memtable, which also queues it for the WAL. The queue becomes `wal/<id>.sst` every
`flush_interval`, or at once when a caller waits for durability (group commit: whoever
uploads takes everything queued, and concurrent waiters share that upload). When the memtable
passes `l0_sst_size_bytes` it is frozen and written to `compacted/<ULID>.sst`, and a new
manifest version records the L0 SST and the WAL replay point. Opening replays the WAL written
after that point.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from slatedb_py import checkpoint
from slatedb_py.batch import (
    ttl_ms,
)
from slatedb_py.checkpoint import CheckpointCreateResult
from slatedb_py.clock import Clock, SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, check_options
from slatedb_py.errors import (
    ClosedError,
    ConflictError,
    FencedError,
    InvalidArgumentError,
    SlateDBError,
    UnavailableError,
)
from slatedb_py.flusher import Flusher
from slatedb_py.garbage_collector import collect_garbage
from slatedb_py.manifest.fence import WriterFence
from slatedb_py.manifest.model import I64_MIN, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.memtable import new_memtable
from slatedb_py.merge import engine_operator
from slatedb_py.paths import DbPaths
from slatedb_py.read_path import DbIterator, ReadView, _Pages
from slatedb_py.reads import Reads
from slatedb_py.snapshot import DbSnapshot, SnapshotRegistry
from slatedb_py.sst import TableCache
from slatedb_py.store import Store
from slatedb_py.time_travel import record_retention
from slatedb_py.transaction import DbTransaction, IsolationLevel
from slatedb_py.txn_conflicts import ConflictTracker
from slatedb_py.wal import fence_ids, list_wal_objects, replay_into, write_fence
from slatedb_py.wal_writer import WalWriter
from slatedb_py.writes import Writes

_log = logging.getLogger("slatedb_py.db")


class Db(Reads, Writes):
    """A SlateDB database opened as its (single) writer. Thread-safe."""

    # ------------------------------------------------------------------ opening

    @classmethod
    def open_with_opts(cls, path: str, options: DbOptions, store: Any) -> Db:
        """Opens (creating if needed) the database at `path` on `store` (the seed's order)."""
        return cls(path, store, options)

    @classmethod
    def open(
        cls, path: str, store: Any, options: DbOptions | None = None, *, clock: Clock | None = None
    ) -> Db:
        return cls(path, store, options, clock=clock)

    def __init__(
        self, path: str, store: Any, options: DbOptions | None = None, *, clock: Clock | None = None
    ) -> None:
        # Every argument is checked before the store is touched.
        self._paths = DbPaths.of(path)
        self.options = check_options(options, DbOptions)
        self._default_ttl = ttl_ms(self.options.default_ttl, "default_ttl")  # whole ms, or None
        self._operator = engine_operator(self.options.merge_operator)
        self._l0_size = self.options.l0_sst_size_bytes
        # The active memtable may use half the unflushed budget; frozen ones the rest.
        self._memtable_memory = self.options.max_unflushed_bytes // 2
        self._clock = clock or SystemClock()
        self._store = Store.resolve(store)
        self._manifests = ManifestStore(self._store, self._paths, self._clock)
        self._fence = WriterFence(self._manifests)
        self._tables = TableCache.for_options(self._store, self.options)
        self._lock = threading.Lock()
        self._error: SlateDBError | None = None
        self._closed = False
        self._iterators: weakref.WeakSet[DbIterator] = weakref.WeakSet()  # closed with the Db
        self._snapshots = SnapshotRegistry()  # what flushes keep versions for
        self._txns = ConflictTracker()  # open transactions and the writes they may conflict with
        # Ingests under way (`slatedb_py.ingest`): snapshots, scans and transactions wait.
        self._ingesting = 0
        self._ingest_done = threading.Condition(self._lock)

        self._manifests.refuse_if_deleting()  # before anything is created there
        _, existing = self._manifests.create_if_absent(Manifest())
        if existing.segments or existing.segment_extractor_name is not None:
            raise InvalidArgumentError(
                f"the database at {self._paths.root!r} uses segments (a segment extractor); "
                "slatedb_py can read it (DbReader) but not write it yet"
            )
        self._manifest_id, self._manifest = self._fence.claim()
        m = self._manifest
        listed = list_wal_objects(self._store, self._paths, after=m.replay_after_wal_id)
        frontier = max([m.replay_after_wal_id, *(wid for wid, _ in listed)])
        fence_id = write_fence(self._store, self._paths, frontier, self._fence)
        self._active = new_memtable(self._memtable_memory)
        max_seq = replay_into(
            self._active,
            self._store,
            self._paths,
            m.replay_after_wal_id + 1,
            fence_id - 1,
            m.last_l0_seq,
            # Earlier writers' fences hold no rows: not read (a GET each, after every open).
            skip=fence_ids(listed),
        )
        self._last_seq = max_seq
        # Replayed rows offer no tracker points (0.17.0 records at commit only).
        self._seq_points, self._seq_due = [], I64_MIN
        self._last_tick = max(
            m.last_l0_clock_tick, self._active.max_create_ts or m.last_l0_clock_tick
        )
        self._wal = WalWriter(self, fence_id + 1, max_seq)
        self._flusher = Flusher(self)
        _log.info(
            "opened %r as its writer: epoch %d, manifest %d, WAL replayed up to seq %d",
            self._paths.root, m.writer_epoch, self._manifest_id, max_seq,
        )  # fmt: skip
        self._view = self._make_view()

        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        interval = self.options.flush_interval
        if interval is not None:
            self._start(self._wal.run_ticker, "slatedb-wal", self._stop, interval)
        self._start(self._flusher.run, "slatedb-flush", self._stop)
        self._compactor = Compactor(
            self._store, self._paths, self.options, self._clock, self._tables, self._manifests
        )
        self._compactor.on_commit = self._compacted
        if self.options.compactor_enabled:
            self._start(self._compactor.run_forever, "slatedb-compactor")
        gc = self.options.gc or GcOptions()
        if self.options.history_retention is not None:
            # Recorded, so that every collector of the database keeps it (time_travel).
            record_retention(self._store, self._paths, self.options.history_retention)
            gc = replace(gc, history_retention=self.options.history_retention)
        if self.options.gc_enabled and gc.interval is not None:
            self._start(self._collector, "slatedb-gc", gc)

    def _start(self, target: Callable[..., None], name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _make_view(self) -> ReadView:
        mts = (self._active, *(f.memtable for f in self._flusher.frozen))
        return ReadView(mts, self._manifest, self._paths, self._tables, self._operator)

    # ------------------------------------------------------------------ state checks

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ClosedError(f"database {self._paths.root!r} is closed")

    def _fail(self, err: SlateDBError) -> SlateDBError:
        with self._lock:
            first = self._error is None
            if first:
                self._error = err
            error = self._error
            assert error is not None
        if first:
            level = logging.WARNING if isinstance(err, FencedError) else logging.ERROR
            _log.log(level, "writer of %r stopped: %s", self._paths.root, err)
        self._wal.durable.fail()
        return error

    def begin(self, isolation: IsolationLevel = IsolationLevel.SNAPSHOT) -> DbTransaction:
        """A transaction reading as of now plus its own writes; its commit applies them with
        one seq or raises TransactionConflictError (`transaction.DbTransaction`)."""
        return DbTransaction(self, isolation)

    def _collector(self, options: GcOptions) -> None:
        assert options.interval is not None
        while not self._stop.wait(options.interval.total_seconds()):
            try:
                collect_garbage(self._store, self._paths, options, self._clock)
            except UnavailableError:
                continue
            except SlateDBError:
                return

    # ------------------------------------------------------------------ public flushes

    def flush(self) -> None:
        """Makes every write so far durable (uploads the WAL now)."""
        self._check_open()
        with self._lock:
            target = self._last_seq
        self._wal.await_durable(target)

    def flush_memtable(self) -> None:
        """Writes the memtable out as an L0 SST now and records it in the manifest."""
        self._check_open()
        self._flusher.freeze()
        self._flusher.flush_frozen()

    # ------------------------------------------------------------------ reads

    def _read_state(self) -> tuple[ReadView, int]:
        if self._error is not None or self._closed:
            self._check_open()
        # Reading two attributes is atomic under the GIL; the view and seq may be a write
        # apart, which only makes the read as of a slightly earlier or later moment.
        return self._view, self._last_seq

    def _scan_state(self) -> tuple[ReadView, int]:
        # Under the lock: a freeze between reading the view and the sequence number would put
        # rows at or below that number outside the view, and a scan that later moves to a
        # newer view would then show half of a batch.
        self._check_open()
        with self._lock:
            # An ingest's rows are not in the tree until it ends, though its seq is taken.
            while self._ingesting:
                self._ingest_done.wait()
            return self._view, self._last_seq

    def _hold(self, pages: _Pages, seq: int) -> None:
        # A scan pins its seq like a snapshot: flushes and compactions keep what it reads, so
        # it survives the collector; released when it ends, is closed or is dropped.
        pages.release = self._snapshots.hold(pages, seq)

    def snapshot(self) -> DbSnapshot:
        """A consistent read view at this instant: writes after it are invisible to it, and
        flushes and compactions keep the versions it reads until it is closed."""
        view, seq = self._scan_state()
        return DbSnapshot(
            view, seq, self._clock, self._newer, self, self._snapshots, self._paths.root
        )

    def _check_usable(self) -> None:
        self._check_open()

    def _is_open(self) -> bool:
        return self._error is None and not self._closed

    def compact(self) -> None:
        """Full compaction now: the memtable is flushed, then every L0 SST and sorted run is
        merged into one sorted run (tombstones, expired rows and old versions dropped)."""
        self._check_open()
        self.flush_memtable()
        try:
            self._compactor.run_once(full=True)
        except FencedError as e:
            raise FencedError(f"compaction of {self._paths.root!r}: {e}") from e
        except ConflictError:
            # The tree changed under it: a restore, which also fenced this writer (say so),
            # or another compactor (then the conflict itself is the answer).
            try:
                self._fence.confirm()
            except FencedError as e:
                raise self._fail(e) from e
            raise

    def _compacted(self, result: tuple[int, Manifest]) -> None:
        """The compactor committed: read through the new tree from now on."""
        mid, m = result
        with self._lock:
            if mid > self._manifest_id:
                self._manifest_id, self._manifest = mid, m
                self._view = self._make_view()
            view = self._view
        # SSTs the tree no longer names are closed and leave the cache (reads still on the
        # old tree hold their own references).
        self._tables.retain(view.sst_paths())

    def _newer(self, view: ReadView) -> ReadView | None:
        """After a read of `view` found an SST missing: the tree moved on (a compactor
        committed, maybe a standalone one this writer has not heard of) and the collector took
        what only the old tree needed. Reads through the latest tree from now on; returns its
        view, or None when it is `view` itself (`read_path.read_again`)."""
        mid, m = self._manifests.require_latest()
        self._fence.check(m)
        self._compacted((mid, m))
        return None if self._view is view else self._view

    # ------------------------------------------------------------------ checkpoints

    def create_checkpoint(self, options: CheckpointOptions | None = None) -> CheckpointCreateResult:
        """Flushes everything written so far to an L0 SST, then pins that state."""
        options = check_options(options, CheckpointOptions)  # before the flush writes anything
        self._check_open()
        self.flush_memtable()
        return checkpoint.add_checkpoint(
            self._manifests, options, self._clock, update=self._fence.update
        )

    @staticmethod
    def refresh_checkpoint(
        path: str,
        store: Any,
        checkpoint_id: uuid.UUID,
        lifetime: timedelta | None = None,
        *,
        clock: Clock | None = None,
    ) -> checkpoint.Checkpoint:
        """Sets the checkpoint's expiry to now + `lifetime` (None: never expires)."""
        return checkpoint.renew_checkpoint(
            ManifestStore(Store.resolve(store), DbPaths.of(path)),
            checkpoint_id,
            lifetime,
            clock or SystemClock(),
        )

    @staticmethod
    def delete_checkpoint(path: str, store: Any, checkpoint_id: uuid.UUID) -> None:
        """Removes the checkpoint; the collector may then reclaim what only it pinned."""
        checkpoint.remove_checkpoint(
            ManifestStore(Store.resolve(store), DbPaths.of(path)), checkpoint_id
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Makes everything durable, writes the memtable as an L0 SST, and closes."""
        if self._closed:
            return
        try:
            if self._error is None:
                self.flush_memtable()
        finally:
            self._closed = True
            self._close_iterators()
            self._stop.set()
            self._flusher.wanted.set()
            self._compactor.stop.set()
            self._compactor.wake.set()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(timeout=10)
            # Open SST files and cached blocks go now: the registry lets go of them, and so
            # does the view (its tree holds the handles); reads after close raise first.
            self._tables.retain(set())
            self._view = None  # type: ignore[assignment]

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._paths.root

    def metrics(self) -> dict[str, int | float]:
        """A snapshot of this writer's metrics (`slatedb_py.metrics` names them): writes,
        reads, scans, WAL uploads, L0 flushes and compactions (counts and bytes), block
        cache hits and misses, store requests by kind with retries, durable-wait latency,
        and gauges of the tree (L0 SSTs, sorted runs, the last and durable seq, memtable
        bytes). Counters only go up while the handle is open."""
        out = self._store.metrics.snapshot()
        out.update(self.write_metrics())
        out.update(self._tables.block_cache_gauges())
        with self._lock:
            m = self._manifest
            out["last_seq"] = self._last_seq
            out["memtable_bytes"] = self._active.size_bytes
        out["durable_seq"] = self._wal.durable.durable
        out["l0_ssts"] = len(m.l0)
        out["sorted_runs"] = len(m.compacted)
        return out

    def manifest(self) -> tuple[int, Manifest]:
        """The manifest version this writer last wrote or read, and its contents."""
        with self._lock:
            return self._manifest_id, self._manifest
