"""The garbage collector's rules on their own: `_wal_needed`, `_old_enough`, and
`collect_garbage` on small databases written object by object into a memory store whose objects
carry the manual clock's time as their `last_modified`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from obstore.store import MemoryStore

from slatedb_py.clock import ManualClock
from slatedb_py.config import GcOptions
from slatedb_py.garbage_collector import GcResult, _old_enough, _wal_needed, collect_garbage
from slatedb_py.manifest.compactions_codec import (
    COMPLETED,
    RUNNING,
    CompactionRecord,
    CompactionsState,
    encode_state,
)
from slatedb_py.manifest.model import CheckpointEntry, Manifest, SortedRun, SstHandle, SstView
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.safety import COLLECTOR_FLOOR
from slatedb_py.store import ObjectMeta, Store
from tests.support import plain
from tests.unit.builders import T0_MS, info, ulid_at

MIN = 60_000
FLOOR_MS = int(COLLECTOR_FLOOR.total_seconds() * 1000)


# ---------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("wal_id", "latest", "needed"),
    [
        (4, True, False),
        (5, True, True),  # the replay point itself is kept for the latest manifest
        (6, True, True),
        (10**6, True, True),  # anything after it, however far: not yet in any manifest
        (5, False, False),  # a pinned manifest replays strictly after its replay point
        (6, False, True),
        (8, False, True),  # ... up to the last WAL it saw
        (9, False, False),
    ],
)
def test_wal_needed(wal_id: int, latest: bool, needed: bool) -> None:
    m = Manifest(replay_after_wal_id=5, wal_id_last_seen=8)
    assert _wal_needed(m, wal_id, latest=latest) is needed


def _meta(at: datetime) -> ObjectMeta:
    return ObjectMeta("x", 1, at)


def test_old_enough_is_inclusive_and_in_milliseconds() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    at_ms = int(at.timestamp()) * 1000
    age = timedelta(minutes=5)
    assert _old_enough(_meta(at), at_ms + 5 * MIN, age)
    assert not _old_enough(_meta(at), at_ms + 5 * MIN - 1, age)
    assert _old_enough(_meta(at), at_ms, timedelta(0))
    assert not _old_enough(_meta(at), at_ms - 1, timedelta(0))  # from the future
    assert _old_enough(_meta(at), at_ms + 1, timedelta(milliseconds=1))


# ---------------------------------------------------------------------------- a database


class ClockedStore(Store):
    """A memory store whose objects' `last_modified` is the manual clock's time when they
    were written, so tests age objects by advancing the clock."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(MemoryStore())
        self.clock = clock
        self.written: dict[str, int] = {}

    def put(self, path: str, data: Any) -> None:
        super().put(path, data)
        self.written[path] = self.clock.now_ms()

    def put_if_absent(self, path: str, data: bytes) -> bool:
        ok = super().put_if_absent(path, data)
        if ok:
            self.written[path] = self.clock.now_ms()
        return ok

    def _dated(self, m: ObjectMeta) -> ObjectMeta:
        return m._replace(last_modified=datetime.fromtimestamp(self.written[m.path] / 1000, UTC))

    def list(self, prefix: str, *, after: str | None = None) -> list[ObjectMeta]:
        return [self._dated(m) for m in super().list(prefix, after=after)]


