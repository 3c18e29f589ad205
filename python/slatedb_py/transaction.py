"""Transactions (`Db.begin`): reads at one instant plus the transaction's own writes, and an
all-or-nothing commit that fails on a conflict, as SlateDB 0.17.0's `DbTransaction`.

Why it is built this way:

- Reads go through a `DbSnapshot` taken at `begin`, so flushes, compactions and the collector
  keep the versions the transaction reads for as long as it is open (and no longer: commit,
  rollback, close, or dropping the object releases them).
- Writes are buffered here, one effective operation per key (a later put or delete replaces
  what came before; merges fold, see `merge`), and overlay the snapshot in every read. Nothing
  reaches the database before `commit`.
- `commit` builds one native `WriteBatch` and applies it through the writer's one write path
  (`Db._write`), so it gets one sequence number, goes through the WAL and shares group commit
  like `Db.write`. Its conflict check runs inside that write's critical section under the
  writer's lock (`txn_conflicts.ConflictTracker`): no write can land between the check and
  the application, which is what makes a passed check true at the sequence number assigned.
- A transaction's start is the last sequence number assigned when it began (durable or not),
  as 0.17.0's `seqnum()`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slatedb_py.batch import (
    MAX_KEY,
    Bulk,
    Many,
    WriteBatch,
    check_key,
    check_value,
    prefix_end,
    ttl_ms,
)
from slatedb_py.config import IsolationLevel, _flag
from slatedb_py.errors import (
    InvalidTypeError,
    TransactionConflictError,
    TransactionError,
)
from slatedb_py.snapshot import DbSnapshot
from slatedb_py.txn_conflicts import ConflictTracker, Range
from slatedb_py.txn_iterator import TxnIterator

if TYPE_CHECKING:
    from slatedb_py.db import Db

__all__ = ["DbTransaction", "IsolationLevel", "TxnIterator"]

# A buffered write of a key: (value, ttl) for a put, (None, None) for a delete, or a list of
# merge operands (operand, ttl), oldest first, still to fold onto the snapshot's value.
_Put = tuple[bytes | None, timedelta | None]
_Write = _Put | list[tuple[bytes, timedelta | None]]


def fold(operator: Any, key: bytes, existing: bytes | None, operands: Iterable[bytes]) -> bytes:
    """`existing` with `operands` applied oldest first by the database's merge operator (the
    engine's, so a failure is the MergeOperatorError reads raise)."""
    return operator.fold(key, existing, list(operands))  # type: ignore[no-any-return]


