"""Threads racing read-modify-write transactions: no update is lost, every conflict raised is
a real one, and transactions whose write keys are disjoint never conflict."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import TransactionConflictError

THREADS, ROUNDS = 8, 25


Outcome = tuple[Counter[bytes], Counter[bytes], list[str]]  # commits, conflicts, errors


def _race(db: Db, level: IsolationLevel, key_of: Any) -> Outcome:
    commits: Counter[bytes] = Counter()
    conflicts: Counter[bytes] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        try:
            for r in range(ROUNDS):
                key = key_of(t, r)
                while True:
                    txn = db.begin(level)
                    seen = int(txn.get(key) or b"0")
                    txn.put(key, b"%d" % (seen + 1))
                    if r % 5 == 0:
                        txn.put(b"log-%d-%d" % (t, r), b"x")  # a key nobody else writes
                    try:
                        txn.commit(await_durable=r % 2 == 0)
                    except TransactionConflictError as e:
                        # Counters only grow: a real conflict means someone committed a
                        # higher value after this transaction read `seen`.
                        if e.key != key or int(db.get(key) or b"0") <= seen:
                            errors.append(f"spurious conflict on {key!r} at {seen}: {e}")
                        with lock:
                            conflicts[key] += 1
                        continue
                    with lock:
                        commits[key] += 1
                    break
                db.put(b"plain-%d" % t, b"%d" % r, await_durable=False)  # plain writes too
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    for key, n in commits.items():
        assert db.get(key) == b"%d" % n  # no lost update
    return commits, conflicts, errors


@pytest.mark.parametrize(
    "level", [IsolationLevel.SNAPSHOT, IsolationLevel.SERIALIZABLE_SNAPSHOT], ids=["si", "ssi"]
)
def test_shared_counters_lose_no_update(level: IsolationLevel) -> None:
    with Db.open("db", MemoryStore(), DbOptions()) as db:
        commits, _, errors = _race(db, level, lambda t, r: b"c%d" % ((t + r) % 3))
        assert errors == []
        assert sum(commits.values()) == THREADS * ROUNDS
        assert db._snapshots.oldest() is None and len(db._txns) == 0


@pytest.mark.parametrize(
    "level", [IsolationLevel.SNAPSHOT, IsolationLevel.SERIALIZABLE_SNAPSHOT], ids=["si", "ssi"]
)
def test_disjoint_keys_never_conflict(level: IsolationLevel) -> None:
    with Db.open("db", MemoryStore(), DbOptions()) as db:
        commits, conflicts, errors = _race(db, level, lambda t, r: b"own-%d" % t)
        assert errors == [] and conflicts == Counter()
        assert commits == Counter({b"own-%d" % t: ROUNDS for t in range(THREADS)})
