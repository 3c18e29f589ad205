"""The sequence tracker shared with the real SlateDB 0.17.0: a database slatedb_py wrote over
minutes of (manual) clock time answers 0.17.0's Admin lookups as ours answer them, and the
official writer keeps extending the tracker ours wrote, in a blob our codec reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.seq_tracker import SequenceTracker
from slatedb_py.store import Store
from tests.interop import oracle
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
# Realistic epoch milliseconds, earlier than the real clock the official writer reads later
# (0.17.0 asserts that a tracker's timestamps never go backwards).
T0_MS = 1_700_000_000_000


def points(path: str) -> list[tuple[int, int]]:
    _, m = ManifestStore(Store.resolve(ROOT), DbPaths.of(path)).require_latest()
    assert m.sequence_tracker is not None
    return SequenceTracker.decode(m.sequence_tracker).points


def write_over_minutes(path: str) -> list[tuple[int, int]]:
    clock = ManualClock(T0_MS)
    db = Db.open(path, ROOT, DbOptions(flush_interval=None, compactor_enabled=False), clock=clock)
    # One memtable per list (seconds between writes), flushed after its writes.
    for gaps_s in ([0], [20, 45], [130], [61, 61, 10], [30], [300]):
        for gap in gaps_s:
            clock.advance(gap * 1000)
            db.put(b"k%d" % clock.now_ms(), b"v")
        db.flush_memtable()
    db.close()
    got = points(path)
    t0 = T0_MS // 1000
    # (2, +20) is under a minute after the stored (1, +0), and (3, +65) under a minute after
    # its memtable's (2, +20): neither is a point; nor (7, +327) or (8, +357).
    assert got == [(1, t0), (4, t0 + 195), (5, t0 + 256), (6, t0 + 317), (9, t0 + 657)]
    return got


def assert_same_answers(path: str, pts: list[tuple[int, int]]) -> None:
    seqs = [s for s, _ in pts]
    times = [t for _, t in pts]
    probe_times = sorted(
        {t + d for t in times for d in (-1, 0, 1)} | {0, times[0] - 3600, times[-1] + 3600}
    )
    probe_seqs = sorted({s + d for s in seqs for d in (-1, 0, 1) if s + d >= 0} | {0, 1 << 40})
    for up in (False, True):
        for t in probe_times:
            ours = admin.sequence_for_time(path, ROOT, datetime.fromtimestamp(t, UTC), round_up=up)
            assert ours == oracle.sequence_for_timestamp(path, t, up), (t, up)
        for s in probe_seqs:
            when = admin.time_for_sequence(path, ROOT, s, round_up=up)
            theirs = oracle.timestamp_for_sequence(path, s, up)
            assert (None if when is None else int(when.timestamp())) == theirs, (s, up)


def test_0_17_answers_lookups_on_our_tracker_as_we_do(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    pts = write_over_minutes(path)
    assert_same_answers(path, pts)


def test_official_writer_extends_our_tracker(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    ours = write_over_minutes(path)
    official = Official(path)
    official.put(b"official", b"1")
    official.flush_memtable()
    official.close()
    after = points(path)
    # Its point (real time, decades of minutes after ours) lands after ours, in a blob our
    # codec reads; the lookups still agree.
    assert after[: len(ours)] == ours
    assert len(after) == len(ours) + 1
    assert after[-1][0] > ours[-1][0] and after[-1][1] > ours[-1][1]
    assert_same_answers(path, after)
