"""`DbReader`: a read-only view of a database, following its writer or pinned to a checkpoint.

Following: the view is the latest manifest's tree plus the WAL written after it (so writes
are visible as soon as they are durable); `refresh()` (and a polling thread, when
`manifest_poll_interval` is set) picks up new WAL objects and manifests.
Pinned (`checkpoint_id=`): the checkpoint's manifest plus its WAL range, never changing.
At a time (`as_of=when`, `slatedb_py.time_travel`): the database exactly as it was at `when`,
never changing (TTLs are evaluated at the time of each read, as always).

A following reader holds its own short-lived checkpoint of the version it reads (FORMAT 5.1,
"managed" mode), so the garbage collector cannot delete files under it; it moves that
checkpoint when the writer changes the tree, refreshes it at half-life, re-creates it if it
was reaped, and deletes it on close. `ReaderOptions(managed_checkpoint=False)` writes nothing.
A checkpoint-pinned reader writes nothing. A reader at a time holds a checkpoint of the
version it reads (unless `managed_checkpoint=False`), renewed at half-life by its polling
thread and deleted on close: the WAL tail it needs is read when it opens.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from dataclasses import replace
from datetime import datetime
from typing import Any

from slatedb_py import time_travel
from slatedb_py.checkpoint import (
    add_checkpoint,
    is_live,
    remove_checkpoint,
    renew_checkpoint,
    resolve,
)
from slatedb_py.clock import Clock, SystemClock, monotonic_s
from slatedb_py.config import CheckpointOptions, ReaderOptions, check_options
from slatedb_py.errors import (
    CheckpointNotFoundError,
    ClosedError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingObjectError,
    UnavailableError,
)
from slatedb_py.manifest.model import CheckpointEntry, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.memtable import new_memtable
from slatedb_py.merge import engine_operator
from slatedb_py.paths import DbPaths
from slatedb_py.read_path import DbIterator, ReadView
from slatedb_py.reads import Reads
from slatedb_py.snapshot import DbSnapshot
from slatedb_py.sst import TableCache
from slatedb_py.store import Store
from slatedb_py.wal import fence_ids, list_wal_objects, replay_into

_log = logging.getLogger("slatedb_py.reader")

# Fresh starts of one load whose files were collected under it, before giving up.
LOAD_ATTEMPTS = 5
# How often a following reader looks at the manifest (`DbReader._follow`); its polls in between
# cost one short LIST of the WAL.
REBASE_S = 30.0


def _tree(m: Manifest) -> tuple[object, ...]:
    """What a reader's view depends on in a manifest (not its checkpoints)."""
    return (m.l0, m.compacted, m.segments, m.replay_after_wal_id, m.last_l0_seq, m.external_dbs)


