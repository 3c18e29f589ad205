"""Time travel within `history_retention` (slatedb_py.time_travel): a model keyed by the time
of each write, against `DbReader.open(as_of=)`, `admin.create_clone(as_of=)` and
`admin.restore_to_time`, with flushes, compactions and collections in between."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from obstore.store import LocalStore, MemoryStore, S3Store

from slatedb_py import Db, DbReader, admin
from slatedb_py.clock import ManualClock, SystemClock
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import FencedError, OutsideRetentionError
from tests.support import pass_time

ZERO = timedelta(0)
RETENTION = timedelta(seconds=60)
NO_POLL = ReaderOptions(manifest_poll_interval=None)


def opts(retention: timedelta | None) -> DbOptions:
    return DbOptions(
        flush_interval=None,
        compactor_enabled=False,
        gc_enabled=False,
        history_retention=retention,
    )


def gc(retention: timedelta | None) -> GcOptions:
    return GcOptions(min_age=ZERO, history_retention=retention)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class History:
    """The model: the state after each write, keyed by its write time (ms)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.times: list[int] = [clock.now_ms()]
        self.states: list[dict[bytes, bytes]] = [{}]
        self.state: dict[bytes, bytes] = {}

    def record(self) -> None:
        self.times.append(self.clock.now_ms())
        self.states.append(dict(self.state))

    def at(self, ms: int) -> dict[bytes, bytes]:
        i = max(i for i, t in enumerate(self.times) if t <= ms)
        return self.states[i]


def run(
    db: Db, store: Any, clock: ManualClock, h: History, rng: random.Random, steps: int, **kw: Any
) -> None:
    retention: timedelta | None = kw.get("retention", RETENTION)
    for i in range(steps):
        r = rng.random()
        key = b"k%02d" % rng.randrange(16)
        if r < 0.6:
            value = b"v%d-" % i + b"x" * rng.randrange(40)
            db.put(key, value)
            h.state[key] = value
            h.record()
        elif r < 0.75:
            db.delete(key)
            h.state.pop(key, None)
            h.record()
        elif r < 0.85:
            db.flush_memtable()
        elif r < 0.92:
            db.compact()
        else:
            admin.run_gc_once("db", store, gc(retention), clock=clock)
        clock.advance(rng.randrange(1, 4000))


def read_all(r: Any) -> dict[bytes, bytes]:
    return dict(r.scan())


def check_reader(store: Any, clock: ManualClock, h: History, t: int) -> None:
    expected = h.at(t)
    with DbReader.open("db", store, options=NO_POLL, as_of=at(t), clock=clock) as r:
        assert read_all(r) == expected, t
        for k in (b"k%02d" % i for i in range(16)):
            assert r.get(k) == expected.get(k), (t, k)


def make(
    store: Any, seed: int, steps: int = 120, retention: timedelta | None = RETENTION
) -> tuple[ManualClock, History, Db]:
    clock = ManualClock(SystemClock().now_ms())
    h = History(clock)
    db = Db.open("db", store, opts(retention), clock=clock)
    run(db, store, clock, h, random.Random(seed), steps, retention=retention)
    return clock, h, db


@pytest.mark.parametrize("seed", range(4))
def test_reader_at_any_time_in_the_window_reads_the_model(seed: int) -> None:
    store = MemoryStore()
    reads_the_model_in_the_window(store, seed)


def test_time_travel_on_every_store(store: Any) -> None:
    """The same on a local folder and on S3 (moto; the RADOS Gateway in its CI job). On S3
    at fewer random times: each is a reader opened cold over the network, and the four seeds
    above check many times on memory already."""
    reads_the_model_in_the_window(store, 7, random_times=8 if isinstance(store, S3Store) else 25)


