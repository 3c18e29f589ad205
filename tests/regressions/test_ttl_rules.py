"""Regression (defect 5): TTLs had three different rules.

`Db.put(ttl=timedelta(microseconds=999))` checked "positive" before rounding down to whole
milliseconds, so it stored a 0 ms TTL and the write was invisible at once; the native
`WriteBatch.put` refused the same value; `DbOptions(default_ttl=timedelta(0))` was accepted
and hid every write. Now one rule (slatedb_py.batch.ttl_ms, mirrored in
rust/src/bindings/batch.rs) holds for `Db.put`, `WriteBatch.put` and `default_ttl`:
TTLs are whole milliseconds, finer parts are truncated, and anything under 1 ms is refused.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch, _native
from slatedb_py.batch import ttl_ms
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

us = timedelta(microseconds=1)
ms = timedelta(milliseconds=1)

# (ttl, expected): an int is the stored TTL in ms, a class is the refusal.
EDGES = [
    (timedelta(0), InvalidArgumentError),
    (us, InvalidArgumentError),
    (999 * us, InvalidArgumentError),
    (ms, 1),
    (ms + us, 1),
    (1500 * us, 1),
    (2 * ms - us, 1),
    (2 * ms, 2),
    (timedelta(seconds=1), 1000),
    (timedelta(hours=1, microseconds=999), 3_600_000),
    (-us, InvalidArgumentError),
    (-ms, InvalidArgumentError),
    (-timedelta(days=3), InvalidArgumentError),
    (timedelta.min, InvalidArgumentError),
    (timedelta(days=365 * 1000), 365 * 1000 * 86_400_000),
    (timedelta.max, timedelta.max // ms),
    (0, InvalidTypeError),
    (1, InvalidTypeError),
    (1.5, InvalidTypeError),
    (True, InvalidTypeError),
    ("1ms", InvalidTypeError),
    (b"\x01", InvalidTypeError),
    ([ms], InvalidTypeError),
]
IDS = [repr(t) for t, _ in EDGES]


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:
        return (type(e), str(e))


def _python(ttl):
    return _outcome(lambda: ttl_ms(ttl))


def _native_batch(ttl):
    def run():
        batch = WriteBatch().put(b"k", b"v", ttl=ttl)
        memtable = _native.Memtable()
        memtable.apply(batch, 1, 0)  # create_ts 0: the row's expire_ts is its TTL
        (row,) = memtable.range().to_list()
        return row.expire_ts

    return _outcome(run)


def _default_ttl(ttl):
    return _outcome(lambda: DbOptions(default_ttl=ttl).default_ttl)


def _check(kind, got, expected, ttl):
    if isinstance(expected, int):
        assert got == ("ok", expected), (kind, ttl, got)
    else:
        assert got[0] is expected, (kind, ttl, got)


@pytest.mark.parametrize(("ttl", "expected"), EDGES, ids=IDS)
def test_python_and_native_rules_agree(ttl, expected) -> None:
    py, native = _python(ttl), _native_batch(ttl)
    _check("python", py, expected, ttl)
    _check("native", native, expected, ttl)
    assert py == native  # same outcome, and for a refusal the very same message


@pytest.mark.parametrize(("ttl", "expected"), EDGES, ids=IDS)
def test_default_ttl_follows_the_same_rule(ttl, expected) -> None:
    got = _default_ttl(ttl)
    if isinstance(expected, int):
        assert got == ("ok", ttl)
    else:
        py = _python(ttl)
        assert got[0] is expected, got
        assert got[1] == py[1].replace("ttl", "default_ttl", 1), (got, py)


@pytest.mark.parametrize(("ttl", "expected"), EDGES, ids=IDS)
def test_refusals_name_the_value_and_say_whole_milliseconds(ttl, expected) -> None:
    if isinstance(expected, int):
        return
    _, message = _python(ttl)
    assert message.startswith("ttl must be"), message
    if expected is InvalidArgumentError:
        assert str(ttl) in message and "whole milliseconds" in message, message
        assert "at least 1 ms" in message, message
    else:
        assert type(ttl).__name__ in message and repr(ttl)[:20] in message, message


def _expiry_of(write, ttl):
    """Writes one row through `write(db, ttl)` on a manual clock; returns how many ms it lives
    (None when it never expires within a huge horizon) or the refusal."""
    clock = ManualClock()
    db = Db.open("db", MemoryStore(), DbOptions(flush_interval=None, gc_enabled=False), clock=clock)
    try:
        got = _outcome(lambda: write(db, ttl))
        if got[0] != "ok":
            assert db.get(b"k") is None  # a refused write wrote nothing
            return got
        assert db.get(b"k") == b"v"  # every accepted TTL is at least 1 ms: visible now
        return ("ok", _lifetime(db, clock))
    finally:
        db.close()


def _lifetime(db, clock) -> int:
    start = clock.now_ms()
    lo, hi = 0, timedelta.max // ms + 1  # visible at start + lo, gone at start + hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        clock.set(start + mid)
        if db.get(b"k") is None:
            hi = mid
        else:
            lo = mid
    clock.set(start)
    return hi


def _put(db, ttl):
    db.put(b"k", b"v", ttl=ttl)


def _write(db, ttl):
    db.write(WriteBatch().put(b"k", b"v", ttl=ttl))


@pytest.mark.parametrize(("ttl", "expected"), EDGES, ids=IDS)
def test_db_put_and_db_write_store_the_same_ttl(ttl, expected) -> None:
    put, write = _expiry_of(_put, ttl), _expiry_of(_write, ttl)
    _check("put", put, expected, ttl)
    _check("write", write, expected, ttl)
    assert put == write == _python(ttl)


@pytest.mark.parametrize(("ttl", "expected"), [e for e in EDGES if isinstance(e[1], int)], ids=str)
def test_default_ttl_applies_whole_milliseconds_to_put_and_write(ttl, expected) -> None:
    for write in (lambda db: db.put(b"k", b"v"), lambda db: db.write(WriteBatch().put(b"k", b"v"))):
        clock = ManualClock()
        opts = DbOptions(flush_interval=None, gc_enabled=False, default_ttl=ttl)
        with Db.open("db", MemoryStore(), opts, clock=clock) as db:
            write(db)
            assert db.get(b"k") == b"v"
            assert _lifetime(db, clock) == expected


def test_the_reported_case() -> None:
    clock = ManualClock()  # a 1 ms TTL may pass between a put and a get on the real clock
    db = Db.open("db", MemoryStore(), DbOptions(flush_interval=None, gc_enabled=False), clock=clock)
    try:
        with pytest.raises(InvalidArgumentError, match="whole milliseconds") as e:
            db.put(b"k", b"v", ttl=timedelta(microseconds=999))
        assert "0:00:00.000999" in str(e.value)
        assert db.get(b"k") is None
        db.put(b"k", b"v", ttl=timedelta(microseconds=1999))  # truncated to 1 ms, visible now
        assert db.get(b"k") == b"v"
        clock.advance(1)
        assert db.get(b"k") is None
    finally:
        db.close()
    with pytest.raises(InvalidArgumentError, match="default_ttl"):
        DbOptions(default_ttl=timedelta(0))
