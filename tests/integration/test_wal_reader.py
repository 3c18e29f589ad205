"""WalReader: the change stream, against a list model of every write, on a MemoryStore and a
local folder; since_seq, follow mode, history the collector removed, corrupt and vanishing
WAL objects."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import FrozenInstanceError
from datetime import timedelta
from typing import Any

import obstore
import pytest

from slatedb_py import Db, WalReader, WriteBatch, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import (
    DatabaseNotFoundError,
    DataError,
    HistoryGoneError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingObjectError,
    NotFoundError,
)
from slatedb_py.merge import Concat
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from slatedb_py.wal_reader import Change
from tests.support import make_store

QUIET = {"flush_interval": None, "gc_enabled": False, "compactor_enabled": False}
NOW = GcOptions(min_age=timedelta(0))
FAST = timedelta(milliseconds=5)
T0 = 1_700_000_000_000


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    with make_store(request.param) as s:
        yield s


def open_db(store: Any, clock: ManualClock | None = None) -> Db:
    return Db.open("db", store, DbOptions(merge_operator=Concat(), **QUIET), clock=clock)


def as_tuple(c: Change) -> tuple[Any, ...]:
    return (c.seq, c.key, c.value, c.kind, c.create_ts, c.expire_ts)


def write_history(db: Db, clock: ManualClock) -> list[tuple[Any, ...]]:
    """Puts, deletes, TTL puts, merges and batches (several rows at one seq); returns the
    model: one (seq, key, value, kind, create_ts, expire_ts) per row, in WAL order."""
    model: list[tuple[Any, ...]] = []
    for i in range(40):
        clock.advance(7)
        now = clock.now_ms()
        seq = i + 1  # one per write, from 1 in a new database
        k = b"k%03d" % (i % 13)
        if i % 5 == 0:
            db.put(k, b"v%d" % i)
            model.append((seq, k, b"v%d" % i, "value", now, None))
        elif i % 5 == 1:
            db.delete(k)
            model.append((seq, k, None, "tombstone", now, None))
        elif i % 5 == 2:
            db.put(k, b"ttl%d" % i, ttl=timedelta(seconds=30))
            model.append((seq, k, b"ttl%d" % i, "value", now, now + 30_000))
        elif i % 5 == 3:
            db.merge(b"m%d" % (i % 3), b"+%d" % i)
            model.append((seq, b"m%d" % (i % 3), b"+%d" % i, "merge", now, None))
        else:
            b = WriteBatch().put(b"b%d" % i, b"x").delete(b"gone%d" % i).put(b"a%d" % i, b"y")
            rows = [
                (seq, b"b%d" % i, b"x", "value", now, None),
                (seq, b"gone%d" % i, None, "tombstone", now, None),
                (seq, b"a%d" % i, b"y", "value", now, None),
            ]
            if hasattr(WriteBatch, "merge"):
                b.merge(b"bm%d" % i, b"op")
                rows.append((seq, b"bm%d" % i, b"op", "merge", now, None))
            db.write(b)
            model += rows
        if i == 20:
            db.flush_memtable()  # in L0 now, still in the WAL (nothing collected)
    return model


def test_every_write_once_in_order(store: Any) -> None:
    clock = ManualClock(T0)
    db = open_db(store, clock)
    model = write_history(db, clock)
    wal = WalReader("db", store)
    got = [as_tuple(c) for c in wal.changes()]
    # Rows of a batch come in the order the batch wrote them, or at least all of them at
    # their seq: compare per seq as multisets, and the whole as the same sequence of seqs.
    assert [r[0] for r in got] == [r[0] for r in model]
    assert sorted(got, key=repr) == sorted(model, key=repr)
    assert got == model or _same_per_seq(got, model)
    # Reading again gives the same; the stream does not depend on the writer being open.
    db.close()
    assert [as_tuple(c) for c in wal.changes(0)] == got
    assert [as_tuple(c) for c in WalReader("/db/", store).changes()] == got


def _same_per_seq(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    def group(rows: list[tuple[Any, ...]]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(repr(r))
        return {k: sorted(v) for k, v in out.items()}

    return group(a) == group(b)


def test_batch_rows_keep_their_order_in_the_wal(store: Any) -> None:
    db = open_db(store)
    db.write(WriteBatch().put(b"z", b"1").put(b"a", b"2").delete(b"m"))
    changes = list(WalReader("db", store).changes())
    db.close()
    rows = [(c.seq, c.key, c.kind) for c in changes]
    assert rows == [(1, b"z", "value"), (1, b"a", "value"), (1, b"m", "tombstone")]
    c = changes[0]
    assert c == Change(1, b"z", b"1", "value", c.create_ts, None) and hash(c) == hash(
        Change(1, b"z", b"1", "value", c.create_ts, None)
    )
    with pytest.raises(FrozenInstanceError):
        c.seq = 2  # type: ignore[misc]


def test_since_seq_in_the_middle(store: Any) -> None:
    clock = ManualClock(T0)
    db = open_db(store, clock)
    model = write_history(db, clock)
    db.close()
    wal = WalReader("db", store)
    last = model[-1][0]
    for since in (0, 1, 5, 17, last - 1, last, last + 10):
        got = [as_tuple(c) for c in wal.changes(since_seq=since)]
        want = [r for r in model if r[0] > since]
        assert _same_per_seq(got, want) and [r[0] for r in got] == [r[0] for r in want]
    # A since_seq inside nothing (a batch's seq) takes all or none of the batch's rows.
    batch_seq = next(r[0] for r in model if r[1].startswith(b"b"))
    rows = [c for c in wal.changes(batch_seq - 1) if c.seq == batch_seq]
    assert len(rows) == (4 if hasattr(WriteBatch, "merge") else 3)
    assert all(c.seq > batch_seq for c in wal.changes(batch_seq))


def test_fresh_and_empty_databases_are_not_history_gone(store: Any) -> None:
    db = open_db(store)
    assert list(WalReader("db", store).changes()) == []  # only the writer's fence
    db.put(b"a", b"1")
    assert [c.seq for c in WalReader("db", store).changes(0)] == [1]
    db.close()


def test_arguments_are_checked(store: Any) -> None:
    with pytest.raises(DatabaseNotFoundError):
        WalReader("nothing", store).changes()
    open_db(store).close()
    wal = WalReader("db", store)
    with pytest.raises(InvalidTypeError):
        wal.changes("0")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        wal.changes(-1)
    with pytest.raises(InvalidTypeError):
        wal.changes(0, follow=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        WalReader("db", store, poll_interval=timedelta(0))
    with pytest.raises(InvalidArgumentError):
        WalReader("", store)


def test_follow_sees_writes_made_after_it_started(store: Any) -> None:
    db = open_db(store)
    db.put(b"before", b"0")
    n = 30

    def writer() -> None:
        for i in range(n):
            if i % 7 == 0:
                db.write(WriteBatch().put(b"w%d" % i, b"a").put(b"x%d" % i, b"b"))
            else:
                db.put(b"w%d" % i, b"%d" % i)
            time.sleep(0.002)

    wal = WalReader("db", store, poll_interval=FAST)
    stream = wal.changes(follow=True)
    t = threading.Thread(target=writer)
    rows = n + len(range(0, n, 7))  # a batch every 7th write, of two rows
    seen: list[Change] = []
    with closing(stream):
        first = next(stream)
        t.start()
        for c in stream:
            seen.append(c)
            if len(seen) == rows:
                break
    t.join()
    assert first.key == b"before" and first.seq == 1
    assert [c.seq for c in seen] == sorted(c.seq for c in seen)
    assert {c.seq for c in seen} == set(range(2, n + 2))
    with pytest.raises(StopIteration):
        next(stream)  # closed
    db.close()


def test_close_from_another_thread_ends_a_sleeping_stream(store: Any) -> None:
    db = open_db(store)
    db.put(b"a", b"1")
    wal = WalReader("db", store, poll_interval=timedelta(seconds=30))
    out: list[Change] = []
    t = threading.Thread(target=lambda: out.extend(wal.changes(follow=True)))
    t.start()
    time.sleep(0.2)  # now asleep between polls
    began = time.monotonic()
    wal.close()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - began < 2
    assert [c.key for c in out] == [b"a"]
    db.close()


def ahead() -> ManualClock:
    """A collector's clock a minute ahead: objects written this millisecond are old enough
    for `min_age=0` whatever the store's timestamps round to."""
    return ManualClock(time.time_ns() // 1_000_000 + 60_000)


def collected_db(store: Any) -> Db:
    """Seqs 1..10 written (one WAL object each), flushed to L0, then collected: the collector
    keeps the WAL object at `replay_after_wal_id` (seq 10's), as SlateDB does. Writer open."""
    db = open_db(store)
    for i in range(10):
        db.put(b"k%d" % i, b"v%d" % i)
    db.flush_memtable()
    gone = admin.run_gc_once("db", store, NOW, clock=ahead())
    assert len(gone.wal) == 9, gone
    return db


def test_history_gone_after_the_collector(store: Any) -> None:
    db = collected_db(store)
    wal = WalReader("db", store)
    with pytest.raises(HistoryGoneError) as e:
        list(wal.changes())
    assert (e.value.first_missing, e.value.last_missing) == (1, 9)
    assert str(e.value) == (
        "seq 1..9 are gone: the collector removed those WAL objects; "
        "the oldest WAL object left starts at seq 10"
    )
    assert isinstance(e.value, NotFoundError)
    with pytest.raises(HistoryGoneError, match="seq 9 is gone"):
        list(wal.changes(8))
    assert [c.seq for c in wal.changes(9)] == [10]
    assert list(wal.changes(10)) == []
    for i in range(10, 15):
        db.put(b"k%d" % i, b"v%d" % i)
    with pytest.raises(HistoryGoneError) as e:
        list(wal.changes(since_seq=4))
    assert (e.value.first_missing, e.value.last_missing) == (5, 9)
    assert [c.seq for c in wal.changes(9)] == [10, 11, 12, 13, 14, 15]
    assert [c.seq for c in wal.changes(12)] == [13, 14, 15]
    db.close()


def test_history_gone_when_no_wal_object_is_left(store: Any) -> None:
    """Every WAL object with rows removed (the last one too, as a collector keeping less than
    ours would): the manifest's `last_l0_seq` says which writes are gone."""
    db = collected_db(store)
    db.close()
    paths = DbPaths.of("db")
    data = [m["path"] for b in obstore.list(store, paths.wal_dir) for m in b if m["size"] > 0]
    assert data
    for key in data:
        obstore.delete(store, key)
    wal = WalReader("db", store)
    with pytest.raises(HistoryGoneError) as e:
        list(wal.changes())
    assert (e.value.first_missing, e.value.last_missing) == (1, 10)
    assert "no WAL object holds them" in str(e.value)
    with pytest.raises(HistoryGoneError, match="seq 10 is gone"):
        list(wal.changes(9))
    assert list(wal.changes(10)) == []


def test_history_gone_while_following(store: Any) -> None:
    """A follower that fell behind the collector learns it at its next poll."""
    db = open_db(store)
    db.put(b"a", b"1")
    wal = WalReader("db", store, poll_interval=FAST)
    stream = wal.changes(follow=True)
    assert next(stream).seq == 1
    for i in range(5):
        db.put(b"k%d" % i, b"v")  # seqs 2..6
    db.flush_memtable()
    admin.run_gc_once("db", store, NOW, clock=ahead())
    db.put(b"after", b"x")  # seq 7
    with pytest.raises(HistoryGoneError) as e:
        next(stream)
    # Seq 6's object is at `replay_after_wal_id`: the collector keeps it.
    assert (e.value.first_missing, e.value.last_missing) == (2, 5)
    assert "the next WAL object left starts at seq 6" in str(e.value)
    db.close()


class Racing(Store):
    """The collector deletes `victim` just before the reader's GET of it."""

    victim = ""

    def get(self, path: str) -> bytes | None:
        if path == self.victim:
            self.delete(path)
        return super().get(path)


def test_a_wal_object_collected_between_list_and_get(store: Any) -> None:
    db = open_db(store)
    for i in range(5):
        db.put(b"k%d" % i, b"v")  # seqs 1..5 in WAL ids 2..6
    db.flush_memtable()
    racing = Racing(store)
    paths = DbPaths.of("db")
    racing.victim = paths.wal(4)  # seq 3
    with pytest.raises(HistoryGoneError) as e:
        list(WalReader("db", racing).changes())
    assert (e.value.first_missing, e.value.last_missing) == (3, 3)
    # The last object with rows, taken after the LIST: the manifest (L0 up to 5) says so.
    racing.victim = paths.wal(6)
    with pytest.raises(HistoryGoneError) as e:
        list(WalReader("db", racing).changes(3))
    assert (e.value.first_missing, e.value.last_missing) == (5, 5)
    db.close()


def test_a_vanished_object_whose_rows_are_not_in_l0_is_a_truncated_wal(store: Any) -> None:
    db = open_db(store)
    for i in range(3):
        db.put(b"k%d" % i, b"v")  # seqs 1..3 in WAL ids 2..4, only in the WAL
    racing = Racing(store)
    racing.victim = DbPaths.of("db").wal(4)
    with pytest.raises(MissingObjectError, match="WAL truncated") as e:
        list(WalReader("db", racing).changes())
    assert e.value.object == racing.victim
    db.close()


def test_a_corrupt_wal_object_is_a_data_error_naming_it(store: Any) -> None:
    db = open_db(store)
    for i in range(3):
        db.put(b"k%d" % i, b"v")
    db.close()
    key = DbPaths.of("db").wal(3)
    data = bytearray(bytes(obstore.get(store, key).bytes()))
    data[len(data) // 3] ^= 0xFF
    obstore.put(store, key, bytes(data))
    stream = WalReader("db", store).changes()
    assert next(stream).seq == 1
    with pytest.raises(DataError) as e:
        next(stream)
    assert key in str(e.value)
