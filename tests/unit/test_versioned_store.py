"""The sequenced-storage protocol on its own: `VersionedFolder` (LIST for the latest, create
id + 1 with put-if-absent, re-read and re-apply on conflict, the slow-create rule) and the
manifest store with its writer fence, on an in-memory store with a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from obstore.store import MemoryStore
from slatedb_py.clock import ManualClock
from slatedb_py.errors import DatabaseNotFoundError, DataError, FencedError, UnavailableError
from slatedb_py.manifest import versioned
from slatedb_py.manifest.codec import decode_manifest
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore, WriterFence
from slatedb_py.manifest.versioned import VersionedFolder, is_version_stem, version_id_of
from slatedb_py.paths import DbPaths
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import Store

PATHS = DbPaths.of("db")
SLOW_MS = int(CLIENT_WINDOW_S * 1000) + 1


class HookedStore(Store):
    """Runs `before_create(path)` just before each put-if-absent (another writer's create, or
    time passing while the request is in flight)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.before_create: Callable[[str], None] | None = None
        self.creates: list[tuple[str, bool]] = []

    def put_if_absent(self, path: str, data: bytes) -> bool:
        hook, self.before_create = self.before_create, None  # once
        if hook is not None:
            hook(path)
        ok = super().put_if_absent(path, data)
        self.creates.append((path, ok))
        return ok


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> HookedStore:
    return HookedStore(MemoryStore())


def folder(store: Store, clock: ManualClock) -> VersionedFolder:
    return VersionedFolder(store, PATHS.manifest_dir, PATHS.manifest, "manifest", clock)


def dec(_vid: int, data: bytes) -> str:
    return data.decode()


def enc(value: str) -> bytes:
    return value.encode()


def append(suffix: str) -> Callable[[int, str | None], str]:
    return lambda _vid, cur: (cur or "") + suffix


def contents(store: Store) -> dict[str, bytes]:
    return {m.path: store.get(m.path) or b"" for m in store.list(PATHS.manifest_dir)}


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("db/manifest/00000000000000000007.manifest", 7),
        ("00000000000000000000.manifest", 0),
        ("a/b/99999999999999999999.manifest", 99_999_999_999_999_999_999),
        ("db/manifest/99.manifest", None),  # not 20 digits
        ("db/manifest/000000000000000000007.manifest", None),  # 21
        ("db/manifest/00000000000000000007.compactions", None),  # another suffix
        ("db/manifest/00000000000000000007.manifest.tmp", None),
        ("db/manifest/00000000000000000007", None),
        ("db/manifest/0000000000000000000x.manifest", None),
        ("db/manifest/" + "\u0661" * 20 + ".manifest", None),  # Arabic-Indic digits
        ("db/manifest/+0000000000000000007.manifest", None),
        ("db/manifest/ 0000000000000000007.manifest", None),
    ],
)
def test_version_id_of(key: str, expected: int | None) -> None:
    assert version_id_of(key, "manifest") == expected


def test_is_version_stem() -> None:
    assert is_version_stem("0" * 20)
    assert not is_version_stem("0" * 19)
    assert not is_version_stem("\uff11" * 20)  # fullwidth digits: isdigit() but not ASCII
    assert not is_version_stem("")


