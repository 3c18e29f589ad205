"""The merge operator end to end: what folds where, and what happens when folding cannot.

A failing operator (raises, returns a non-bytes, a built-in meets bytes of the wrong width)
fails the read, batch or compaction with `MergeOperatorError` naming the key, its exception
chained; a failed write takes no sequence number and applies nothing; a failed compaction
commits nothing, and the next one with a working operator goes on."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, DbReader, WriteBatch, admin
from slatedb_py.cli import main
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError, MergeOperatorError
from slatedb_py.merge import AddU64, BuiltinOperator, Concat, Max

QUIET = {"flush_interval": None, "compactor_enabled": False, "gc_enabled": False}


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def test_builtins_fold_natively_and_are_plain_callables() -> None:
    assert AddU64()(b"k", u64(2**64 - 1), u64(3)) == u64(2), "wraps"
    assert Concat()(b"k", None, b"x") == b"x" and Max()(b"k", b"b", b"a") == b"b"
    assert AddU64() == AddU64() and AddU64() != Max() and repr(Max()) == "Max()"
    assert isinstance(DbOptions(merge_operator=AddU64).merge_operator, AddU64), "a class is made"
    with pytest.raises(InvalidTypeError, match="merge_operator must be a callable"):
        DbOptions(merge_operator=42)
    with pytest.raises(InvalidArgumentError):
        BuiltinOperator("sum")
    with pytest.raises(MergeOperatorError, match="8-byte"):
        AddU64()(b"k", None, b"abc")


def test_counters_fold_through_every_level_and_snapshots_keep_theirs() -> None:
    clock = ManualClock()
    opts = DbOptions(merge_operator=AddU64, **QUIET)  # type: ignore[arg-type]
    with Db.open("db", MemoryStore(), opts, clock=clock) as db:
        for i in range(300):
            db.merge(b"c%d" % (i % 3), u64(1), await_durable=False)
            if i == 100:
                db.flush_memtable()  # operands in L0 and in the memtable
        assert [db.get(b"c%d" % i) for i in range(3)] == [u64(100)] * 3
        snap = db.snapshot()
        db.merge(b"c0", u64(5), ttl=timedelta(milliseconds=10))
        db.compact()  # folds what is at or below the snapshot; keeps the newer operand
        assert db.get(b"c0") == u64(105) and snap.get(b"c0") == u64(100)
        clock.advance(10)  # the operand with a TTL expires: skipped, the rest still folds
        assert db.get(b"c0") == u64(100) and db.get_many([b"c1", b"c9"]) == [u64(100), None]
        db.delete(b"c1")
        db.merge(b"c1", u64(7))  # after a delete, onto nothing
        assert dict(db.scan()) == {b"c0": u64(100), b"c1": u64(7), b"c2": u64(100)}
        assert snap.get(b"c1") == u64(100)
        snap.close()
        db.compact()
        assert dict(db.scan(reverse=True)) == {b"c0": u64(100), b"c1": u64(7), b"c2": u64(100)}


def test_a_failing_operator_writes_nothing_and_takes_no_sequence_number() -> None:
    def picky(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
        if operand == b"bad":
            raise ValueError("no bad operands")
        return (existing or b"") + operand

    with Db.open("db", MemoryStore(), DbOptions(merge_operator=picky, **QUIET)) as db:  # type: ignore[arg-type]
        db.put(b"k", b"v")
        seq = db._last_seq
        with pytest.raises(MergeOperatorError, match="b'k'") as e:
            db.write(WriteBatch().put(b"other", b"1").merge(b"k", b"x").merge(b"k", b"bad"))
        assert isinstance(e.value.__cause__, ValueError)
        assert db._last_seq == seq and db.get(b"other") is None, "nothing applied"
        db.merge(b"k", b"bad")  # one operand alone is not folded until read
        with pytest.raises(MergeOperatorError) as e:
            db.get(b"k")
        assert isinstance(e.value.__cause__, ValueError)
        with pytest.raises(MergeOperatorError):
            list(db.scan())
        db.put(b"k", b"fresh")  # a put hides the bad operand from reads
        assert db.get(b"k") == b"fresh" and db._last_seq == seq + 2


def test_a_failing_compaction_commits_nothing(tmp_path: Path) -> None:
    def wrong_type(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
        return 42  # type: ignore[return-value]

    store = LocalStore(str(tmp_path))
    with Db.open("db", store, DbOptions(merge_operator=Concat, **QUIET)) as db:  # type: ignore[arg-type]
        for i in range(50):
            db.merge(b"log", b"%d," % i, await_durable=False)
            db.flush_memtable() if i % 10 == 9 else None
        before = db.manifest()
    bad = DbOptions(merge_operator=wrong_type, **QUIET)  # type: ignore[arg-type]
    with pytest.raises(MergeOperatorError, match="must return bytes"):
        admin.run_compactor("db", store, bad, once=True, full=True)
    with Db.open("db", store, DbOptions(merge_operator=Concat, **QUIET)) as db:  # type: ignore[arg-type]
        assert db.manifest()[1].l0 == before[1].l0 and not db.manifest()[1].compacted
        want = b"".join(b"%d," % i for i in range(50))
        assert db.get(b"log") == want
    good = DbOptions(merge_operator=Concat, **QUIET)  # type: ignore[arg-type]
    assert admin.run_compactor("db", store, good, once=True, full=True) >= 1
    reader = DbReader.open("db", store, options=ReaderOptions(merge_operator=Concat))
    with reader:
        assert reader.get(b"log") == want
    with Db.open("db", store, good) as db:
        m = db.manifest()[1]
        assert len(m.compacted) == 1 and not m.l0 and db.get(b"log") == want


def test_the_standalone_compactor_takes_an_operator_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path}"
    with Db.open("db", LocalStore(str(tmp_path)), DbOptions(merge_operator=AddU64, **QUIET)) as db:  # type: ignore[arg-type]
        for i in range(40):
            db.merge(b"n", u64(i), await_durable=False)
            db.flush_memtable() if i % 8 == 7 else None
    argv = ["compactor", url, "db", "--once", "--full"]
    assert main([*argv, "--merge-operator", "slatedb_py.merge:AddU64"]) == 0
    assert "compaction" in capsys.readouterr().out
    assert main([*argv, "--merge-operator", "AddU64"]) != 0
    assert "must be module:attr, not 'AddU64'" in capsys.readouterr().err
    assert main([*argv, "--merge-operator", "slatedb_py.merge:no_such"]) != 0
    assert "no_such" in capsys.readouterr().err
    opts = DbOptions(merge_operator=AddU64, **QUIET)  # type: ignore[arg-type]
    with Db.open("db", LocalStore(str(tmp_path)), opts) as db:
        assert db.get(b"n") == u64(sum(range(40)))
        m = db.manifest()[1]
        assert len(m.compacted) == 1 and not m.l0


def test_without_an_operator_writes_and_reads_of_operands_are_refused() -> None:
    with Db.open("db", MemoryStore(), DbOptions(**QUIET)) as db:  # type: ignore[arg-type]
        with pytest.raises(MergeOperatorError, match="needs a merge operator"):
            db.merge(b"k", b"1")
        with pytest.raises(MergeOperatorError, match="b'k'"):
            db.write(WriteBatch().put(b"a", b"1").merge(b"k", b"1"))
        assert db.get(b"a") is None and db._last_seq == 0
        with pytest.raises(InvalidTypeError):
            db.merge(b"k", 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            db.merge(b"", b"1")


def test_threads_merging_and_reading_with_a_python_operator_neither_deadlock_nor_lose() -> None:
    """A Python operator takes the GIL inside native reads; writers hold the GIL while they
    apply to the memtable. Reads copy a key's versions out of the memtable before folding, so
    the two never wait on each other (with the fold under the memtable lock this hung within
    a second). Counters written meanwhile add up exactly."""
    import threading
    import time

    def add(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
        return u64(struct.unpack("<Q", existing or u64(0))[0] + struct.unpack("<Q", operand)[0])

    opts = DbOptions(merge_operator=add, **QUIET)  # type: ignore[arg-type]
    keys = [b"n%d" % i for i in range(4)]
    with Db.open("db", MemoryStore(), opts) as db:
        stop = threading.Event()
        errors: list[BaseException] = []
        added = [0, 0]

        def write(tid: int) -> None:
            i = 0
            while not stop.is_set():
                # A base under an operand in the memtable: reads fold there.
                db.put(b"base%d" % tid, u64(i), await_durable=False)
                db.merge(b"base%d" % tid, u64(1), await_durable=False)
                if i % 2:
                    b = WriteBatch().merge(keys[i % 4], u64(1)).merge(keys[(i + tid) % 4], u64(1))
                    db.write(b, await_durable=False)
                else:
                    db.merge(keys[i % 4], u64(2), await_durable=False)
                added[tid] += 2
                i += 1

        def read() -> None:
            try:
                while not stop.is_set():
                    db.get(b"base0")
                    db.get_many([b"base1", *keys])
                    dict(db.scan())
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=write, args=(t,)) for t in range(2)]
        threads += [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "deadlocked"
        assert errors == []
        total = sum(struct.unpack("<Q", db.get(k) or u64(0))[0] for k in keys)
        assert total == sum(added) > 0


def test_an_operator_that_reads_the_database_does_not_hang_it() -> None:
    """Folding runs outside every native lock the operator's own reads would take: in a
    batch, a point read, a scan, an L0 flush and a compaction."""
    import threading

    holder: list[Db] = []

    def peeking(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
        holder[0].get(b"other")  # a read from inside the fold
        return (existing or b"") + operand

    def work() -> None:
        with Db.open("db", MemoryStore(), DbOptions(merge_operator=peeking, **QUIET)) as db:  # type: ignore[arg-type]
            holder.append(db)
            db.put(b"other", b"o")
            db.write(WriteBatch().put(b"k", b"a").merge(b"k", b"b"))
            db.merge(b"k", b"c")
            assert db.get(b"k") == b"abc" and dict(db.scan())[b"k"] == b"abc"
            db.flush_memtable()
            db.merge(b"k", b"d")
            db.compact()
            assert db.get_many([b"k"]) == [b"abcd"]

    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=guarded, daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "a fold that reads the database hung it"
    assert errors == []
