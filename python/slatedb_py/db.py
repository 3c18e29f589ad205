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

import threading
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from slatedb_py import checkpoint
from slatedb_py.batch import MAX_KEY, WriteBatch, check_key, check_keys, check_value, ttl_ms
from slatedb_py.checkpoint import CheckpointCreateResult
from slatedb_py.clock import Clock, SystemClock, monotonic_s
from slatedb_py.compactor import Compactor
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, _flag, check_options
from slatedb_py.errors import (
    ClosedError,
    ConflictError,
    FencedError,
    InvalidArgumentError,
    MissingObjectError,
    SlateDBError,
    UnavailableError,
)
from slatedb_py.fetch import Fetch
from slatedb_py.garbage_collector import run_gc_once
from slatedb_py.ids import new_ulid
from slatedb_py.manifest.model import Manifest, SstHandle, SstTableInfo, SstView
from slatedb_py.manifest.store import ManifestStore, WriterFence
from slatedb_py.memtable import new_durable_watermark, new_memtable
from slatedb_py.paths import DbPaths
from slatedb_py.read_path import DbIterator, ReadView, read_again
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.sst import TableCache
from slatedb_py.store import Store
from slatedb_py.wal import list_wal_ids, replay_into, write_fence


@dataclass
class _Frozen:
    memtable: Any
    last_wal_id: int  # every row of the memtable is in WAL objects <= this id


