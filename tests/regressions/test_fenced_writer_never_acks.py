"""Defect 1 of the adversarial review: a fenced writer acknowledged durable writes that were lost.

Writer A opens, writer B opens (fencing A with a zero-byte WAL object at A's next id), B writes
and closes, the collector runs with zero ages and deletes that fence: A's next upload found its
id free, succeeded below B's replay point, and A acknowledged a write nobody ever replays.
Now the collector keeps fences (always by default; when told to delete them, never younger than
`safety.COLLECTOR_FLOOR`), and a writer whose last epoch confirmation is older than
`safety.CLIENT_WINDOW_S` confirms again before acknowledging. The interleavings are explored by
the model test in tests/property/test_fencing_model.py."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from slatedb_py import Db, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import FencedError

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))
ZERO_WITH_FENCES = GcOptions(min_age=timedelta(0), delete_wal_fences=True, wal_fence_min_age=timedelta(0))


def real_time() -> ManualClock:
    """A manual clock starting at the real time, like the store's object timestamps."""
    return ManualClock(time.time_ns() // 1_000_000)


def fence_then_collect(store, gc: GcOptions, *, advance_ms: int = 0, gc_clock_only: bool = False):  # type: ignore[no-untyped-def]
    clock = real_time()
    a = Db.open("db", store, OPTS, clock=clock)
    a.put(b"before", b"a")
    with Db.open("db", store, OPTS) as b:
        b.put(b"by-b", b"b")
    gc_clock = real_time()
    gc_clock.advance(advance_ms)
    if not gc_clock_only:
        clock.advance(advance_ms)  # A was stalled as long as the collector's clock moved
    admin.run_gc_once("db", store, gc, clock=gc_clock)
    return a


@pytest.mark.parametrize(
    "gc, advance_ms, gc_clock_only",
    [
        (ZERO, 0, False),  # the steps
        (GcOptions(), 11 * 60_000, False),  # default options, collector 10+ minutes later
        (ZERO, 10**9, True),  # a collector whose clock is far ahead: fences are still kept
        (ZERO_WITH_FENCES, 0, False),  # fence deletion on: the floor keeps a young fence
        (ZERO_WITH_FENCES, 3_600_000, False),  # fence collected: A confirms its epoch first
    ],
    ids=["zero-ages", "default-10min-later", "collector-clock-ahead", "fences-deletable", "fence-collected"],
)
def test_a_fenced_writer_never_acknowledges(store, gc: GcOptions, advance_ms: int, gc_clock_only: bool) -> None:  # type: ignore[no-untyped-def]
    a = fence_then_collect(store, gc, advance_ms=advance_ms, gc_clock_only=gc_clock_only)
    with pytest.raises(FencedError):
        a.put(b"x", b"lost?")
    with pytest.raises(FencedError):
        a.put(b"y", b"still fenced")
    a.close()
    with Db.open("db", store, OPTS) as c:
        assert c.get(b"x") is None and c.get(b"y") is None
        assert c.get(b"before") == b"a" and c.get(b"by-b") == b"b"


def test_the_fence_is_collected_only_when_asked_and_old_enough(store) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        with Db.open("db", store, OPTS) as db:
            db.put(b"k", b"%d" % i)
    late = real_time()
    late.advance(3_600_000)
    assert admin.run_gc_once("db", store, ZERO, clock=late).wal_fences == []
    assert admin.run_gc_once("db", store, ZERO_WITH_FENCES).wal_fences == []  # younger than the floor
    assert admin.run_gc_once("db", store, ZERO_WITH_FENCES, clock=late).wal_fences != []