class Db:
    """A database built object by object; `gc` runs one collection on it."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0_MS)
        self.store = ClockedStore(self.clock)
        self.paths = DbPaths.of("db")
        self.manifests = ManifestStore(self.store, self.paths, self.clock)
        self._states = 0

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def sst(self, ulid_ms: int) -> SstView:
        """A compacted SST whose ULID says `ulid_ms`, written now."""
        sid = ulid_at(ulid_ms)
        self.store.put(self.paths.compacted(sid), b"sst")
        return SstView(sid, SstHandle(sid, info()))

    def wal(self, *ids: int, fence: bool = False) -> None:
        for wid in ids:
            self.store.put(self.paths.wal(wid), b"" if fence else b"rows")

    def manifest(self, **fields: Any) -> int:
        """Writes the next manifest version: the latest with `fields` changed (and
        `last_l0_seq` bumped, so that every call writes a version)."""
        if self.manifests.latest() is None:
            mid, _ = self.manifests.create_if_absent(Manifest(**fields))
            return mid
        mid, _, _ = self.manifests.update(
            plain(lambda m: replace(m, last_l0_seq=m.last_l0_seq + 1, **fields))
        )
        return mid

    def state(self, *records: CompactionRecord) -> str:
        """Writes the next compactor state version listing `records`."""
        self._states += 1
        key = self.paths.compactions(self._states)
        self.store.put(key, encode_state(CompactionsState(1, records)))
        return key

    def listed(self, at_ms: int, status: int = COMPLETED) -> CompactionRecord:
        """A compaction whose id was minted at `at_ms`."""
        return CompactionRecord(ulid_at(at_ms), status)

    def gc(self, **options: Any) -> GcResult:
        return collect_garbage(self.store, self.paths, GcOptions(**options), self.clock)

    def exists(self, key: str) -> bool:
        return self.store.get(key) is not None

    def wal_ids(self) -> list[int]:
        return sorted(
            i
            for m in self.store.list(self.paths.wal_dir)
            if (i := DbPaths.wal_id_of(m.path)) is not None
        )

    def manifest_ids(self) -> list[int]:
        return self.manifests.ids()


def checkpoint(manifest_id: int, expire_time_s: int = 0) -> CheckpointEntry:
    return CheckpointEntry(uuid.uuid4(), manifest_id, expire_time_s, T0_MS // 1000)


@pytest.fixture
def db() -> Db:
    return Db()


# ---------------------------------------------------------------------------- WAL


def test_old_wal_below_the_replay_point_goes_and_the_rest_stays(db: Db) -> None:
    db.wal(1, 2, 3, 5, 6, 7)
    db.manifest(replay_after_wal_id=5, wal_id_last_seen=7)
    db.advance(10 * MIN)
    result = db.gc(min_age=timedelta(minutes=1))
    assert sorted(result.wal) == [db.paths.wal(i) for i in (1, 2, 3)]
    assert db.wal_ids() == [5, 6, 7]
    assert result.deleted == result.wal


def test_young_wal_below_the_replay_point_stays(db: Db) -> None:
    db.wal(1)
    db.manifest(replay_after_wal_id=5, wal_id_last_seen=5)
    db.advance(30_000)
    assert db.gc(min_age=timedelta(minutes=1)).wal == []
    assert db.gc(min_age=timedelta(hours=1), wal_min_age=timedelta(seconds=30)).wal == [
        db.paths.wal(1)
    ]


def test_a_live_checkpoint_keeps_the_wal_its_manifest_replays(db: Db) -> None:
    db.wal(*range(1, 9))
    pinned = db.manifest(replay_after_wal_id=1, wal_id_last_seen=3)
    db.manifest(replay_after_wal_id=6, wal_id_last_seen=8, checkpoints=(checkpoint(pinned),))
    db.advance(10 * MIN)
    db.gc(min_age=timedelta(0))
    # 2, 3: replayed by the checkpoint; 6..8 by the latest; 1 is the checkpoint's replay
    # point (not replayed) and 4, 5 lie between the two.
    assert db.wal_ids() == [2, 3, 6, 7, 8]


def test_wal_fences_stay_unless_deletion_is_asked_for(db: Db) -> None:
    db.wal(1, fence=True)
    db.wal(2)
    db.manifest(replay_after_wal_id=5)
    db.advance(10 * MIN)
    db.manifest(replay_after_wal_id=6)  # a newer object: the fence is past the floor
    result = db.gc(min_age=timedelta(0))
    assert result.wal == [db.paths.wal(2)] and result.wal_fences == []
    assert db.wal_ids() == [1]
    result = db.gc(min_age=timedelta(0), delete_wal_fences=True)
    assert result.wal_fences == [db.paths.wal(1)] and result.wal == []
    assert db.wal_ids() == []


def test_a_fence_within_the_floor_of_the_newest_object_stays_whatever_the_clock(db: Db) -> None:
    db.wal(1, fence=True)
    db.manifest(replay_after_wal_id=5)
    db.advance(FLOOR_MS - MIN)
    db.manifest(replay_after_wal_id=6)  # the newest object: 4 minutes younger than the fence
    db.advance(60 * MIN)  # our clock says an hour more: the store's clock decides
    assert db.gc(min_age=timedelta(0), delete_wal_fences=True).wal_fences == []
    db.advance(MIN)
    db.manifest(replay_after_wal_id=7)  # now 5 minutes past the fence
    assert db.gc(min_age=timedelta(0), delete_wal_fences=True).wal_fences == [db.paths.wal(1)]


def test_wal_fence_age_has_its_own_override(db: Db) -> None:
    db.wal(1, fence=True)
    db.manifest(replay_after_wal_id=5)
    db.advance(10 * MIN)
    db.manifest(replay_after_wal_id=6)
    kept = db.gc(
        min_age=timedelta(0), wal_fence_min_age=timedelta(minutes=11), delete_wal_fences=True
    )
    assert kept.wal_fences == []
    gone = db.gc(
        min_age=timedelta(hours=1), wal_fence_min_age=timedelta(minutes=10), delete_wal_fences=True
    )
    assert gone.wal_fences == [db.paths.wal(1)]


# ---------------------------------------------------------------------------- manifests


def test_old_manifests_go_but_the_latest_and_checkpointed_stay(db: Db) -> None:
    for _ in range(4):
        db.manifest()
    db.advance(10 * MIN)
    latest = db.manifest(checkpoints=(checkpoint(2),))
    result = db.gc(min_age=timedelta(minutes=1))
    assert sorted(result.manifests) == [db.paths.manifest(i) for i in (1, 3, 4)]
    assert db.manifest_ids() == [2, latest]


def test_the_latest_manifest_stays_however_old(db: Db) -> None:
    db.manifest()
    db.manifest()
    db.wal(9)  # a newer object: the floor is behind both manifests
    db.advance(FLOOR_MS + MIN)
    db.wal(10)
    assert db.gc(min_age=timedelta(0)).manifests == [db.paths.manifest(1)]
    assert db.manifest_ids() == [2]


def test_manifests_within_the_floor_of_the_newest_object_stay(db: Db) -> None:
    for _ in range(3):
        db.manifest()
    db.advance(MIN)
    db.manifest()  # 4
    db.advance(60 * MIN)  # only our clock moves
    assert db.gc(min_age=timedelta(0)).manifests == []
    db.advance(-60 * MIN + FLOOR_MS - MIN // 2)
    db.manifest()  # 5: 5.5 minutes after 1..3, 4.5 after 4
    assert sorted(db.gc(min_age=timedelta(0)).manifests) == [
        db.paths.manifest(i) for i in (1, 2, 3)
    ]
    assert db.manifest_ids() == [4, 5]


def test_manifest_age_has_its_own_override(db: Db) -> None:
    db.manifest()
    db.wal(1)
    db.advance(10 * MIN)
    db.manifest(replay_after_wal_id=3)
    result = db.gc(min_age=timedelta(0), manifest_min_age=timedelta(minutes=11))
    assert result.manifests == [] and result.wal == [db.paths.wal(1)]


# ---------------------------------------------------------------------------- compactor states


def test_old_compactor_states_go_but_the_newest_stays(db: Db) -> None:
    db.manifest()
    keys = [db.state(), db.state(), db.state()]
    db.advance(10 * MIN)
    db.manifest()
    result = db.gc(min_age=timedelta(minutes=1))
    assert sorted(result.compactions) == keys[:2]
    assert [db.exists(k) for k in keys] == [False, False, True]


# ---------------------------------------------------------------------------- compacted SSTs


class Tree:
    """An hour-old database with one old run, a fresh L0 (the flush watermark, a minute old)
    and a finished compaction listed two minutes ago (the compaction mark)."""

    def __init__(self, db: Db) -> None:
        self.db = db
        start = db.now
        db.advance(60 * MIN)
        now = db.now
        self.run_sst = db.sst(start)
        self.l0 = db.sst(now - MIN)
        self.mark_ms = now - 2 * MIN
        db.state(db.listed(self.mark_ms))
        self.latest = db.manifest(l0=(self.l0,), compacted=(SortedRun(0, (self.run_sst,)),))

    def key(self, view: SstView) -> str:
        return self.db.paths.compacted(view.id)


def test_unreferenced_old_ssts_go_and_referenced_ones_stay(db: Db) -> None:
    t = Tree(db)
    garbage = db.sst(db.now - 50 * MIN)
    result = db.gc(min_age=timedelta(minutes=10))
    assert result.compacted == [t.key(garbage)]
    assert db.exists(t.key(t.run_sst)) and db.exists(t.key(t.l0))


def test_unreferenced_young_ssts_stay(db: Db) -> None:
    t = Tree(db)
    young = db.sst(db.now - 5 * MIN)  # below the watermark and the mark, but young
    assert db.gc(min_age=timedelta(minutes=10)).compacted == []
    assert db.gc(min_age=timedelta(hours=1), compacted_min_age=timedelta(minutes=5)).compacted == [
        t.key(young)
    ]


def test_an_sst_newer_than_the_newest_l0_stays(db: Db) -> None:
    """It may be a flush that has not reached the manifest yet."""
    t = Tree(db)
    db.state(db.listed(db.now))  # the mark is out of the way
    flushing = db.sst(db.now - MIN // 2)
    older = db.sst(db.now - 3 * MIN)
    assert db.gc(min_age=timedelta(0)).compacted == [t.key(older)]
    assert db.exists(t.key(flushing))


def test_an_in_flight_compaction_keeps_its_outputs(db: Db) -> None:
    """An output uploaded before its compaction commits is newer than the compaction's id:
    kept while the state lists it, even below the L0 watermark."""
    t = Tree(db)
    started = db.now - 5 * MIN
    db.state(db.listed(started, RUNNING))
    output = db.sst(started + MIN)  # older than the newest L0, unreferenced
    garbage = db.sst(started - MIN)
    assert db.gc(min_age=timedelta(0)).compacted == [t.key(garbage)]
    assert db.exists(t.key(output))
    # Committed and no longer listed as the oldest: the output is garbage like any other.
    db.state(db.listed(db.now, COMPLETED))
    assert db.gc(min_age=timedelta(0)).compacted == [t.key(output)]


@pytest.mark.parametrize("state", ["none", "empty", "unreadable"])
def test_without_a_compaction_mark_no_sst_goes(db: Db, state: str) -> None:
    t = Tree(db)
    for key in [m.path for m in db.store.list(db.paths.compactions_dir)]:
        db.store.delete(key)
    if state == "empty":
        db.state()
    elif state == "unreadable":
        db.store.put(db.paths.compactions(9), b"\x00\x02broken")
    garbage = db.sst(db.now - 50 * MIN)
    db.wal(1)
    db.manifest(replay_after_wal_id=2)
    result = db.gc(min_age=timedelta(0))
    assert result.compacted == []
    assert db.exists(t.key(garbage))
    assert result.wal == [db.paths.wal(1)]  # the rest of the collection still runs


def test_without_l0_nor_a_last_compacted_l0_no_sst_goes(db: Db) -> None:
    db.advance(60 * MIN)
    db.state(db.listed(db.now))
    run = db.sst(db.now - 50 * MIN)
    db.manifest(compacted=(SortedRun(0, (run,)),))
    garbage = db.sst(db.now - 40 * MIN)
    assert db.gc(min_age=timedelta(0)).compacted == []
    assert db.exists(db.paths.compacted(garbage.id))


def test_without_l0_the_last_compacted_l0_is_the_watermark(db: Db) -> None:
    db.advance(60 * MIN)
    db.state(db.listed(db.now))
    before = db.sst(db.now - 40 * MIN)
    last = db.sst(db.now - 30 * MIN)  # compacted away; itself garbage now
    after = db.sst(db.now - 20 * MIN)
    db.manifest(last_compacted_l0_view_id=last.id)
    result = db.gc(min_age=timedelta(0))
    assert sorted(result.compacted) == sorted(db.paths.compacted(v.id) for v in (before, last))
    assert db.exists(db.paths.compacted(after.id))


def test_foreign_names_in_compacted_are_left_alone(db: Db) -> None:
    Tree(db)
    foreign = [
        db.paths.compacted_dir + "README",
        db.paths.compacted_dir + "U" * 26 + ".sst",  # 26 characters, not Crockford base32
        db.paths.compacted_dir + "01ARZ3NDEKTSV4RRFFQ69G5FA.sst",  # 25
    ]
    for key in foreign:
        db.store.put(key, b"not ours")
    assert db.gc(min_age=timedelta(0)).compacted == []
    assert all(db.exists(k) for k in foreign)


# ---------------------------------------------------------------------------- checkpoints


def test_a_live_checkpoint_keeps_its_manifest_ssts(db: Db) -> None:
    t = Tree(db)
    old = db.sst(db.now - 50 * MIN)
    pinned = db.manifest(compacted=(SortedRun(1, (old,)), SortedRun(0, (t.run_sst,))))
    db.manifest(compacted=(SortedRun(0, (t.run_sst,)),), checkpoints=(checkpoint(pinned),))
    assert db.gc(min_age=timedelta(0)).compacted == []
    assert db.exists(t.key(old))


@pytest.mark.parametrize(
    ("expires_in_s", "live"), [(-1, False), (0, False), (1, True), (None, True)]
)
def test_expired_checkpoints_are_dropped_and_their_ssts_reclaimed(
    db: Db, expires_in_s: int | None, live: bool
) -> None:
    t = Tree(db)
    old = db.sst(db.now - 50 * MIN)
    pinned = db.manifest(compacted=(SortedRun(1, (old,)), SortedRun(0, (t.run_sst,))))
    now_s = db.now // 1000
    cp = checkpoint(pinned, 0 if expires_in_s is None else now_s + expires_in_s)
    db.advance(999)  # still within the same second
    assert db.now // 1000 == now_s
    before = db.manifest(compacted=(SortedRun(0, (t.run_sst,)),), checkpoints=(cp,))
    result = db.gc(min_age=timedelta(0))
    latest_id, latest = db.manifests.require_latest()
    if live:
        assert result.expired_checkpoints == [] and result.compacted == []
        assert (latest_id, latest.checkpoints) == (before, (cp,))
    else:
        assert result.expired_checkpoints == [str(cp.id)]
        assert result.compacted == [t.key(old)]
        assert latest_id == before + 1 and latest.checkpoints == ()