def reads_the_model_in_the_window(store: Any, seed: int, random_times: int = 25) -> None:
    clock, h, db = make(store, seed)
    db.flush()
    admin.run_gc_once("db", store, gc(RETENTION), clock=clock)
    now = clock.now_ms()
    rng = random.Random(seed)
    start = now - RETENTION // timedelta(milliseconds=1)
    points = [start, now, *h.times[-5:]]
    points += [rng.randrange(start, now + 1) for _ in range(random_times)]
    for t in points:
        if t >= start:
            check_reader(store, clock, h, t)
    db.close()


def test_outside_the_window_is_a_clear_error() -> None:
    store = MemoryStore()
    clock, h, db = make(store, 7)
    db.flush_memtable()
    db.compact()
    admin.run_gc_once("db", store, gc(RETENTION), clock=clock)
    now = clock.now_ms()
    with pytest.raises(OutsideRetentionError) as e:
        DbReader.open("db", store, as_of=at(h.times[0]), clock=clock)
    assert e.value.newest == at(now)
    assert "window" in str(e.value)
    with pytest.raises(OutsideRetentionError, match="future"):
        DbReader.open("db", store, as_of=at(now + 1000), clock=clock)
    with pytest.raises(OutsideRetentionError, match="aware"):
        DbReader.open("db", store, as_of=datetime(2020, 1, 1), clock=clock)
    db.close()