class Db:
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
        self._l0_size = self.options.l0_sst_size_bytes
        # The active memtable may use half the unflushed budget; frozen ones the rest.
        self._memtable_memory = self.options.max_unflushed_bytes // 2
        self._clock = clock or SystemClock()
        self._store = Store.resolve(store)
        self._manifests = ManifestStore(self._store, self._paths, self._clock)
        self._fence = WriterFence(self._manifests)
        self._tables = TableCache.for_options(self._store, self.options)
        self._lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one L0 flush at a time, oldest memtable first
        self._error: SlateDBError | None = None
        self._closed = False
        self._iterators: weakref.WeakSet[DbIterator] = weakref.WeakSet()  # closed with the Db

        _, existing = self._manifests.create_if_absent(Manifest())
        if existing.segments or existing.segment_extractor_name is not None:
            raise InvalidArgumentError(
                f"the database at {self._paths.root!r} uses segments (a segment extractor); "
                "slatedb_py can read it (DbReader) but not write it yet"
            )
        self._manifest_id, self._manifest = self._fence.claim()
        m = self._manifest
        listed = list_wal_ids(self._store, self._paths, after=m.replay_after_wal_id)
        frontier = max([m.replay_after_wal_id, *listed])
        fence_id = write_fence(self._store, self._paths, frontier, self._fence)
        self._active = new_memtable(self._memtable_memory)
        max_seq = replay_into(
            self._active,
            self._store,
            self._paths,
            m.replay_after_wal_id + 1,
            fence_id - 1,
            m.last_l0_seq,
        )
        self._frozen: list[_Frozen] = []  # newest first
        self._unsent: list[
            tuple[bytes, int]
        ] = []  # encoded WAL chunks not yet stored, oldest first
        self._next_wal_id = fence_id + 1
        self._last_wal_id = fence_id
        self._last_seq = max_seq
        self._durable = new_durable_watermark(max_seq)
        self._last_tick = max(
            m.last_l0_clock_tick, self._active.max_create_ts or m.last_l0_clock_tick
        )
        self._view = self._make_view()

        self._stop = threading.Event()
        self._flush_wanted = threading.Event()
        self._threads: list[threading.Thread] = []
        if self.options.flush_interval is not None:
            self._start(self._wal_ticker, "slatedb-wal")
        self._start(self._flusher, "slatedb-flush")
        self._compactor = Compactor(
            self._store, self._paths, self.options, self._clock, self._tables
        )
        self._compactor.on_commit = self._compacted
        if self.options.compactor_enabled:
            self._start(self._compactor.run_forever, "slatedb-compactor")
        gc = self.options.gc or GcOptions()
        if self.options.gc_enabled and gc.interval is not None:
            self._gc_options = gc
            self._start(self._collector, "slatedb-gc")

    def _start(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _make_view(self) -> ReadView:
        mts = (self._active, *(f.memtable for f in self._frozen))
        return ReadView(mts, self._manifest, self._paths, self._tables)

    # ------------------------------------------------------------------ state checks

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ClosedError(f"database {self._paths.root!r} is closed")

    def _fail(self, err: SlateDBError) -> SlateDBError:
        with self._lock:
            if self._error is None:
                self._error = err
        self._durable.fail()
        return self._error

    # ------------------------------------------------------------------ writes

    def _tick(self) -> int:
        """The write timestamp; the caller holds `_lock`. The DB clock never goes backwards,
        even if the wall clock does."""
        now = self._clock.now_ms()
        if now > self._last_tick:
            self._last_tick = now
        return self._last_tick

    def _expire(self, create_ts: int, ttl: int | None) -> int | None:
        if ttl is None:
            ttl = self._default_ttl
        return None if ttl is None else create_ts + ttl

    def put(
        self, key: bytes, value: bytes, *, ttl: timedelta | None = None, await_durable: bool = True
    ) -> None:
        """Writes `key` = `value`; durable when it returns unless `await_durable=False`."""
        # The hot path: plain bytes within limits skip the general checks.
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        v = value if type(value) is bytes else check_value(k, value)
        t = None if ttl is None else ttl_ms(ttl)
        with self._lock:
            if self._error is not None or self._closed:
                self._check_open()
            now = self._tick()
            self._last_seq += 1
            seq = self._last_seq
            expire = None if t is None and self._default_ttl is None else self._expire(now, t)
            size = self._active.put(k, v, seq, now, expire)
        if size >= self._l0_size or await_durable:
            self._after_write(seq, size, await_durable)

    def delete(self, key: bytes, *, await_durable: bool = True) -> None:
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        with self._lock:
            if self._error is not None or self._closed:
                self._check_open()
            now = self._tick()
            self._last_seq += 1
            seq = self._last_seq
            size = self._active.put(k, None, seq, now)
        if size >= self._l0_size or await_durable:
            self._after_write(seq, size, await_durable)

    def write(self, batch: WriteBatch, *, await_durable: bool = True) -> None:
        """Applies every operation of `batch` atomically, with one sequence number."""
        if not isinstance(batch, WriteBatch):
            raise InvalidArgumentError(f"write() takes a WriteBatch, not {type(batch).__name__}")
        if len(batch) == 0:
            return
        default_ttl = self._default_ttl
        with self._lock:
            if self._error is not None or self._closed:
                self._check_open()
            now = self._tick()
            self._last_seq += 1
            seq = self._last_seq
            size = self._active.apply(batch, seq, now, default_ttl)
        self._after_write(seq, size, await_durable)

    def _after_write(self, seq: int, size: int, await_durable: bool) -> None:
        if size >= self.options.l0_sst_size_bytes:
            self._freeze()
            self._flush_wanted.set()
            if self._unflushed_memory() + self._memtable_memory > self.options.max_unflushed_bytes:
                # Backpressure: the flusher is behind, and a full new memtable on top of the
                # frozen ones would pass the budget; this writer helps (or waits for the
                # flush under way) instead of letting unflushed memory grow.
                self._flush_frozen()
        if await_durable:
            self._await_durable(seq)

    def _unflushed_memory(self) -> int:
        """What the memtables not yet in L0 SSTs really hold (`max_unflushed_bytes`)."""
        with self._lock:
            mts = [self._active, *(f.memtable for f in self._frozen)]
        return sum(m.memory_bytes for m in mts)

    # ------------------------------------------------------------------ WAL

    def _await_durable(self, seq: int) -> None:
        """Returns once `seq` is in a WAL object. Group commit: one waiter at a time uploads
        everything queued (its own rows and those of everyone who wrote meanwhile); the others
        sleep, with the GIL released, until an upload covers them."""
        while True:
            claim = self._durable.wait_or_claim(seq)
            if claim == 0:
                return
            if claim < 0:
                assert self._error is not None
                raise self._error
            try:
                self._flush_wal(seq)
            finally:
                self._durable.finish_upload()

    def _flush_wal(self, target_seq: int | None = None) -> None:
        """Uploads everything queued as the next WAL object(s). Callers waiting for
        `target_seq` skip the upload when an earlier one already covered it (group commit)."""
        with self._upload_lock:
            if target_seq is not None and self._durable.durable >= target_seq:
                return
            if self._error is not None:
                raise self._error
            upto = self._take_wal_chunk()
            self._send_unsent()
            self._durable.advance(upto)

    def _take_wal_chunk(self) -> int:
        """Moves the queued rows into an encoded chunk awaiting upload; returns the last seq
        it covers. The caller holds `_upload_lock`."""
        with self._lock:
            upto = self._last_seq
            active = self._active  # only a freeze swaps it, and it holds `_upload_lock` too
        # Encoded outside `_lock`, so writers go on meanwhile. Every write up to `upto` is in
        # the memtable already (seq and insert share one critical section); rows written
        # since are taken too, and counted durable with the next chunk: conservative.
        chunk = active.take_wal(self.options.compression)
        if chunk is not None:
            self._unsent.append((chunk[0], upto))
        return upto

    def _send_unsent(self) -> None:
        """Uploads pending chunks in order, each as the next WAL id. A chunk that fails with
        a transient store error stays first in line and is retried by the next flush; the
        rows are never dropped. The caller holds `_upload_lock`."""
        while self._unsent:
            data, upto = self._unsent[0]
            self._upload_wal(data)
            self._unsent.pop(0)
            self._durable.advance(upto)

    def _upload_wal(self, data: bytes) -> None:
        wid = self._next_wal_id
        key = self._paths.wal(wid)
        # An earlier attempt at this chunk may have landed with its response lost (the store
        # retried until it gave up): the object is then ours, byte for byte.
        if not self._store.put_if_absent(key, data) and self._store.get(key) != bytes(data):
            raise self._fail(
                FencedError(
                    f"WAL object {key!r} already exists: a newer writer opened "
                    f"{self._paths.root!r}; this writer is fenced"
                )
            )
        # The create proves the id was free, not that no newer writer fenced it and had the
        # fence collected: unless this writer's epoch was confirmed recently enough that such
        # a fence could not have been collected yet, look again before anyone is
        # acknowledged (slatedb_py.safety).
        if monotonic_s(self._clock) - self._fence.confirmed_at >= CLIENT_WINDOW_S:
            try:
                self._fence.confirm()
            except FencedError as e:
                raise self._fail(
                    FencedError(
                        f"{e} (found after uploading WAL object {key!r}, which "
                        "lies below the newer writer's replay point: nothing in it is acknowledged)"
                    )
                ) from e
        self._next_wal_id = wid + 1
        self._last_wal_id = wid

    def _wal_ticker(self) -> None:
        interval = self.options.flush_interval
        assert interval is not None
        while not self._stop.wait(interval.total_seconds()):
            try:
                self._flush_wal()
            except UnavailableError:
                continue  # the store hiccupped; the next tick retries the same chunk
            except SlateDBError:
                return

    # ------------------------------------------------------------------ memtable -> L0

    def _freeze(self) -> None:
        """Moves the active memtable to the frozen list; its WAL rows are queued first, so
        the frozen memtable knows the last WAL id holding its rows. The queue is uploaded by
        the next WAL flush, or by the flusher before it records the L0 SST: not here, so a
        writer that fills a memtable does not wait for a WAL upload."""
        with self._upload_lock:
            if self._error is not None:
                raise self._error
            with self._lock:
                # One critical section: no write lands in the old memtable's WAL queue after
                # its last chunk is cut (such a row would be acknowledged as durable while it
                # sat only in memory), and reads see it in the frozen list at once.
                if len(self._active) == 0:
                    return
                upto = self._last_seq
                old = self._active
                self._active = new_memtable(self._memtable_memory)
                # Pending chunks get consecutive ids from _next_wal_id on; the old memtable's
                # own queue becomes one more.
                last_wal = self._next_wal_id - 1 + len(self._unsent) + (old.wal_pending_bytes > 0)
                self._frozen.insert(0, _Frozen(old, max(last_wal, self._last_wal_id)))
                self._view = self._make_view()
            # Encoded outside `_lock`: nobody writes to `old` any more.
            chunk = old.take_wal(self.options.compression)
            if chunk is not None:
                self._unsent.append((chunk[0], upto))

    def _flush_frozen(self) -> None:
        """Writes frozen memtables (oldest first) as L0 SSTs and records them."""
        with self._flush_lock:
            while True:
                with self._lock:
                    if not self._frozen:
                        return
                    oldest = self._frozen[-1]
                self._write_l0(oldest)

    def _wait_for_l0_room(self) -> None:
        """Backpressure: with L0 at `l0_max_ssts`, flushes (and through them writers) wait for
        the compactor to drain it. Bounded: a stuck compactor slows writes, never stops them."""
        if not self.options.compactor_enabled:
            return
        for _ in range(600):
            if len(self._manifests.require_latest()[1].l0) < self.options.l0_max_ssts:
                return
            self._compactor.wake.set()
            if self._stop.wait(0.05):
                return

    def _write_l0(self, frozen: _Frozen) -> None:
        # Its WAL rows go out first: the manifest update below moves the replay point past
        # WAL ids that must exist by then.
        with self._upload_lock:
            if self._error is not None:
                raise self._error
            self._send_unsent()
        self._wait_for_l0_room()
        o = self.options
        data = frozen.memtable.encode_l0(
            o.block_size,
            o.compression,
            o.bloom_bits_per_key,
            o.min_filter_keys,
            self._clock.now_ms(),
        )
        mt = frozen.memtable
        view: SstView | None = None
        if data is not None:
            ulid = new_ulid(self._clock.now_ms())
            path = self._paths.compacted(ulid)
            self._store.put(path, data)
            info = SstTableInfo.from_native(self._tables.add_written(path, data).info())
            view = SstView(ulid, SstHandle(ulid, info, 2))
        next_wal = self._next_wal_id

        def record(m: Manifest) -> Manifest | None:
            if view is not None and m.last_l0_seq >= mt.max_seq:
                # Already recorded (a re-application after an unknown outcome): this
                # writer's flushes are the only ones to raise last_l0_seq past its rows.
                return None
            last_seq = max(m.last_l0_seq, mt.max_seq or 0)
            return replace(
                m,
                l0=((view,) if view else ()) + m.l0,
                replay_after_wal_id=max(m.replay_after_wal_id, frozen.last_wal_id),
                wal_id_last_seen=max(m.wal_id_last_seen, next_wal - 1),
                last_l0_seq=last_seq,
                last_l0_clock_tick=max(
                    m.last_l0_clock_tick, mt.max_create_ts or m.last_l0_clock_tick
                ),
                recent_snapshot_min_seq=last_seq,
            )

        try:
            mid, m = self._fence.update(record)
        except FencedError as e:
            raise self._fail(e) from e
        with self._lock:
            # Only ever forward: a compactor may have committed on top of this version and
            # installed that already; its SSTs are what the collector keeps.
            if mid > self._manifest_id:
                self._manifest_id, self._manifest = mid, m
            self._frozen.remove(frozen)
            self._view = self._make_view()
        self._compactor.wake.set()

    def _flusher(self) -> None:
        while not self._stop.is_set():
            self._flush_wanted.wait(0.5)
            self._flush_wanted.clear()
            try:
                self._flush_frozen()
            except UnavailableError:
                continue  # retried on the next round; the rows stay in memory and the WAL
            except SlateDBError:
                return

    def _collector(self) -> None:
        interval = self._gc_options.interval
        assert interval is not None
        while not self._stop.wait(interval.total_seconds()):
            try:
                run_gc_once(self._store, self._paths, self._gc_options, self._clock)
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
        self._await_durable(target)

    def flush_memtable(self) -> None:
        """Writes the memtable out as an L0 SST now and records it in the manifest."""
        self._check_open()
        self._freeze()
        self._flush_frozen()

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        if self._error is not None or self._closed:
            self._check_open()
        # Reading two attributes is atomic under the GIL; the view and seq may be a write
        # apart, which only makes the read as of a slightly earlier or later moment.
        view, snapshot = self._view, self._last_seq
        now = self._clock.now_ms()
        try:
            got = view.tree.get(k, snapshot, now)  # the hot path: one native call
            return got if type(got) is not Fetch else view.tables.drive(got)  # type: ignore[no-any-return]
        except MissingObjectError as err:
            return read_again(view, lambda v: v.get(k, self._last_seq, now), err, self._newer)

    def get_many(self, keys: Iterable[bytes]) -> list[bytes | None]:
        """The values of `keys` in order (None where absent): one native call, with the
        blocks of every key fetched together."""
        ks = check_keys(keys)
        if self._error is not None or self._closed:
            self._check_open()
        view, snapshot = self._view, self._last_seq
        now = self._clock.now_ms()
        try:
            return view.get_many(ks, snapshot, now)
        except MissingObjectError as err:
            return read_again(view, lambda v: v.get_many(ks, self._last_seq, now), err, self._newer)

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, reverse: bool = False
    ) -> DbIterator:
        """A lazy iterator of (key, value) pairs with start <= key < end, in key order
        (descending with `reverse=True`); either bound may be None. It reads as of this call."""
        s = None if start is None else check_key(start)
        e = None if end is None else check_key(end)
        _flag("reverse", reverse)
        self._check_open()
        with self._lock:
            view, snapshot = self._view, self._last_seq
        it = DbIterator(
            view, s, e, snapshot, self._clock.now_ms(), reverse, self._newer, self._is_open
        )
        self._iterators.add(it)
        return it

    def scan_prefix(self, prefix: bytes, *, reverse: bool = False) -> DbIterator:
        p = check_key(prefix)
        return self.scan(p, _prefix_end(p), reverse=reverse)

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
        result = checkpoint.create_checkpoint(
            self._manifests, options, self._clock, update=self._fence.update_with_id
        )
        return result

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
        return checkpoint.refresh_checkpoint(
            ManifestStore(Store.resolve(store), DbPaths.of(path)),
            checkpoint_id,
            lifetime,
            clock or SystemClock(),
        )

    @staticmethod
    def delete_checkpoint(path: str, store: Any, checkpoint_id: uuid.UUID) -> None:
        """Removes the checkpoint; the collector may then reclaim what only it pinned."""
        checkpoint.delete_checkpoint(
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
            for it in list(self._iterators):
                it.close()
            self._stop.set()
            self._flush_wanted.set()
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

    def manifest(self) -> tuple[int, Manifest]:
        """The manifest version this writer last wrote or read, and its contents."""
        with self._lock:
            return self._manifest_id, self._manifest


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix`."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None
