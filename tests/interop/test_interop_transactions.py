"""Transactions side by side with the real SlateDB 0.17.0: the same scripts (transactions
interleaved with plain writes) run on its binding and on slatedb_py, and every outcome (what
each read returned, whether each commit applied or conflicted, the final contents) must be
equal. Then a database slatedb_py wrote with transactions opens in 0.17.0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
import slatedb.uniffi as u
from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions, IsolationLevel
from slatedb_py.errors import TransactionConflictError
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
SI, SSI = "si", "ssi"
Ops = list[tuple[str, bytes, bytes | None]]  # ("put", key, value) / ("delete", key, None)


class Txn(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def scan(self, start: bytes | None, end: bytes | None) -> list[tuple[bytes, bytes]]: ...
    def commit(self) -> str: ...


class Engine(Protocol):
    def begin(self, level: str) -> Txn: ...
    def put(self, key: bytes, value: bytes) -> None: ...
    def write(self, ops: Ops) -> None: ...
    def contents(self) -> dict[bytes, bytes]: ...


# ------------------------------------------------------------------ the two engines


class OfficialTxn:
    def __init__(self, o: Official, txn: Any) -> None:
        self.o, self.txn = o, txn

    def get(self, key: bytes) -> bytes | None:
        return self.o._run(self.txn.get(key))  # type: ignore[no-any-return]

    def put(self, key: bytes, value: bytes) -> None:
        self.o._run(self.txn.put(key, value))

    def delete(self, key: bytes) -> None:
        self.o._run(self.txn.delete(key))

    def scan(self, start: bytes | None, end: bytes | None) -> list[tuple[bytes, bytes]]:
        async def go() -> list[tuple[bytes, bytes]]:
            r = u.KeyRange(start=start, start_inclusive=True, end=end, end_inclusive=False)
            it = await self.txn.scan(r)
            out = []
            while page := await it.next_batch(100):
                out.extend((kv.key, kv.value) for kv in page)
            return out

        return self.o._run(go())

    def commit(self) -> str:
        try:
            self.o._run(self.txn.commit())
        except u.Error.Transaction:
            return "conflict"
        return "ok"


class OfficialEngine:
    def __init__(self, path: str) -> None:
        self.o = Official(path)

    def begin(self, level: str) -> Txn:
        lv = u.IsolationLevel.SNAPSHOT if level == SI else u.IsolationLevel.SERIALIZABLE_SNAPSHOT
        return OfficialTxn(self.o, self.o._run(self.o.db.begin(lv)))

    def put(self, key: bytes, value: bytes) -> None:
        self.o.put(key, value)

    def write(self, ops: Ops) -> None:
        b = u.WriteBatch()
        for kind, k, v in ops:
            b.put(k, v) if kind == "put" else b.delete(k)

        async def go() -> None:
            await (await self.o.db.write(b)).await_durable()

        self.o._run(go())

    def contents(self) -> dict[bytes, bytes]:
        return self.o.scan()

    def close(self) -> None:
        self.o.close()


class OursTxn:
    def __init__(self, txn: Any) -> None:
        self.txn = txn

    def get(self, key: bytes) -> bytes | None:
        return self.txn.get(key)  # type: ignore[no-any-return]

    def put(self, key: bytes, value: bytes) -> None:
        self.txn.put(key, value)

    def delete(self, key: bytes) -> None:
        self.txn.delete(key)

    def scan(self, start: bytes | None, end: bytes | None) -> list[tuple[bytes, bytes]]:
        return list(self.txn.scan(start, end))

    def commit(self) -> str:
        try:
            self.txn.commit()
        except TransactionConflictError:
            return "conflict"
        return "ok"


class OursEngine:
    def __init__(self, path: str) -> None:
        self.db = Db.open(path, ROOT, DbOptions(compactor_enabled=False, gc_enabled=False))

    def begin(self, level: str) -> Txn:
        lv = IsolationLevel.SNAPSHOT if level == SI else IsolationLevel.SERIALIZABLE_SNAPSHOT
        return OursTxn(self.db.begin(lv))

    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)

    def write(self, ops: Ops) -> None:
        b = WriteBatch()
        for kind, k, v in ops:
            b.put(k, v) if kind == "put" and v is not None else b.delete(k)
        self.db.write(b)

    def contents(self) -> dict[bytes, bytes]:
        return dict(self.db.scan())

    def close(self) -> None:
        self.db.close()


# ------------------------------------------------------------------ the scripts
# Each returns what it observed; the database starts with a=A, c=C, e=E.

Script = Callable[[Engine], list[object]]


def ww_with_plain_put(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        t.put(b"c", b"mine")
        e.put(b"c", b"theirs")
        return [t.get(b"c"), t.commit()]

    return run


def ww_with_batch(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        t.delete(b"a")
        e.write([("put", b"x", b"1"), ("delete", b"a", None)])
        return [t.get(b"a"), t.commit()]

    return run


def ww_two_txns(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t1, t2 = e.begin(level), e.begin(level)
        t1.put(b"k", b"one")
        t2.put(b"k", b"two")
        t2.put(b"only-two", b"2")
        return [t1.commit(), t2.commit()]

    return run


def read_write(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        seen = t.get(b"c")
        t.put(b"derived", (seen or b"") + b"+1")
        e.put(b"c", b"changed")
        return [seen, t.commit()]

    return run


def read_own_write(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        t.put(b"k", b"mine")
        seen = t.get(b"k")
        e.put(b"k", b"theirs")
        return [seen, t.commit()]

    return run


def phantom(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        seen = t.scan(b"m", b"n")
        t.put(b"z", b"1")
        e.put(b"n", b"end bound: outside")
        e.put(b"m5", b"inside")
        return [seen, t.commit()]

    return run


def phantom_outside(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        seen = t.scan(b"b", b"d")
        t.put(b"z", b"1")
        e.put(b"d", b"outside")
        e.put(b"a", b"outside")
        return [seen, t.commit()]

    return run


def read_only(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t = e.begin(level)
        seen = t.get(b"a")
        e.put(b"a", b"changed")
        return [seen, t.commit()]

    return run


def disjoint(level: str) -> Script:
    def run(e: Engine) -> list[object]:
        t1, t2 = e.begin(level), e.begin(level)
        t1.put(b"x", b"1")
        t2.put(b"y", b"2")
        t2.delete(b"e")
        e.put(b"w", b"3")
        e.write([("put", b"v", b"4")])
        seen = t2.scan(b"y", b"z")  # own writes only: nobody else writes there
        return [seen, t1.commit(), t2.commit()]

    return run


SCRIPTS: dict[str, Callable[[str], Script]] = {
    "ww_with_plain_put": ww_with_plain_put,
    "ww_with_batch": ww_with_batch,
    "ww_two_txns": ww_two_txns,
    "read_write": read_write,
    "read_own_write": read_own_write,
    "phantom": phantom,
    "phantom_outside": phantom_outside,
    "read_only": read_only,
    "disjoint": disjoint,
}


def _outcome(engine: Any, script: Script) -> tuple[list[object], dict[bytes, bytes]]:
    try:
        for k in (b"a", b"c", b"e"):
            engine.put(k, k.upper())
        seen = script(engine)
        return seen, engine.contents()
    finally:
        engine.close()


@pytest.mark.parametrize("level", [SI, SSI])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_outcomes_as_0_17(name: str, level: str, tmp_path: Path) -> None:
    script = SCRIPTS[name](level)
    official = _outcome(OfficialEngine(str(tmp_path / "official")), script)
    ours = _outcome(OursEngine(str(tmp_path / "ours")), script)
    assert ours == official


@pytest.mark.parametrize(
    ("name", "level", "commits"),
    [
        ("ww_with_plain_put", SI, ["conflict"]),
        ("ww_with_plain_put", SSI, ["conflict"]),
        ("ww_with_batch", SI, ["conflict"]),
        ("ww_two_txns", SI, ["ok", "conflict"]),
        ("read_write", SI, ["ok"]),
        ("read_write", SSI, ["conflict"]),
        ("read_own_write", SSI, ["conflict"]),
        ("phantom", SI, ["ok"]),
        ("phantom", SSI, ["conflict"]),
        ("phantom_outside", SSI, ["ok"]),
        ("read_only", SI, ["ok"]),
        ("read_only", SSI, ["conflict"]),
        ("disjoint", SI, ["ok", "ok"]),
        ("disjoint", SSI, ["ok", "ok"]),
    ],
)
def test_commit_outcomes(name: str, level: str, commits: list[str], tmp_path: Path) -> None:
    seen, _ = _outcome(OursEngine(str(tmp_path / "db")), SCRIPTS[name](level))
    assert [s for s in seen if s in ("ok", "conflict")] == commits


def test_a_database_written_with_transactions_opens_in_0_17(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    model: dict[bytes, bytes] = {}
    with Db.open(path, ROOT) as db:
        for round_ in range(20):
            with db.begin(IsolationLevel.SERIALIZABLE_SNAPSHOT) as txn:
                for i in range(50):
                    k, v = b"k%04d" % (round_ * 37 + i), b"r%d-%d" % (round_, i)
                    txn.put(k, v)
                    model[k] = v
                gone = b"k%04d" % (round_ * 11)
                txn.delete(gone)
                model.pop(gone, None)
            if round_ == 10:
                db.flush_memtable()
        last = db._last_seq
    reader = Official(path, reader=True)
    assert reader.scan() == model
    reader.close()
    official = Official(path)
    assert official.scan() == model
    t = official._run(official.db.begin(u.IsolationLevel.SNAPSHOT))
    assert t.seqnum() == last  # every commit took exactly one sequence number
    official._run(t.put(b"official", b"1"))
    official._run(t.commit())
    model[b"official"] = b"1"
    official.close(keep_wal_tail=True)
    with Db.open(path, ROOT) as again:
        assert dict(again.scan()) == model
        assert again._last_seq == last + 1
