"""The sequence tracker (slatedb_py.seq_tracker over rust/src/seq_tracker.rs): 0.17.0's blobs
byte for byte, its insertion rules, its lookups, and the points a writer records at L0 flushes
as the clock moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from obstore.store import MemoryStore

from slatedb_py import admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.db import Db
from slatedb_py.errors import DataError, InvalidArgumentError, UnsupportedFormatError
from slatedb_py.manifest.codec import decode_manifest
from slatedb_py.manifest.model import EMPTY_SEQUENCE_TRACKER
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.seq_tracker import CAPACITY, SequenceTracker, extended
from slatedb_py.store import Store

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
T0_MS = 1_700_000_000_000  # a realistic epoch, before any real clock reading a test meets

# Written by the official 0.17.0 wheel, writing in real time (put, flush; 5 s later put,
# flush: dropped; 66 s: two puts, flush; 130 s: put, flush): points (1, t), (3, t+66), (5,
# t+131). The second put of the 66 s memtable is under a minute after its first: no point.
OFFICIAL_3_POINTS = bytes.fromhex(
    "0103000000000000030000000000000001810000000003000000006b0f639cc42bf8"
)


def golden_blobs() -> list[bytes]:
    blobs = {
        decode_manifest(f.read_bytes()).sequence_tracker
        for f in sorted(GOLDEN.glob("*/db/manifest/*.manifest"))
    }
    return sorted(b for b in blobs if b is not None)


def test_golden_trackers_round_trip_byte_for_byte() -> None:
    blobs = [*golden_blobs(), OFFICIAL_3_POINTS]
    assert EMPTY_SEQUENCE_TRACKER in blobs
    assert any(len(SequenceTracker.decode(b)) == 1 for b in blobs)
    for blob in blobs:
        t = SequenceTracker.decode(blob)
        rebuilt = SequenceTracker(interval_secs=0)
        for seq, ts in t.points:
            assert rebuilt.insert(seq, ts)
        assert rebuilt.encode() == blob
    t = SequenceTracker.decode(OFFICIAL_3_POINTS)
    s = 1_796_170_652
    assert t.points == [(1, s), (3, s + 66), (5, s + 131)]


def test_bad_blobs_raise_data_errors_naming_the_offset() -> None:
    with pytest.raises(DataError) as e:
        SequenceTracker.decode(OFFICIAL_3_POINTS[:-2])
    assert e.value.offset is not None and e.value.offset >= 5
    with pytest.raises(UnsupportedFormatError):
        SequenceTracker.decode(b"\x02" + OFFICIAL_3_POINTS[1:])


def test_insertion_granularity_and_monotonicity() -> None:
    t = SequenceTracker()
    assert t.insert(10, 1000)
    assert not t.insert(11, 1059)
    assert t.insert(12, 1060)
    assert not t.insert(11, 2000)  # seq backwards: dropped (0.17.0 would panic)
    assert not t.insert(20, 1000)  # time backwards
    assert t.points == [(10, 1000), (12, 1060)]
    # Decoded, it still counts the minute from its last stored point (0.17.0 does).
    d = SequenceTracker.decode(t.encode())
    assert d.last_recorded == 1060
    assert not d.insert(13, 1119)
    assert d.insert(13, 1120)


def test_downsampling_at_capacity() -> None:
    t = SequenceTracker()
    for i in range(CAPACITY):
        assert t.insert(i, i * 60)
    assert len(t) == CAPACITY
    t.insert(CAPACITY, CAPACITY * 60)  # one past: every other point goes, the first stays
    assert len(t) == CAPACITY // 2 + 1
    assert t.points[:3] == [(0, 0), (2, 120), (4, 240)]
    assert t.points[-1] == (CAPACITY, CAPACITY * 60)
    assert SequenceTracker.decode(t.encode()).points == t.points


def test_lookups_at_between_before_and_after_points() -> None:
    t = SequenceTracker.decode(extended(None, [(100, 1000), (200, 2000), (300, 3000)]))
    for up in (False, True):
        assert t.find_seq(2000, up) == 200
        assert t.find_ts(200, up) == 2000
    assert (t.find_seq(2500), t.find_seq(2500, True)) == (200, 300)
    assert (t.find_seq(999), t.find_seq(999, True)) == (None, 100)
    assert (t.find_seq(3001), t.find_seq(3001, True)) == (300, None)
    assert (t.find_ts(150), t.find_ts(150, True)) == (1000, 2000)
    assert (t.find_ts(99), t.find_ts(99, True)) == (None, 1000)
    assert (t.find_ts(301), t.find_ts(301, True)) == (3000, None)
    empty = SequenceTracker.decode(EMPTY_SEQUENCE_TRACKER)
    assert empty.find_seq(2000, True) is None and empty.find_ts(1) is None


def _opts() -> DbOptions:
    return DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def _tracker(store: MemoryStore, path: str) -> list[tuple[int, int]]:
    _, m = ManifestStore(Store.resolve(store), DbPaths.of(path)).require_latest()
    assert m.sequence_tracker is not None
    return SequenceTracker.decode(m.sequence_tracker).points


def test_writer_records_at_most_a_point_a_minute_at_l0_flushes() -> None:
    store, clock = MemoryStore(), ManualClock(T0_MS)
    t0 = T0_MS // 1000
    db = Db.open("db", store, _opts(), clock=clock)
    db.put(b"a", b"1")  # seq 1: the memtable's first point
    clock.advance(30_000)
    db.put(b"b", b"2")  # 30 s later: no point
    clock.advance(31_000)
    db.put(b"c", b"3")  # 61 s after the first: a point
    assert _tracker(store, "db") == []  # nothing until an L0 flush
    db.flush_memtable()
    assert _tracker(store, "db") == [(1, t0), (3, t0 + 61)]
    clock.advance(20_000)
    db.put(b"d", b"4")  # a new memtable's first point, 20 s after the stored last: dropped
    db.flush_memtable()
    assert _tracker(store, "db") == [(1, t0), (3, t0 + 61)]
    clock.advance(60_000)
    db.put(b"e", b"5")
    db.flush_memtable()
    assert _tracker(store, "db") == [(1, t0), (3, t0 + 61), (5, t0 + 141)]
    db.close()
    # Reopened: the minute still counts from the stored last point.
    db = Db.open("db", store, _opts(), clock=clock)
    clock.advance(59_000)
    db.put(b"f", b"6")
    db.flush_memtable()
    clock.advance(1_000)
    db.put(b"g", b"7")
    db.flush_memtable()
    assert _tracker(store, "db")[-1] == (7, t0 + 201)
    db.close()


def test_admin_lookups() -> None:
    store, clock = MemoryStore(), ManualClock(T0_MS)
    db = Db.open("db", store, _opts(), clock=clock)
    for i in range(3):
        db.put(b"k%d" % i, b"v")
        db.flush_memtable()
        clock.advance(120_000)
    db.close()
    t0 = datetime.fromtimestamp(T0_MS // 1000, UTC)
    assert _tracker(store, "db") == [(i + 1, T0_MS // 1000 + 120 * i) for i in range(3)]
    assert admin.sequence_for_time("db", store, t0) == 1
    assert admin.sequence_for_time("db", store, t0 + timedelta(seconds=130)) == 2
    assert admin.sequence_for_time("db", store, t0 + timedelta(seconds=130), round_up=True) == 3
    assert admin.sequence_for_time("db", store, t0 - timedelta(microseconds=1)) is None
    # Another timezone names the same instant.
    east = t0.astimezone(timezone(timedelta(hours=5)))
    assert admin.sequence_for_time("db", store, east + timedelta(seconds=500)) == 3
    assert admin.time_for_sequence("db", store, 2) == t0 + timedelta(seconds=120)
    assert admin.time_for_sequence("db", store, 4) == t0 + timedelta(seconds=240)
    assert admin.time_for_sequence("db", store, 4, round_up=True) is None
    assert admin.time_for_sequence("db", store, 0) is None
    with pytest.raises(InvalidArgumentError):
        admin.sequence_for_time("db", store, datetime(2024, 1, 1))  # naive
    with pytest.raises(InvalidArgumentError):
        admin.time_for_sequence("db", store, -1)
    assert admin.sequence_for_time("nothing-here", store, t0) is None


def test_a_memtable_with_more_than_capacity_points_halves_before_the_flush() -> None:
    pts = [(i, i * 60) for i in range(CAPACITY + 1)]
    # As 0.17.0: the memtable's tracker halved itself, the manifest takes what is left.
    assert SequenceTracker.decode(extended(None, pts)).points == pts[::2]