def test_ids_and_latest_ignore_foreign_names(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    for vid in (2, 10, 3):
        store.put(PATHS.manifest(vid), enc(f"v{vid}"))
    for stray in (
        "99999.manifest",
        "999999999999999999999.manifest",
        "00000000000000000050.manifest.bak",
        "notes.txt",
        "00000000000000000070.compactions",
    ):
        store.put(PATHS.manifest_dir + stray, b"junk")
    assert f.ids() == [2, 3, 10]  # numeric order
    assert f.latest() == (10, b"v10")


def test_latest_of_an_empty_folder_is_none(store: HookedStore, clock: ManualClock) -> None:
    assert folder(store, clock).latest() is None
    store.put(PATHS.manifest_dir + "README", b"not a version")
    assert folder(store, clock).latest() is None


def test_latest_lists_again_when_the_newest_was_collected_after_the_list(
    clock: ManualClock,
) -> None:
    class CollectOnGet(Store):
        def get(self, path: str) -> bytes | None:
            if path == PATHS.manifest(3):
                self.delete(path)  # the collector got there between our LIST and GET
            return super().get(path)

    store = CollectOnGet(MemoryStore())
    for vid in (1, 2, 3):
        store.put(PATHS.manifest(vid), enc(f"v{vid}"))
    assert folder(store, clock).latest() == (2, b"v2")


def test_latest_gives_up_when_every_get_misses(clock: ManualClock) -> None:
    class Vanishing(Store):
        def get(self, path: str) -> bytes | None:
            return None

    store = Vanishing(MemoryStore())
    store.put(PATHS.manifest(1), b"x")
    with pytest.raises(UnavailableError):
        folder(store, clock).latest()


# ---------------------------------------------------------------------------- update


def test_update_creates_id_plus_one(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    seen: list[tuple[int, str | None]] = []

    def change(vid: int, cur: str | None) -> str:
        seen.append((vid, cur))
        return (cur or "") + "x"

    assert f.update(dec, enc, change) == (1, "x")
    assert f.update(dec, enc, change) == (2, "xx")
    assert seen == [(0, None), (1, "x")]
    assert contents(store) == {PATHS.manifest(1): b"x", PATHS.manifest(2): b"xx"}


def test_update_builds_on_the_highest_id_not_the_count(
    store: HookedStore, clock: ManualClock
) -> None:
    store.put(PATHS.manifest(41), b"old")  # ids below were collected
    assert folder(store, clock).update(dec, enc, append("+")) == (42, "old+")


@pytest.mark.parametrize("result", ["none", "equal"])
def test_a_change_that_changes_nothing_writes_nothing(
    store: HookedStore, clock: ManualClock, result: str
) -> None:
    f = folder(store, clock)
    f.update(dec, enc, append("a"))
    before = contents(store)
    got = f.update(dec, enc, lambda _vid, cur: None if result == "none" else str(cur))
    assert got == (1, "a")
    assert contents(store) == before
    assert store.creates == [(PATHS.manifest(1), True)]


def test_a_change_that_returns_none_on_an_empty_folder_writes_nothing(
    store: HookedStore, clock: ManualClock
) -> None:
    assert folder(store, clock).update(dec, enc, lambda _vid, cur: None) == (0, None)
    assert contents(store) == {}


def test_a_conflict_re_reads_and_re_applies(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    f.update(dec, enc, append("a"))
    calls: list[tuple[int, str | None]] = []

    def change(vid: int, cur: str | None) -> str:
        calls.append((vid, cur))
        if len(calls) == 1:
            # Another writer creates the id this update is about to take.
            store.put(PATHS.manifest(vid + 1), enc(f"{cur}b"))
        return f"{cur}c"

    assert f.update(dec, enc, change) == (3, "abc")
    assert calls == [(1, "a"), (2, "ab")]  # re-read: built on the other writer's version
    assert contents(store) == {
        PATHS.manifest(1): b"a",
        PATHS.manifest(2): b"ab",  # the other writer's version is untouched
        PATHS.manifest(3): b"abc",
    }
    assert store.creates[-2:] == [(PATHS.manifest(2), False), (PATHS.manifest(3), True)]


def test_conflicts_forever_give_up(
    store: HookedStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versioned, "MAX_ATTEMPTS", 5)
    f = folder(store, clock)

    def change(vid: int, cur: str | None) -> str:
        store.put(PATHS.manifest(vid + 1), b"theirs")
        return "mine"

    with pytest.raises(UnavailableError, match="contention"):
        f.update(dec, enc, change)
    assert f.ids() == [1, 2, 3, 4, 5]
    assert all(v == b"theirs" for v in contents(store).values())


# ---------------------------------------------------------------------------- slow creates


def test_a_fast_create_is_trusted_even_with_a_version_on_top(
    store: HookedStore, clock: ManualClock
) -> None:
    """Within the client window a create is the latest when it landed: a version on top of
    it is someone else's later update, not a reason to apply this one again."""
    f = folder(store, clock)
    f.update(dec, enc, append("a"))
    calls = []

    def change(vid: int, cur: str | None) -> str | None:
        calls.append(cur)
        return None if cur and "b" in cur else f"{cur}b"

    def on_top(path: str) -> None:
        clock.advance(SLOW_MS - 2)  # just inside the window
        # Someone else's version on top of the id ours is about to take.
        store.put(PATHS.manifest(3), b"abz")

    store.before_create = on_top
    assert f.update(dec, enc, change) == (2, "ab")
    assert calls == ["a"]


def test_a_slow_create_that_is_the_highest_id_is_trusted(
    store: HookedStore, clock: ManualClock
) -> None:
    f = folder(store, clock)
    f.update(dec, enc, append("a"))
    calls = []

    def change(vid: int, cur: str | None) -> str:
        calls.append(cur)
        return f"{cur}b"

    store.before_create = lambda _path: clock.advance(SLOW_MS)
    assert f.update(dec, enc, change) == (2, "ab")
    assert calls == ["a"]  # one LIST after the create showed it is still the highest
    assert f.ids() == [1, 2]


def test_a_slow_create_below_a_newer_id_is_re_read_and_re_applied(
    store: HookedStore, clock: ManualClock
) -> None:
    """The id may have been collected and created again: whether it counts is unknown, so the
    (idempotent) change is applied again to the latest version."""
    f = folder(store, clock)
    f.update(dec, enc, append("a"))
    calls: list[str | None] = []

    def change(vid: int, cur: str | None) -> str | None:
        calls.append(cur)
        return None if cur and cur.endswith("b") else f"{cur}b"

    def slow_and_overtaken(_path: str) -> None:
        clock.advance(SLOW_MS)
        store.put(PATHS.manifest(3), b"ab")  # a version on top, seen by the second LIST

    store.before_create = slow_and_overtaken
    assert f.update(dec, enc, change) == (3, "ab")
    assert calls == ["a", "ab"]  # re-applied: found done, nothing more written
    assert f.ids() == [1, 2, 3]


def test_a_slow_create_re_applies_what_did_not_land(store: HookedStore, clock: ManualClock) -> None:
    """The same, when the version on top does not hold the change: it is written again."""
    f = folder(store, clock)
    f.update(dec, enc, append("a"))

    def change(vid: int, cur: str | None) -> str | None:
        return None if cur and "b" in cur else f"{cur}b"

    def slow_and_overtaken(_path: str) -> None:
        clock.advance(SLOW_MS)
        store.put(PATHS.manifest(3), b"az")

    store.before_create = slow_and_overtaken
    assert f.update(dec, enc, change) == (4, "azb")


def test_create_outcomes(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    for vid in (1, 2, 3, 5):
        store.put(PATHS.manifest(vid), b"x")
    now = f.now()
    assert f.create(3, b"y", now) is False  # taken
    assert store.get(PATHS.manifest(3)) == b"x"
    assert f.create(4, b"y", now) is True  # fast: trusted
    assert f.create(6, b"y", now - CLIENT_WINDOW_S) is True  # slow, but the highest
    assert f.create(0, b"y", now - CLIENT_WINDOW_S) is None  # slow, below others: unknown
    assert store.get(PATHS.manifest(0)) == b"y"  # it was created all the same


# ---------------------------------------------------------------------------- manifests


def manifest_store(store: Store, clock: ManualClock) -> ManifestStore:
    return ManifestStore(store, PATHS, clock)


def test_create_if_absent_is_idempotent(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    first = Manifest(writer_epoch=3)
    assert ms.create_if_absent(first) == (1, first)
    assert ms.create_if_absent(Manifest(writer_epoch=9)) == (1, first)
    assert ms.list_ids() == [1]
    assert decode_manifest(store.get(PATHS.manifest(1)) or b"") == first


def test_create_first_only_once(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    assert ms.create_first(Manifest()) is True
    assert ms.create_first(Manifest(writer_epoch=5)) is False
    assert ms.require_latest() == (1, Manifest())


def test_no_manifest_is_no_database(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    assert ms.read_latest() is None
    with pytest.raises(DatabaseNotFoundError):
        ms.require_latest()
    with pytest.raises(DatabaseNotFoundError):
        ms.update(lambda m: m)
    assert ms.list_ids() == []


def test_a_broken_manifest_names_its_object(store: HookedStore, clock: ManualClock) -> None:
    store.put(PATHS.manifest(1), b"\x00\x02garbage")
    with pytest.raises(DataError) as e:
        manifest_store(store, clock).require_latest()
    assert e.value.object == PATHS.manifest(1)


def test_claim_bumps_the_writer_epoch(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    ms.create_if_absent(Manifest(writer_epoch=4, compactor_epoch=2))
    fence = WriterFence(ms)
    mid, m = fence.claim()
    assert (mid, fence.epoch, m.writer_epoch) == (2, 5, 5)
    assert m.compactor_epoch == 2  # nothing else changes
    assert ms.require_latest() == (2, m)
    assert fence.confirmed_at == clock.monotonic_s()


def test_claim_refuses_an_uninitialized_database(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    ms.create_if_absent(Manifest(initialized=False))
    with pytest.raises(DataError, match="not initialized"):
        WriterFence(ms).claim()
    assert ms.list_ids() == [1]


def test_an_older_fence_is_fenced(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    ms.create_if_absent(Manifest())
    old, new = WriterFence(ms), WriterFence(ms)
    old.claim()
    old.update(lambda m: replace(m, last_l0_seq=1))  # fine while it is the newest
    new.claim()
    assert (old.epoch, new.epoch) == (1, 2)
    ids = ms.list_ids()
    with pytest.raises(FencedError):
        old.update(lambda m: replace(m, last_l0_seq=99))
    with pytest.raises(FencedError):
        old.confirm()
    assert ms.list_ids() == ids  # nothing written
    _, m = new.update(lambda m: replace(m, last_l0_seq=2))
    assert (m.writer_epoch, m.last_l0_seq) == (2, 2)
    new.confirm()


def test_a_fence_is_checked_against_the_latest_version_at_write_time(
    store: HookedStore, clock: ManualClock
) -> None:
    """A newer writer that claims between our LIST and our create: our create conflicts, the
    re-read shows its epoch, and we are fenced instead of writing on top."""
    ms = manifest_store(store, clock)
    ms.create_if_absent(Manifest())
    old = WriterFence(ms)
    old.claim()

    def newer_writer_claims(_path: str) -> None:
        WriterFence(manifest_store(Store(store.inner), clock)).claim()

    store.before_create = newer_writer_claims
    with pytest.raises(FencedError):
        old.update(lambda m: replace(m, last_l0_seq=7))
    _, latest = ms.require_latest()
    assert latest.writer_epoch == 2 and latest.last_l0_seq == 0