def compacted_history(seed: int) -> tuple[Any, ManualClock, History, Db, int]:
    """A day's retention, a history flushed and compacted, and a time in its middle."""
    store = MemoryStore()
    clock, h, db = make(store, seed, retention=timedelta(days=1))
    db.flush_memtable()
    db.compact()
    return store, clock, h, db, h.times[len(h.times) // 2]


def test_every_collector_keeps_the_retention_the_writer_recorded() -> None:
    """A standalone collector without a retention of its own keeps what the writer's
    retention promises (recorded in the database); an explicit zero overrides it, and a
    writer opened with zero removes the record: then collectors delete as before."""
    store, clock, h, db, old = compacted_history(3)
    result = admin.run_gc_once("db", store, gc(None), clock=clock)
    assert not result.compacted
    with DbReader.open("db", store, options=NO_POLL, as_of=at(old), clock=clock) as r:
        assert read_all(r) == h.at(old)
    db.close()
    with Db.open("db", store, opts(None), clock=clock):  # no option: the record stays
        pass
    assert not admin.run_gc_once("db", store, gc(None), clock=clock).compacted
    with Db.open("db", store, opts(ZERO), clock=clock):
        pass
    result = admin.run_gc_once("db", store, gc(None), clock=clock)
    assert result.wal and result.compacted
    with pytest.raises(OutsideRetentionError):
        DbReader.open("db", store, options=NO_POLL, as_of=at(old), clock=clock)


def test_an_explicit_zero_retention_collects_despite_the_record() -> None:
    store, clock, _h, db, old = compacted_history(4)
    result = admin.run_gc_once("db", store, gc(ZERO), clock=clock)
    assert result.wal and result.compacted
    with pytest.raises(OutsideRetentionError, match="the window is"):
        DbReader.open("db", store, options=NO_POLL, as_of=at(old), clock=clock)
    db.close()


def check_db(path: str, store: Any, clock: ManualClock, expected: dict[bytes, bytes]) -> None:
    with Db.open(path, store, opts(None), clock=clock) as db:
        assert dict(db.scan()) == expected
        for k in (b"k%02d" % i for i in range(16)):
            assert db.get(k) == expected.get(k), k


@pytest.mark.parametrize("seed", range(3))
def test_clone_at_a_time_is_the_model_at_that_time(seed: int) -> None:
    store = MemoryStore()
    clock, h, db = make(store, seed)
    db.flush()
    now = clock.now_ms()
    rng = random.Random(seed)
    start = now - RETENTION // timedelta(milliseconds=1)
    for i, t in enumerate([start, now, *(rng.randrange(start, now) for _ in range(4))]):
        admin.create_clone(f"clone{i}", "db", store, as_of=at(t), clock=clock)
        check_db(f"clone{i}", store, clock, h.at(t))
    # The parent goes on; a clone is unaffected by what it writes and collects later.
    run(db, store, clock, h, rng, 40)
    db.close()
    admin.run_gc_once("db", store, gc(RETENTION), clock=clock)
    check_db("clone0", store, clock, h.at(start))


@pytest.mark.parametrize("seed", range(3))
def test_restore_to_time_is_the_model_at_that_time(seed: int, tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    clock, h, db = make(store, seed)
    db.flush()
    rng = random.Random(seed)
    now = clock.now_ms()
    t = rng.randrange(now - RETENTION // timedelta(milliseconds=1), now)
    admin.restore_to_time("db", store, at(t), options=opts(RETENTION), clock=clock)
    with pytest.raises(FencedError):
        db.put(b"k00", b"after the restore")
    db.close()
    check_db("db", store, clock, h.at(t))
    # Writes go on from the restored state; the history before the restore is still kept,
    # and reads at a time before it see the database as it was then.
    h.state = dict(h.at(t))
    h.record()  # the restore's time
    restored_at = clock.now_ms()
    with Db.open("db", store, opts(RETENTION), clock=clock) as db2:
        clock.advance(10)
        run(db2, store, clock, h, rng, 10)
        db2.flush()
        state = dict(h.state)
    now = clock.now_ms()
    start = now - RETENTION // timedelta(milliseconds=1)
    assert start < restored_at - 1  # the restore is inside the window
    around = [restored_at - 1, restored_at, restored_at + 1, start, now]
    for t2 in [*around, *(rng.randrange(start, now) for _ in range(10))]:
        if start <= t2 <= now:
            check_reader(store, clock, h, t2)
    pass_time(tmp_path, 3_600_000, clock)  # the history is now outside the window
    result = admin.run_gc_once("db", store, gc(RETENTION), clock=clock)
    assert result.wal
    check_db("db", store, clock, state)


def test_restore_outside_the_window_changes_nothing() -> None:
    store = MemoryStore()
    clock, _, db = make(store, 11)
    db.flush()
    before = dict(db.scan())
    old = clock.now_ms() - 2 * (RETENTION // timedelta(milliseconds=1))
    with pytest.raises(OutsideRetentionError, match="history_retention"):
        admin.restore_to_time("db", store, at(old), options=opts(RETENTION), clock=clock)
    db.put(b"k99", b"still the writer")
    before[b"k99"] = b"still the writer"
    assert dict(db.scan()) == before
    db.close()


def test_a_reader_at_a_time_holds_its_files_until_closed() -> None:
    store = MemoryStore()
    clock, h, db = make(store, 5)
    db.flush()
    t = clock.now_ms() - 30_000
    reader = DbReader.open("db", store, options=NO_POLL, as_of=at(t), clock=clock)
    assert len(admin.list_checkpoints("db", store)) == 1
    run(db, store, clock, h, random.Random(50), 40)  # the window moves on, past `t`
    db.compact()
    clock.advance(60_000)
    admin.run_gc_once("db", store, gc(RETENTION), clock=clock)
    assert read_all(reader) == h.at(t)
    assert all(reader.get(k) == h.at(t).get(k) for k in (b"k%02d" % i for i in range(16)))
    reader.close()
    assert admin.list_checkpoints("db", store) == []
    db.close()


def test_an_open_db_collects_with_its_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import slatedb_py.db as db_module

    seen: list[GcOptions] = []
    ran = threading.Event()

    def fake(_store: Any, _paths: Any, options: GcOptions, _clock: Any) -> None:
        seen.append(options)
        ran.set()

    monkeypatch.setattr(db_module, "collect_garbage", fake)
    every = GcOptions(interval=timedelta(milliseconds=5))
    o = DbOptions(
        flush_interval=None, compactor_enabled=False, gc=every, history_retention=RETENTION
    )
    with Db.open("db", MemoryStore(), o):
        assert ran.wait(10)
    assert seen[0].history_retention == RETENTION and seen[0].interval == every.interval
