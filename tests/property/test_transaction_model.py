"""Transactions against a dict model: several open at once, reads and writes inside them,
plain writes and L0 flushes between. Each read must see the model as it was when its
transaction began plus that transaction's own writes; each commit must apply exactly when the
model finds no conflict (SNAPSHOT: a key it wrote was written after it began;
SERIALIZABLE_SNAPSHOT: also a key it read or a key inside a range it scanned), and raise
TransactionConflictError, applying nothing, when it finds one."""

from __future__ import annotations

from dataclasses import dataclass, field

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import TransactionConflictError
from slatedb_py.transaction import DbTransaction

KEY_LIST = [b"k%d" % i for i in range(8)]
KEYS = st.sampled_from(KEY_LIST)
BOUNDS = st.one_of(st.none(), KEYS)
SLOTS = st.integers(0, 3)
OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


@dataclass
class ModelTxn:
    txn: DbTransaction
    ssi: bool
    start: int
    seen: dict[bytes, bytes]  # the model at begin
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    reads: set[bytes] = field(default_factory=set)
    ranges: list[tuple[bytes | None, bytes | None]] = field(default_factory=list)

    def view(self) -> dict[bytes, bytes]:
        out = dict(self.seen)
        for k, v in self.writes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out


def _in(key: bytes, start: bytes | None, end: bytes | None) -> bool:
    return (start is None or key >= start) and (end is None or key < end)


class Transactions(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = Db.open("db", MemoryStore(), OPTS)
        self.model: dict[bytes, bytes] = {}
        self.seq = 0
        self.log: list[tuple[int, set[bytes]]] = []  # every write: (seq, keys)
        self.txns: list[ModelTxn] = []
        self.n = 0

    def _value(self) -> bytes:
        self.n += 1
        return b"v%d" % self.n

    def _applied(self, changes: dict[bytes, bytes | None]) -> None:
        self.seq += 1
        self.log.append((self.seq, set(changes)))
        for k, v in changes.items():
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = v

    def _txn(self, slot: int) -> ModelTxn:
        return self.txns[slot % len(self.txns)]

    # ------------------------------------------------------------------ plain writes

    @rule(key=KEYS, delete=st.booleans())
    def plain_write(self, key: bytes, delete: bool) -> None:
        if delete:
            self.db.delete(key, await_durable=False)
            self._applied({key: None})
        else:
            v = self._value()
            self.db.put(key, v, await_durable=False)
            self._applied({key: v})

    @rule(put=KEYS, delete=KEYS)
    def plain_batch(self, put: bytes, delete: bytes) -> None:
        v = self._value()
        self.db.write(WriteBatch().put(put, v).delete(delete), await_durable=False)
        self._applied({put: v, delete: None} if put != delete else {put: None})

    @rule()
    def flush(self) -> None:
        self.db.flush_memtable()

    # ------------------------------------------------------------------ transactions

    @precondition(lambda self: len(self.txns) < 4)
    @rule(ssi=st.booleans())
    def begin(self, ssi: bool) -> None:
        level = IsolationLevel.SERIALIZABLE_SNAPSHOT if ssi else IsolationLevel.SNAPSHOT
        txn = self.db.begin(level)
        assert txn.seq == self.seq
        self.txns.append(ModelTxn(txn, ssi, self.seq, dict(self.model)))

    @precondition(lambda self: self.txns)
    @rule(slot=SLOTS, key=KEYS, delete=st.booleans())
    def txn_write(self, slot: int, key: bytes, delete: bool) -> None:
        t = self._txn(slot)
        if delete:
            t.txn.delete(key)
            t.writes[key] = None
        else:
            v = self._value()
            t.txn.put(key, v)
            t.writes[key] = v

    @precondition(lambda self: self.txns)
    @rule(slot=SLOTS, keys=st.lists(KEYS, min_size=1, max_size=3))
    def txn_get(self, slot: int, keys: list[bytes]) -> None:
        t = self._txn(slot)
        view = t.view()
        if len(keys) == 1:
            assert t.txn.get(keys[0]) == view.get(keys[0])
        else:
            assert t.txn.get_many(keys) == [view.get(k) for k in keys]
        if t.ssi:
            t.reads.update(keys)

    @precondition(lambda self: self.txns)
    @rule(slot=SLOTS, start=BOUNDS, end=BOUNDS, reverse=st.booleans())
    def txn_scan(self, slot: int, start: bytes | None, end: bytes | None, reverse: bool) -> None:
        t = self._txn(slot)
        want = sorted((k, v) for k, v in t.view().items() if _in(k, start, end))
        assert list(t.txn.scan(start, end, reverse=reverse)) == (want[::-1] if reverse else want)
        if t.ssi:
            t.ranges.append((start, end))

    @precondition(lambda self: self.txns)
    @rule(slot=SLOTS)
    def commit(self, slot: int) -> None:
        t = self._txn(slot)
        self.txns.remove(t)
        watched = set(t.writes) | t.reads
        conflict = any(
            seq > t.start
            and (keys & watched or any(_in(k, s, e) for k in keys for s, e in t.ranges))
            for seq, keys in self.log
        )
        try:
            t.txn.commit(await_durable=False)
            raised = False
        except TransactionConflictError:
            raised = True
        assert raised == conflict, (t, self.log)
        if not conflict and t.writes:
            self._applied(t.writes)

    @precondition(lambda self: self.txns)
    @rule(slot=SLOTS)
    def rollback(self, slot: int) -> None:
        t = self._txn(slot)
        self.txns.remove(t)
        t.txn.rollback()

    # ------------------------------------------------------------------ checks

    @invariant()
    def database_matches_the_model(self) -> None:
        assert self.db._last_seq == self.seq
        assert dict(self.db.scan()) == self.model
        if not self.txns:
            assert len(self.db._txns) == 0  # nothing kept with no transaction open

    def teardown(self) -> None:
        for t in self.txns:
            t.txn.rollback()
        self.db.close()


Transactions.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestTransactions = Transactions.TestCase
