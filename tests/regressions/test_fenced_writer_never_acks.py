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
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import FencedError
from tests.support import pass_time

OPTS = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))
ZERO_WITH_FENCES = GcOptions(
    min_age=timedelta(0), delete_wal_fences=True, wal_fence_min_age=timedelta(0)
)


def real_time() -> ManualClock:
    """A manual clock starting at the real time, like the store's object timestamps."""
    return ManualClock(time.time_ns() // 1_000_000)


def fence(store, clock: ManualClock) -> Db:  # type: ignore[no-untyped-def]
    """Writer A, then writer B (fencing A), which writes and closes."""
    a = Db.open("db", store, OPTS, clock=clock)
    a.put(b"before", b"a")
    with Db.open("db", store, OPTS) as b:
        b.put(b"by-b", b"b")
    return a


def assert_fenced_and_nothing_lost(a: Db, store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FencedError):
        a.put(b"x", b"lost?")
    with pytest.raises(FencedError):
        a.put(b"y", b"still fenced")
    a.close()
    with Db.open("db", store, OPTS) as c:
        assert c.get(b"x") is None and c.get(b"y") is None
        assert c.get(b"before") == b"a" and c.get(b"by-b") == b"b"


@pytest.mark.parametrize(
    "gc, advance_ms, gc_clock_only",
    [
        (ZERO, 0, False),  # the steps
        (GcOptions(), 11 * 60_000, False),  # default options, collector 10+ minutes later
        (ZERO_WITH_FENCES, 10**9, True),  # a collector clock far ahead: the floor is the store's
        (ZERO_WITH_FENCES, 0, False),  # fence deletion on: the floor keeps a young fence
    ],
    ids=["zero-ages", "default-10min-later", "collector-clock-ahead", "fences-deletable"],
)
def test_a_fenced_writer_never_acknowledges(
    store, gc: GcOptions, advance_ms: int, gc_clock_only: bool
) -> None:  # type: ignore[no-untyped-def]
    clock = real_time()
    a = fence(store, clock)
    gc_clock = real_time()
    gc_clock.advance(advance_ms)
    if not gc_clock_only:
        clock.advance(advance_ms)  # A was stalled as long as the collector's clock moved
    admin.run_gc_once("db", store, gc, clock=gc_clock)
    assert_fenced_and_nothing_lost(a, store)


def test_a_fenced_writer_whose_fence_was_collected_confirms_first(tmp_path: Path) -> None:
    """Fence deletion on, and an hour passes (A stalled that long): the collector takes B's
    fence, A's next upload lands on its id, and A confirms its epoch before acknowledging."""
    store = LocalStore(str(tmp_path))
    clock = real_time()
    a = fence(store, clock)
    pass_time(tmp_path, 3_600_000, clock)
    admin.create_checkpoint("db", store)  # the database moved on since: a new manifest version
    assert admin.run_gc_once("db", store, ZERO_WITH_FENCES).wal_fences
    assert_fenced_and_nothing_lost(a, store)


def test_the_fence_is_collected_only_when_asked_and_old_enough(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    for i in range(3):
        with Db.open("db", store, OPTS) as db:
            db.put(b"k", b"%d" % i)
    late = real_time()
    late.advance(3_600_000)
    assert admin.run_gc_once("db", store, ZERO, clock=late).wal_fences == []  # kept by default
    assert (
        admin.run_gc_once("db", store, ZERO_WITH_FENCES, clock=late).wal_fences == []
    )  # the store's floor
    pass_time(tmp_path, 3_600_000)
    with Db.open("db", store, OPTS) as db:  # new objects: the store's clock moved on
        db.put(b"k", b"new")
    assert admin.run_gc_once("db", store, ZERO_WITH_FENCES).wal_fences != []