class DbReader(Reads):
    @classmethod
    def open(
        cls,
        path: str,
        store: Any,
        checkpoint_id: uuid.UUID | None = None,
        options: ReaderOptions | None = None,
        *,
        as_of: datetime | None = None,
        clock: Clock | None = None,
        backup_id: uuid.UUID | None = None,
    ) -> DbReader:
        """`backup_id`: read that backup of the backup location at `path` (a backup is a
        checkpoint there, `slatedb_py.backup`), instead of `checkpoint_id`."""
        if backup_id is not None:
            if checkpoint_id is not None:
                raise InvalidArgumentError("pass checkpoint_id or backup_id, not both")
            checkpoint_id = backup_id
        return cls(path, store, checkpoint_id, options, as_of=as_of, clock=clock)

    def __init__(
        self,
        path: str,
        store: Any,
        checkpoint_id: uuid.UUID | None = None,
        options: ReaderOptions | None = None,
        *,
        as_of: datetime | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Every argument is checked before the store is touched (a following reader writes
        # its managed checkpoint while it loads).
        self._paths = DbPaths.of(path)
        if checkpoint_id is not None and not isinstance(checkpoint_id, uuid.UUID):
            raise InvalidTypeError(
                "checkpoint_id must be a uuid.UUID, "
                f"not {type(checkpoint_id).__name__} {checkpoint_id!r:.60}"
            )
        self.options = check_options(options, ReaderOptions)
        self._as_of = None if as_of is None else time_travel.when_ms(as_of)
        if as_of is not None and checkpoint_id is not None:
            raise InvalidArgumentError("a reader takes checkpoint_id or as_of, not both")
        self._operator = engine_operator(self.options.merge_operator)
        # Reads at a time evaluate TTLs now, as every read does (`slatedb_py.time_travel`).
        self._clock = clock or SystemClock()
        self._store = Store.resolve(store)
        self._manifests = ManifestStore(self._store, self._paths, self._clock)
        self._tables = TableCache.for_options(self._store, self.options)
        self._checkpoint_id = checkpoint_id
        self._own: uuid.UUID | None = None  # the managed checkpoint of a following reader
        self._lock = threading.Lock()
        self._load_lock = threading.RLock()
        self._closed = False
        self._iterators: weakref.WeakSet[DbIterator] = weakref.WeakSet()  # closed with the reader
        self._manifest_id = 0
        self._next_wal = 0
        self._last_seq = 0
        self._memtable: Any = None
        self._floor = 0  # the last_l0_seq of the tree read: WAL rows above it are replayed
        self._loaded_at = 0.0  # when the view was last loaded from a manifest (monotonic s)
        self._rebase_s = min(REBASE_S, self.options.checkpoint_lifetime.total_seconds() / 4)
        self._view: ReadView | None = None
        self._pin: CheckpointEntry | None = None  # a reader at a time: its checkpoint
        self._manifests.refuse_if_deleting()
        if as_of is None:
            self._load()
        else:
            self._load_at(as_of)
        _log.info(
            "opened a reader of %r at manifest %d, seq %d%s", self._paths.root,
            self._manifest_id, self._last_seq, "" if as_of is None else f" (as of {as_of})",
        )  # fmt: skip
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        interval = self.options.manifest_poll_interval
        if checkpoint_id is None and interval is not None:
            self._poller = threading.Thread(target=self._poll, name="slatedb-reader", daemon=True)
            self._poller.start()

    def _load_at(self, when: datetime) -> None:
        """Loads the view of the database at `when` (`slatedb_py.time_travel`), once."""
        memtable = new_memtable()
        life = self.options.checkpoint_lifetime if self.options.managed_checkpoint else None
        point, self._pin, cut = time_travel.open_at(
            self._manifests, when, self._clock, memtable, lifetime=life
        )
        self._own = None if self._pin is None else self._pin.id
        self._manifest_id = point.manifest_id
        self._memtable = memtable
        self._last_seq = cut
        m = point.manifest
        self._view = ReadView((memtable,), m, self._paths, self._tables, self._operator)
        self._tables.retain(self._view.sst_paths())

    def _renew(self) -> None:
        """Keeps a reader at a time's checkpoint alive (at half its lifetime)."""
        pin = self._pin
        if pin is None:
            return
        now_s = self._clock.now_ms() // 1000
        life = self.options.checkpoint_lifetime
        if pin.expire_time_s - now_s >= life.total_seconds() / 2:
            return
        renew_checkpoint(self._manifests, pin.id, life, self._clock)
        self._pin = replace(pin, expire_time_s=now_s + int(life.total_seconds()))

    def _pinned(self) -> tuple[int, Manifest, int]:
        assert self._checkpoint_id is not None
        mid, m = resolve(self._manifests, self._checkpoint_id, self._clock.now_ms() // 1000)
        return mid, m, m.wal_id_last_seen

    def _managed(self) -> tuple[int, Manifest]:
        """The version this reader's own checkpoint pins, moved to the latest tree when the
        writer changed it, refreshed at half-life, re-created if the collector reaped it."""
        now_s = self._clock.now_ms() // 1000
        life = self.options.checkpoint_lifetime
        lid, latest = self._manifests.require_latest()
        entry = latest.checkpoint(self._own) if self._own is not None else None
        if entry is None or not is_live(entry, now_s):
            cp = add_checkpoint(self._manifests, CheckpointOptions(lifetime=life), self._clock)
            self._own = cp.id
            return cp.manifest_id, self._read_pinned(cp.manifest_id)
        current = self._manifests.read(entry.manifest_id) if entry.manifest_id != lid else latest
        stale = current is None or _tree(current) != _tree(latest)
        due = entry.expire_time_s - now_s < life.total_seconds() / 2
        if not stale and not due:
            assert current is not None
            return entry.manifest_id, current
        own = self._own
        assert own is not None  # `entry` was found by it

        def repoint(mid: int, m: Manifest) -> tuple[Manifest, None]:
            e = m.checkpoint(own)
            if e is None:
                raise CheckpointNotFoundError(
                    f"reader checkpoint {own} vanished", checkpoint_id=own
                )
            new = replace(
                e,
                manifest_id=mid + 1 if stale else e.manifest_id,
                expire_time_s=now_s + int(life.total_seconds()),
            )
            checkpoints = tuple(new if c.id == own else c for c in m.checkpoints)
            return replace(m, checkpoints=checkpoints), None

        try:
            mid, m, _ = self._manifests.update(repoint)
        except CheckpointNotFoundError:
            self._own = None
            return self._managed()
        pinned = m.checkpoint(own)
        assert pinned is not None
        if pinned.manifest_id == mid:
            return mid, m
        return pinned.manifest_id, self._read_pinned(pinned.manifest_id)

    def _read_pinned(self, manifest_id: int) -> Manifest:
        m = self._manifests.read(manifest_id)
        if m is None:  # only a collector that ignores live checkpoints does this; start over
            raise MissingObjectError(
                f"manifest {manifest_id} pinned by this reader's checkpoint is gone",
                object=self._paths.manifest(manifest_id),
            )
        return m

    def _load(self) -> None:
        """Loads the view to read (serialized: the poller and `refresh()` may race). A
        following reader whose WAL tail or tree was collected while it was loading (the writer
        moved the tree on and a collector took what only the old one needed) starts over from
        the newer tree."""
        with self._load_lock:
            for attempt in range(LOAD_ATTEMPTS):
                try:
                    self._load_once(rebuild=attempt > 0)
                    return
                except MissingObjectError:
                    if self._checkpoint_id is not None or attempt == LOAD_ATTEMPTS - 1:
                        raise

    def _load_once(self, *, rebuild: bool) -> None:
        looked_at = monotonic_s(self._clock)
        fences: frozenset[int] = frozenset()
        if self._checkpoint_id is not None:
            mid, m, last_wal = self._pinned()
        else:
            if self.options.managed_checkpoint:
                mid, m = self._managed()
            else:
                mid, m = self._manifests.require_latest()
            listed = list_wal_objects(self._store, self._paths, after=m.replay_after_wal_id)
            last_wal = max([m.replay_after_wal_id, *(wid for wid, _ in listed)])
            fences = fence_ids(listed)
        if rebuild or mid != self._manifest_id or self._memtable is None:
            # A new tree: rebuild the in-memory part from the new replay point.
            memtable = new_memtable()
            first = m.replay_after_wal_id + 1
            last_seq = m.last_l0_seq
        else:
            memtable = self._memtable
            first = self._next_wal
            last_seq = self._last_seq
        max_seq = replay_into(
            memtable, self._store, self._paths, first, last_wal, m.last_l0_seq, skip=fences
        )
        with self._lock:
            self._manifest_id = mid
            self._memtable = memtable
            self._next_wal = last_wal + 1
            self._last_seq = max(last_seq, max_seq)
            self._floor = m.last_l0_seq
            self._loaded_at = looked_at
            self._view = ReadView((memtable,), m, self._paths, self._tables, self._operator)
        self._tables.retain(self._view.sst_paths())

    def _follow(self) -> None:
        """One poll of a following reader: one short LIST of the WAL past what it replayed,
        then the new objects' rows. Reads stay whole meanwhile: the tree read, plus every row
        replayed since its replay point, hold everything durable. The manifest is looked at
        (`_load`) only every `_rebase_s` (to read through the newer tree, and to renew a
        managed checkpoint before half its lifetime), or when the WAL past the last object
        replayed is not there whole."""
        with self._load_lock:
            if self._memtable is None or monotonic_s(self._clock) - self._loaded_at >= (
                self._rebase_s
            ):
                self._load()
                return
            first = self._next_wal
            listed = list_wal_objects(self._store, self._paths, after=first - 1)
            if not listed:
                return
            last = listed[-1][0]
            if listed[0][0] != first:  # collected below: its rows are in a newer tree
                self._load()
                return
            try:
                seq = replay_into(
                    self._memtable, self._store, self._paths, first, last, self._floor,
                    skip=fence_ids(listed),
                )  # fmt: skip
            except MissingObjectError:  # collected between the LIST and its GET
                self._load()
                return
            with self._lock:
                self._next_wal = last + 1
                self._last_seq = max(self._last_seq, seq)

    def refresh(self) -> None:
        """Picks up what the writer made durable since the last look (no-op when pinned)."""
        self._check_open()
        if self._checkpoint_id is None and self._as_of is None:
            self._load()

    def _poll(self) -> None:
        interval = self.options.manifest_poll_interval
        assert interval is not None
        while not self._stop.wait(interval.total_seconds()):
            try:
                if self._as_of is not None:
                    self._renew()
                else:
                    self._follow()
            except Exception:  # keep serving the last good view; refresh() raises the error
                continue

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"reader of {self._paths.root!r} is closed")

    def _read_state(self) -> tuple[ReadView, int]:
        self._check_open()
        with self._lock:
            assert self._view is not None
            return self._view, self._last_seq

    def _newer(self, view: ReadView) -> ReadView | None:
        """After a read of `view` found an object missing: a following reader loads the
        latest tree (the old one's files may be collected once the writer moved on) and
        returns its view; None when pinned or nothing is newer (`read_path.read_again`)."""
        if self._checkpoint_id is not None or self._as_of is not None:
            return None
        self._load()
        return None if self._view is view else self._view

    def snapshot(self) -> DbSnapshot:
        """A consistent read view of what this reader sees now. The writer does not know of
        it: if the tree it reads is compacted and collected and the newer tree no longer
        keeps its versions, its reads raise SnapshotTooOldError rather than answer wrongly."""
        view, seq = self._read_state()
        return DbSnapshot(view, seq, self._clock, self._newer, self, None, self._paths.root)

    def _is_open(self) -> bool:
        return not self._closed

    @property
    def manifest_id(self) -> int:
        return self._manifest_id

    def metrics(self) -> dict[str, int | float]:
        """A snapshot of this reader's metrics (`Db.metrics` lists them; the writer's own
        counts are absent): reads, scans, block cache, store requests."""
        out = self._store.metrics.snapshot()
        out.update(self._tables.block_cache_gauges())
        out["manifest_id"] = self._manifest_id
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_iterators()
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(timeout=5)
        # Open SST files and cached blocks go now (the view's tree holds the handles too).
        self._tables.retain(set())
        with self._lock:
            self._view = None
        if self._own is not None:
            try:
                remove_checkpoint(self._manifests, self._own)
            except (CheckpointNotFoundError, UnavailableError):
                pass  # reaped already, or the store is down: it expires on its own

    def __enter__(self) -> DbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