class DbTransaction:
    """A transaction: `get`, `get_many`, `scan`, `scan_prefix` read the database as of `seq`
    plus this transaction's own writes; `put`, `delete`, `merge` buffer writes; `commit`
    applies them all with one sequence number or raises `TransactionConflictError` and
    applies nothing; `rollback` discards them. A context manager: leaving the block commits,
    an exception inside it rolls back.

    After commit, rollback or a failed commit, every call but `rollback`/`close` raises
    `TransactionError`; once its database is closed, calls raise `ClosedError`. Many threads
    may each run their own transactions; one transaction is meant for one thread at a time
    (sharing it is safe for the database, but its reads and writes then interleave)."""

    def __init__(self, db: Db, isolation: IsolationLevel = IsolationLevel.SNAPSHOT) -> None:
        if not isinstance(isolation, IsolationLevel):
            raise InvalidTypeError(
                f"isolation must be an IsolationLevel, not {type(isolation).__name__} "
                f"{isolation!r:.60}"
            )
        self._db = db
        self._isolation = isolation
        self._ssi = isolation is IsolationLevel.SERIALIZABLE_SNAPSHOT
        self._writes: dict[bytes, _Write] = {}
        self._read_keys: set[bytes] = set()
        self._read_ranges: list[Range] = []
        self._finished: str | None = None  # "committed", "rolled back", "failed to commit"
        self._lock = threading.Lock()  # the buffers, and commit/rollback happening once
        self._tracker: ConflictTracker = db._txns
        # Under the writer's lock: no write lands between reading the start and registering
        # it, so every write after the start is recorded for this transaction's check.
        with db._lock:
            db._check_open()
            while db._ingesting:  # its rows come into the tree only as it ends
                db._ingest_done.wait()
            seq = db._last_seq
            self._snap = DbSnapshot(
                db._view, seq, db._clock, db._newer, db, db._snapshots, db._paths.root
            )
            self._token = self._tracker.begin(seq)
        # Dropped unfinished: its record goes (the snapshot releases its versions itself).
        self._release = weakref.finalize(self, self._tracker.release, self._token)

    @property
    def seq(self) -> int:
        """The sequence number this transaction reads at (the last one assigned at begin)."""
        return self._snap.seq

    @property
    def isolation(self) -> IsolationLevel:
        return self._isolation

    def _check_usable(self) -> None:
        if self._finished is not None:
            raise TransactionError(f"the transaction was already {self._finished}")
        if not self._db._is_open():
            self._db._check_open()

    # ------------------------------------------------------------------ reads

    def _base(self, keys: list[bytes]) -> dict[bytes, bytes | None]:
        """The snapshot's values of `keys` (one crossing)."""
        return dict(zip(keys, self._snap.get_many(keys))) if keys else {}

    def _resolve(self, key: bytes, w: _Write, base: dict[bytes, bytes | None]) -> bytes | None:
        if isinstance(w, tuple):
            return w[0]
        return fold(self._db._operator, key, base.get(key), (o for o, _ in w))

    def get(self, key: bytes) -> bytes | None:
        """The value of `key` as this transaction sees it (its own write first), or None.
        Under SERIALIZABLE_SNAPSHOT the key joins the commit's conflict check."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        with self._lock:
            self._check_usable()
            if self._ssi:
                self._read_keys.add(k)
            w = self._writes.get(k)
        if w is None:
            return self._snap.get(k)
        return self._resolve(k, w, self._base([k]) if isinstance(w, list) else {})

    def get_many(self, keys: Many) -> list[bytes | None]:
        """The values of `keys` in order (as `Db.get_many` takes them), as `get` reads each
        (one crossing for the rest)."""
        ks = Bulk(keys).keys()
        with self._lock:
            self._check_usable()
            if self._ssi:
                self._read_keys.update(ks)
            own = {k: self._writes[k] for k in ks if k in self._writes}
        need = [k for k in dict.fromkeys(ks) if not isinstance(own.get(k), tuple)]
        base = self._base(need)
        return [base[k] if k not in own else self._resolve(k, own[k], base) for k in ks]

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, reverse: bool = False
    ) -> TxnIterator:
        """(key, value) pairs with start <= key < end in key order (descending with
        `reverse=True`), the transaction's writes made so far merged in. Under
        SERIALIZABLE_SNAPSHOT the whole requested range joins the conflict check, whatever
        the iterator goes on to yield."""
        s = None if start is None else check_key(start)
        e = None if end is None else check_key(end)
        _flag("reverse", reverse)
        with self._lock:
            self._check_usable()
            if self._ssi:
                self._read_ranges.append((s, e))
            empty = s is not None and e is not None and s >= e
            own = sorted(
                (k, w)
                for k, w in self._writes.items()
                if not empty and (s is None or k >= s) and (e is None or k < e)
            )
        base = self._base([k for k, w in own if isinstance(w, list)])
        rows = [(k, self._resolve(k, w, base)) for k, w in own]
        if reverse:
            rows.reverse()
        return TxnIterator(self._snap.scan(s, e, reverse=reverse), rows, reverse, (s, e))

    def scan_prefix(self, prefix: bytes, *, reverse: bool = False) -> TxnIterator:
        """The keys that start with `prefix`, as `scan` reads them (the prefix's range)."""
        p = check_key(prefix)
        return self.scan(p, prefix_end(p), reverse=reverse)

    # ------------------------------------------------------------------ writes

    def _buffer(self, key: bytes, change: Callable[[_Write | None], _Write]) -> None:
        with self._lock:
            self._check_usable()
            self._writes[key] = change(self._writes.get(key))

    def put(self, key: bytes, value: bytes, *, ttl: timedelta | None = None) -> None:
        """Buffers `key` = `value` (checked as `Db.put` checks them), replacing any earlier
        write of `key` in this transaction."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        v = value if type(value) is bytes else check_value(k, value)
        ttl_ms(ttl)
        self._buffer(k, lambda _: (v, ttl))

    def delete(self, key: bytes) -> None:
        """Buffers a delete of `key`, replacing any earlier write of it in this transaction."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        self._buffer(k, lambda _: (None, None))

    def merge(self, key: bytes, operand: bytes, *, ttl: timedelta | None = None) -> None:
        """Buffers a merge operand for `key` (needs `DbOptions(merge_operator=...)`).

        After a put or delete of `key` in this transaction the operand folds onto it at once
        (the put keeps its own ttl; after a delete the result takes this `ttl`); otherwise
        operands queue, reads fold them onto the snapshot's value oldest first, and the
        commit writes each as a merge row."""
        k = check_key(key)
        o = check_value(k, operand)
        ttl_ms(ttl)
        self._db._need_operator(k)
        operator = self._db._operator

        def change(w: _Write | None) -> _Write:
            if w is None:
                return [(o, ttl)]
            if isinstance(w, list):
                return [*w, (o, ttl)]
            value, put_ttl = w
            return (fold(operator, k, value, [o]), put_ttl if value is not None else ttl)

        self._buffer(k, change)

    # ------------------------------------------------------------------ ending

    def _check_conflicts(self) -> None:
        """Raises TransactionConflictError (the caller holds the writer's lock)."""
        found = self._tracker.find_conflict(
            self.seq, self._writes, self._read_keys, self._read_ranges
        )
        if found is not None:
            key, seq = found
            raise TransactionConflictError(
                f"transaction conflict: key {key[:64]!r} was written at seq {seq}, after this "
                f"transaction began at seq {self.seq}; nothing was applied",
                key=key,
            )

    def commit(self, *, await_durable: bool = True) -> None:
        """Applies every buffered write atomically with one sequence number, durable when it
        returns unless `await_durable=False`; or raises TransactionConflictError and applies
        nothing. A transaction with no writes applies nothing, but under
        SERIALIZABLE_SNAPSHOT still fails when what it read was written (as 0.17.0)."""
        _flag("await_durable", await_durable)
        db = self._db
        with self._lock:
            self._check_usable()
            self._finished = "failed to commit"
            try:
                if self._writes:
                    db._commit(self._batch(), self._checked_keys, await_durable)
                elif self._read_keys or self._read_ranges:
                    with db._lock:
                        db._check_open()
                        self._check_conflicts()
                self._finished = "committed"
            finally:
                self._end()

    def _checked_keys(self) -> Iterable[bytes]:
        """The commit's check, under the writer's lock before the batch gets its sequence
        number; returns the keys it writes, which other open transactions then watch."""
        self._check_conflicts()
        self._tracker.end(self._token)  # after the check: ending may drop records it needs
        return self._writes.keys()

    def _batch(self) -> Any:
        batch = WriteBatch()
        for k, w in self._writes.items():
            if isinstance(w, list):
                for operand, ttl in w:
                    batch.merge(k, operand, ttl=ttl)
            elif w[0] is None:
                batch.delete(k)
            else:
                batch.put(k, w[0], ttl=w[1])
        return batch

    def _end(self) -> None:
        self._snap.close()
        # Settled now, so plain writes stop recording at once when it was the last one open.
        self._release.detach()
        with self._db._lock:
            self._tracker.end(self._token)

    def rollback(self) -> None:
        """Discards the buffered writes and ends the transaction (later calls raise
        TransactionError). Does nothing on a transaction already ended."""
        with self._lock:
            if self._finished is None:
                self._finished = "rolled back"
                self._end()

    def close(self) -> None:
        """As `rollback`: ends the transaction, discarding writes not committed."""
        self.rollback()

    def __enter__(self) -> DbTransaction:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and self._finished is None:
            self.commit()
        else:
            self.rollback()
