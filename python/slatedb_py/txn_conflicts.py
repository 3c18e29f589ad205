"""Conflict tracking for transactions (SlateDB 0.17.0's `transaction_manager.rs`).

A transaction's commit must know which keys were written after it began. Rows in the tree
carry sequence numbers, but a read of them would cost I/O and miss nothing only while every
version is kept; so, like SlateDB, the writer remembers instead: while at least one
transaction is open, every write (a put, a delete, a batch, a committed transaction) records
its sequence number and its keys here. A commit then compares its start sequence number and
its write keys (and, under SERIALIZABLE_SNAPSHOT, its read keys and scanned ranges) with the
records newer than it began.

Memory stays bounded by what open transactions can still conflict with: a record at or below
the oldest open transaction's start number can conflict with nobody and is dropped, and with
no transaction open nothing is recorded at all (the writer's hot path then pays one truth
test). Every method but `release` runs under the writer's lock, which is what makes a
commit's check and its application one step; `release` may run from a finalizer in any
thread (a transaction dropped unfinished), even one that holds that lock, so it only queues
the token (an atomic deque append) and the next locked call settles it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

from slatedb_py.batch import WriteBatch

# A scanned range: [start, end), either bound None for unbounded.
Range = tuple[bytes | None, bytes | None]


def batch_keys(batch: WriteBatch) -> frozenset[bytes]:
    """The keys a `WriteBatch` writes (asked only while a transaction is open)."""
    return frozenset(batch.keys())


def _in_range(key: bytes, r: Range) -> bool:
    start, end = r
    return (start is None or key >= start) and (end is None or key < end)


class ConflictTracker:
    """The writes that open transactions may conflict with, and those transactions' starts."""

    def __init__(self) -> None:
        self.active: dict[int, int] = {}  # token -> start seq; truthy while any is open
        self._released: deque[int] = deque()
        self._recent: deque[tuple[int, frozenset[bytes]]] = deque()  # (seq, keys), seq order
        self._ids = itertools.count()

    def begin(self, seq: int) -> int:
        """Registers a transaction starting at `seq`; returns its token."""
        self._settle()
        token = next(self._ids)
        self.active[token] = seq
        return token

    def release(self, token: int) -> None:
        """The transaction ended (or was dropped): its records may go. Safe from finalizers."""
        self._released.append(token)

    def end(self, token: int) -> None:
        """As `release`, settled at once (the caller holds the writer's lock)."""
        self.active.pop(token, None)
        self._settle()

    def record(self, seq: int, keys: Iterable[bytes]) -> None:
        """A write at `seq` of `keys` (the caller checked `active` and holds the lock)."""
        # Dropping old records needs the oldest start (a pass over the open transactions):
        # done every 64 records here, and whenever a transaction ends.
        self._settle(prune=len(self._recent) % 64 == 0)
        if self.active:
            self._recent.append((seq, frozenset(keys)))

    def find_conflict(
        self,
        start_seq: int,
        writes: Iterable[bytes],
        reads: Iterable[bytes] = (),
        ranges: Iterable[Range] = (),
    ) -> tuple[bytes, int] | None:
        """A key written after `start_seq` that is among `writes` or `reads` or inside one of
        `ranges`, with the seq that wrote it; None when there is none."""
        watched = set(writes)
        watched.update(reads)
        rs = list(ranges)
        for seq, keys in reversed(self._recent):
            if seq <= start_seq:
                break  # records are in seq order: the rest are older still
            hit = keys & watched if len(keys) <= len(watched) else watched & keys
            if hit:
                return min(hit), seq
            for key in sorted(keys):
                if any(_in_range(key, r) for r in rs):
                    return key, seq
        return None

    def _settle(self, prune: bool = True) -> None:
        while self._released:
            self.active.pop(self._released.popleft(), None)
        if not self.active:
            self._recent.clear()
            return
        if not prune:
            return
        floor = min(self.active.values())
        while self._recent and self._recent[0][0] <= floor:
            self._recent.popleft()

    def __len__(self) -> int:
        """How many writes are remembered (for tests of the bound)."""
        return len(self._recent)
