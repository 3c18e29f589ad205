"""The write surface of `Db`: put, delete, merge, write, begin, and the one write path they
all take (`Writes._write`), as in SlateDB where a put is a batch of one.

Every write gets the next sequence number and the write time under the writer lock and goes
into the active memtable, which queues it for the WAL; a full memtable is then frozen
(`flusher.Flusher.after_fill`), and the caller waits for durability (`wal_writer.WalWriter`).
While a transaction is open, each write's keys are recorded for its conflict check
(`txn_conflicts.ConflictTracker`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, cast

from slatedb_py.batch import MAX_KEY, Bulk, Many, WriteBatch, check_key, check_value, ttl_ms
from slatedb_py.clock import Clock
from slatedb_py.errors import InvalidArgumentError, MergeOperatorError, SlateDBError
from slatedb_py.ingest import ingest
from slatedb_py.memtable import Memtable
from slatedb_py.seq_tracker import INTERVAL_SECS
from slatedb_py.txn_conflicts import ConflictTracker, batch_keys

if TYPE_CHECKING:
    from slatedb_py.db import Db
    from slatedb_py.flusher import Flusher
    from slatedb_py.wal_writer import WalWriter

# What a write does to the active memtable (under the writer lock): its fill afterwards.
_PUT, _BATCH, _MERGE, _BULK = 0, 1, 2, 3

# Bytes of keys and values per atomic piece of a `put_many(atomic=False)`: small enough that
# memtables fill and freeze (and flush, with backpressure) while it goes on, so a load larger
# than memory streams through in bounded memory; large enough that a piece's crossing and
# sequence number cost nothing next to copying its bytes.
BULK_PIECE_BYTES = 8 << 20


class _Deferred(threading.local):
    """Within `with deferred:`, a write of this thread (any entry point: put, write, a
    transaction's commit) is applied, then leaves what may block to its caller: it records
    `(seq, full)` in `result` (`full`: the active memtable filled up) instead of freezing
    the memtable and waiting for durability. The asyncio twin (`slatedb_py.aio`) writes
    this way on the event loop, then does the rest without blocking it; every check and
    rule of the write stays in the one path here. (A class, not a generator context
    manager: it is on the asyncio twin's hot path.)"""

    on = False
    result: tuple[int, bool] | None = None

    def __enter__(self) -> _Deferred:
        self.on, self.result = True, None
        return self

    def __exit__(self, *exc: object) -> None:
        self.on = False


deferred = _Deferred()


class Writes:
    """What `Db` writes with; the state named here is the writer's own."""

    _lock: threading.Lock
    _error: SlateDBError | None
    _closed: bool
    _clock: Clock
    _last_tick: int
    _last_seq: int
    _active: Memtable
    _default_ttl: int | None
    _operator: Any
    _txns: ConflictTracker
    _l0_size: int
    _memtable_memory: int
    _flusher: Flusher
    _wal: WalWriter
    # The active memtable's sequence-tracker points (seq, Unix second) and the time (Unix ms,
    # a whole second) from which it takes the next one: at most one a minute, as in 0.17.0
    # (slatedb_py.seq_tracker).
    _seq_points: list[tuple[int, int]]
    _seq_due: int
    # Writes, keys written and key+value bytes of puts and merges (`write_metrics`).
    _writes: int = 0
    _writes_keys: int = 0
    _writes_bytes: int = 0

    def write_metrics(self) -> dict[str, int | float]:
        return {
            "writes_total": self._writes,
            "writes_keys_total": self._writes_keys,
            "writes_bytes_total": self._writes_bytes,
        }

    def _check_open(self) -> None:
        raise NotImplementedError

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
        self._write(_PUT, k, v, None if ttl is None else ttl_ms(ttl), await_durable)

    def _apply_put(self, key: bytes, value: bytes, ttl: timedelta | None) -> tuple[int, bool]:
        """The asyncio twin's put (`aio.Db.put`): applied as `put` applies it, and what may
        block left to the caller, as under `deferred`: returns `(seq, full)`."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        v = value if type(value) is bytes else check_value(k, value)
        return self._write(_PUT, k, v, None if ttl is None else ttl_ms(ttl), None)  # type: ignore[return-value]

    def delete(self, key: bytes, *, await_durable: bool = True) -> None:
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        self._write(_PUT, k, None, None, await_durable)

    def merge(
        self,
        key: bytes,
        operand: bytes,
        *,
        ttl: timedelta | None = None,
        await_durable: bool = True,
    ) -> None:
        """Writes a merge operand for `key`: reads fold it onto the key's value with
        `DbOptions.merge_operator` (an expired operand is skipped, the rest still folds)."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        v = operand if type(operand) is bytes else check_value(k, operand)
        if self._operator is None:
            self._need_operator(k)
        self._write(_MERGE, k, v, None if ttl is None else ttl_ms(ttl), await_durable)

    def _need_operator(self, key: bytes) -> None:
        if self._operator is None:
            raise MergeOperatorError(
                f"merge of key {key[:64]!r}: writing a merge operand needs a merge operator "
                "(DbOptions(merge_operator=...))"
            )

    def write(self, batch: WriteBatch, *, await_durable: bool = True) -> None:
        """Applies every operation of `batch` atomically, with one sequence number; merge
        operands of a key fold onto a put or delete of it earlier in the batch."""
        if not isinstance(batch, WriteBatch):
            raise InvalidArgumentError(f"write() takes a WriteBatch, not {type(batch).__name__}")
        if batch.merge_key is not None:
            self._need_operator(batch.merge_key)
        if len(batch) > 0:
            self._write(_BATCH, batch, None, None, await_durable)

    @property
    def atomic_limit(self) -> int:
        """Bytes of keys and values one atomic `put_many` or `delete_many` may hold: what the
        active memtable may hold in memory (half of `DbOptions.max_unflushed_bytes`), since
        an atomic write goes into one memtable whole. Larger writes need `atomic=False`."""
        return self._memtable_memory

    def put_many(
        self,
        keys: Many,
        values: Many,
        *,
        ttl: timedelta | None = None,
        await_durable: bool = True,
        atomic: bool = True,
    ) -> None:
        """Writes `keys[i]` = `values[i]` for every i: lists of bytes, numpy arrays (dtype
        `S`, whose trailing NUL bytes are padding and dropped as numpy drops them; `V` and
        2-D uint8 arrays byte for byte) or Arrow binary arrays, each read in one crossing.
        Every pair is checked like `put` first; an error (`BulkItemError`) names the first
        bad index and its key, and writes nothing.

        With `atomic=True` it is one write with one sequence number, like one `WriteBatch`
        (a later pair of a key replaces an earlier one), and holds at most `atomic_limit`
        bytes of keys and values. With `atomic=False` any size goes, written as several
        atomic pieces in order, so that memory stays bounded: a reader may see the first
        pieces before the last; a crash may keep a prefix of them. Keys in strictly
        ascending order, at least `l0_sst_size_bytes` of them with their values, are
        ingested (`slatedb_py.ingest`): written straight as L0 SSTs with one sequence number,
        durable when this returns, and not in the change stream (`WalReader`)."""
        bulk = Bulk(keys, values)
        self._write_bulk(bulk, None if ttl is None else ttl_ms(ttl), await_durable, atomic)

    def delete_many(self, keys: Many, *, await_durable: bool = True, atomic: bool = True) -> None:
        """Deletes every key of `keys` (as `put_many` takes them), each checked like
        `delete`; atomic with one sequence number, or in pieces with `atomic=False`, as
        `put_many`."""
        self._write_bulk(Bulk(keys), None, await_durable, atomic)

    def _write_bulk(
        self, bulk: Bulk, ttl: int | None, await_durable: bool | None, atomic: bool
    ) -> tuple[int, bool] | None:
        """A bulk write: the whole of `bulk` at once, or its pieces in order, each one write
        (`_BULK`); the caller waits for the last piece only (the WAL keeps their order).
        Under `deferred` (the asyncio twin) it must be one piece, and returns as `_write`."""
        if not isinstance(atomic, bool):
            raise InvalidArgumentError(f"atomic must be a bool, not {type(atomic).__name__}")
        n = len(bulk)
        if n == 0:  # nothing to write: no sequence number taken
            return None
        if atomic and bulk.nbytes > self.atomic_limit:
            raise InvalidArgumentError(
                f"an atomic write of {bulk.nbytes} bytes of keys and values is larger than "
                f"the atomic limit of {self.atomic_limit} bytes (db.atomic_limit: half of "
                "max_unflushed_bytes): pass atomic=False to write it in atomic pieces"
            )
        # Large and sorted: straight to L0 SSTs (`slatedb_py.ingest`), else the memtable.
        may_ingest = not atomic and await_durable is not None and not deferred.on
        if may_ingest and ingest(cast("Db", self), bulk, ttl):
            return None
        cuts = [0, n] if atomic else bulk.chunks(min(BULK_PIECE_BYTES, self.atomic_limit))
        done = None
        for lo, hi in pairwise(cuts):
            last = hi == n
            durable = await_durable if last or await_durable is None else False
            done = self._write(_BULK, (bulk, lo, hi), None, ttl, durable)
        return done

    def _write(
        self,
        kind: int,
        target: Any,
        value: bytes | None,
        ttl: int | None,
        await_durable: bool | None,
        check: Callable[[], Iterable[bytes]] | None = None,
    ) -> tuple[int, bool] | None:
        """The one write path, as in SlateDB where a put is a batch of one: a put or delete
        (`_PUT`: key `target`, value None for a delete) or a batch (`_BATCH`) gets the next
        sequence number and the write time and goes into the active memtable, which queues it
        for the WAL; then a full memtable is frozen, and the caller waits for durability.
        With `await_durable=None` (`_apply_put`), or under `deferred`, it stops after the
        memtable and returns `(seq, full)`."""
        with self._lock:
            if self._error is not None or self._closed:
                self._check_open()
            keys = None if check is None else check()  # raises on a conflict: nothing applied
            now = self._tick()
            seq = self._last_seq + 1
            if kind == _BATCH:
                # Folding a batch's merges may fail (the operator raised): then nothing is
                # applied and the sequence number is not taken.
                size = self._active.apply(target, seq, now, self._default_ttl, self._operator)
            elif kind == _BULK:
                bulk, lo, hi = target
                expire = self._expire(now, ttl) if bulk.has_values else None
                size = self._active.apply_bulk(bulk, lo, hi, seq, now, expire)
            else:
                no_ttl = value is None or (ttl is None and self._default_ttl is None)
                expire = None if no_ttl else self._expire(now, ttl)
                size = self._active.put(target, value, seq, now, expire, kind == _MERGE)
            self._last_seq = seq
            # Counted here, inside the lock every write takes anyway (`metrics`).
            self._writes += 1
            if kind == _BATCH:
                self._writes_keys += len(target)
            elif kind == _BULK:
                self._writes_keys += target[2] - target[1]
            else:
                self._writes_keys += 1
                self._writes_bytes += len(target) + (0 if value is None else len(value))
            if now >= self._seq_due:  # compared in ms: no division on the hot path
                self._seq_points.append((seq, now // 1000))
                self._seq_due = (now // 1000 + INTERVAL_SECS) * 1000
            if self._txns.active:  # an open transaction's commit checks these keys
                if keys is None:
                    if kind == _BULK:
                        keys = target[0].keys(target[1], target[2])
                    else:
                        keys = (target,) if type(target) is bytes else batch_keys(target)
                self._txns.record(seq, keys)
        if await_durable is None:
            return seq, size >= self._l0_size
        if deferred.on:
            deferred.result = (seq, size >= self._l0_size)
            return None
        if size >= self._l0_size:
            self._flusher.after_fill()
        if await_durable:
            self._wal.await_durable(seq)
        return None

    def _commit(
        self, batch: WriteBatch, check: Callable[[], Iterable[bytes]], await_durable: bool
    ) -> None:
        """A transaction's commit: `check` (raises on a conflict) runs just before the seq."""
        self._write(_BATCH, batch, None, None, await_durable, check)
