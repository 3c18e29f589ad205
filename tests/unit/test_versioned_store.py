"""The sequenced-storage protocol on its own: `VersionedStore` (LIST for the latest, short
from the last id seen, create id + 1 with put-if-absent, re-read and re-apply on conflict, the
slow-create rule) and the manifest store with its writer fence, on an in-memory store with a
manual clock."""

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
from slatedb_py.manifest.fence import WriterFence
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.manifest.versioned import VersionedStore, is_version_stem, version_id_of
from slatedb_py.paths import DbPaths
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import ObjectMeta, Store
from tests.support import plain

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


def dec(data: bytes, _name: str) -> str:
    return data.decode()


def enc(value: str) -> bytes:
    return value.encode()


def folder(store: Store, clock: ManualClock) -> VersionedStore[str]:
    return VersionedStore(store, PATHS.manifest_dir, PATHS.manifest, "manifest", clock, dec, enc)


def append(suffix: str) -> Callable[[int, str], tuple[str, None]]:
    return lambda _vid, cur: (cur + suffix, None)


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
    assert f.latest() == (10, "v10")


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
    assert folder(store, clock).latest() == (2, "v2")


def test_latest_gives_up_when_every_get_misses(clock: ManualClock) -> None:
    class Vanishing(Store):
        def get(self, path: str) -> bytes | None:
            return None

    store = Vanishing(MemoryStore())
    store.put(PATHS.manifest(1), b"x")
    with pytest.raises(UnavailableError):
        folder(store, clock).latest()


# ---------------------------------------------------------------------------- short listing


class ListRecordingStore(Store):
    """Records each LIST: its prefix, its `after=` and how many objects it returned."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.lists: list[tuple[str, str | None, int]] = []

    def list(self, prefix: str, *, after: str | None = None) -> list[ObjectMeta]:
        got = super().list(prefix, after=after)
        self.lists.append((prefix, after, len(got)))
        return got


DIR = PATHS.manifest_dir


@pytest.fixture
def recording() -> ListRecordingStore:
    return ListRecordingStore(MemoryStore())


def test_a_fresh_handle_lists_the_folder_then_only_from_the_last_id_seen(
    recording: ListRecordingStore, clock: ManualClock
) -> None:
    for vid in range(1, 31):
        recording.put(PATHS.manifest(vid), enc(f"v{vid}"))
    f = folder(recording, clock)
    assert f.latest() == (30, "v30")
    assert recording.lists == [(DIR, None, 30)]  # nothing seen yet: the whole folder
    recording.lists.clear()
    assert f.latest() == (30, "v30")
    assert f.newest_ids() == [30]
    # Both start after the key of 29: one object back, however many the folder holds.
    assert recording.lists == [(DIR, PATHS.manifest(29), 1)] * 2
    recording.lists.clear()
    assert f.ids() == list(range(1, 31))  # `ids()` is still the full listing
    assert recording.lists == [(DIR, None, 30)]


def test_after_an_update_latest_lists_from_the_id_it_created(
    recording: ListRecordingStore, clock: ManualClock
) -> None:
    f = folder(recording, clock)
    for _ in range(5):
        f.update(append("a"), initial="")
    recording.lists.clear()
    assert f.latest() == (5, "aaaaa")
    assert recording.lists == [(DIR, PATHS.manifest(4), 1)]
    recording.lists.clear()
    # Within the client window of that look, the update builds on the version held: no LIST.
    assert f.update(append("b")) == (6, "aaaaab", None)
    assert recording.lists == []
    recording.lists.clear()
    assert f.latest() == (6, "aaaaab")
    assert recording.lists == [(DIR, PATHS.manifest(5), 1)]
    recording.lists.clear()
    # Past the window, the update looks first: one short LIST, and no GET of its own version.
    clock.advance(int(CLIENT_WINDOW_S * 1000))
    assert f.update(append("c")) == (7, "aaaaabc", None)
    assert recording.lists == [(DIR, PATHS.manifest(5), 1)]


def test_the_short_listing_finds_versions_another_handle_wrote(
    recording: ListRecordingStore, clock: ManualClock
) -> None:
    ours, theirs = folder(recording, clock), folder(recording, clock)
    for _ in range(5):
        ours.update(append("a"), initial="")
    theirs.update(append("b"))
    theirs.update(append("c"))
    recording.lists.clear()
    assert ours.latest() == (7, "aaaaabc")
    assert recording.lists == [(DIR, PATHS.manifest(4), 3)]  # 5, and their 6 and 7
    recording.lists.clear()
    # An update builds on their newest version, held since that look, and the next look
    # starts from there.
    assert ours.update(append("d")) == (8, "aaaaabcd", None)
    assert recording.lists == []
    recording.lists.clear()
    assert theirs.latest() == (8, "aaaaabcd")
    assert recording.lists == [(DIR, PATHS.manifest(6), 2)]


def test_the_short_listing_falls_back_to_the_whole_folder_once_it_was_emptied(
    recording: ListRecordingStore, clock: ManualClock
) -> None:
    f = folder(recording, clock)
    for vid in range(1, 6):
        recording.put(PATHS.manifest(vid), enc(f"old{vid}"))
    assert f.latest() == (5, "old5")
    for m in recording.list(DIR):
        recording.delete(m.path)
    # Written again from scratch, with lower ids; a stray object sorts after every version,
    # so the short listing finds something, but no version.
    recording.put(PATHS.manifest(1), b"new1")
    recording.put(PATHS.manifest(2), b"new2")
    recording.put(DIR + "README", b"not a version")
    recording.lists.clear()
    clock.advance(1)  # a look that begins after the one that found version 5
    assert f.latest() == (2, "new2")
    assert recording.lists == [(DIR, PATHS.manifest(4), 1), (DIR, None, 3)]
    recording.lists.clear()
    assert f.latest() == (2, "new2")  # short again, from the new last id
    assert recording.lists == [(DIR, PATHS.manifest(1), 2)]
    assert f.update(append("+")) == (3, "new2+", None)


def test_an_update_after_the_folder_was_emptied_builds_on_the_new_latest(
    recording: ListRecordingStore, clock: ManualClock
) -> None:
    f = folder(recording, clock)
    for _ in range(4):
        f.update(append("a"), initial="")
    for m in recording.list(DIR):
        recording.delete(m.path)
    recording.put(PATHS.manifest(1), b"z")
    recording.lists.clear()
    # Emptying a folder under a live handle is outside the protocol (the collector never
    # deletes the newest version): within the client window of its last look the handle
    # would build on the version it holds. Once that window has passed, it looks first:
    # not id 5 on top of a version that is gone, but 2, on the version the folder holds.
    clock.advance(int(CLIENT_WINDOW_S * 1000))
    assert f.update(append("b")) == (2, "zb", None)
    assert recording.lists == [(DIR, PATHS.manifest(3), 0), (DIR, None, 1)]
    assert contents(recording) == {PATHS.manifest(1): b"z", PATHS.manifest(2): b"zb"}


# ---------------------------------------------------------------------------- update


def test_update_creates_id_plus_one(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    seen: list[tuple[int, str]] = []

    def change(vid: int, cur: str) -> tuple[str, int]:
        seen.append((vid, cur))
        return cur + "x", len(seen)

    # The empty folder starts from `initial` at id 0; the change's result comes back.
    assert f.update(change, initial="") == (1, "x", 1)
    assert f.update(change, initial="") == (2, "xx", 2)
    assert seen == [(0, ""), (1, "x")]
    assert contents(store) == {PATHS.manifest(1): b"x", PATHS.manifest(2): b"xx"}


def test_update_builds_on_the_highest_id_not_the_count(
    store: HookedStore, clock: ManualClock
) -> None:
    store.put(PATHS.manifest(41), b"old")  # ids below were collected
    assert folder(store, clock).update(append("+")) == (42, "old+", None)


@pytest.mark.parametrize("result", ["none", "equal"])
def test_a_change_that_changes_nothing_writes_nothing(
    store: HookedStore, clock: ManualClock, result: str
) -> None:
    f = folder(store, clock)
    f.update(append("a"), initial="")
    before = contents(store)
    got = f.update(lambda _vid, cur: (None if result == "none" else str(cur), "r"))
    assert got == (1, "a", "r")  # the latest, and what the change returned
    assert contents(store) == before
    assert store.creates == [(PATHS.manifest(1), True)]


def test_an_update_of_an_empty_folder_without_initial_is_missing(
    store: HookedStore, clock: ManualClock
) -> None:
    """Changed by the refactor: an empty folder no longer hands the change `None`; without
    `initial` the update raises `missing()` before calling it, and writes nothing."""
    calls: list[tuple[int, str]] = []

    def change(vid: int, cur: str) -> tuple[str, None]:
        calls.append((vid, cur))
        return cur + "x", None

    with pytest.raises(UnavailableError, match="no versions"):
        folder(store, clock).update(change)
    assert calls == []
    assert contents(store) == {}


def test_a_change_that_returns_none_on_an_empty_folder_writes_nothing(
    store: HookedStore, clock: ManualClock
) -> None:
    """Changed by the refactor: this used to return (0, None); with `initial` the change sees
    (0, initial), and writing nothing there leaves no version to return: `missing()`."""
    calls: list[tuple[int, str]] = []

    def change(vid: int, cur: str) -> tuple[None, None]:
        calls.append((vid, cur))
        return None, None

    with pytest.raises(UnavailableError, match="no versions"):
        folder(store, clock).update(change, initial="init")
    assert calls == [(0, "init")]
    assert contents(store) == {}
    assert store.creates == []


def test_an_unchanged_initial_is_written_as_version_1(
    store: HookedStore, clock: ManualClock
) -> None:
    """`initial` is not a version yet: a change that keeps it as is writes it (how
    `create_if_absent` creates the first manifest)."""
    f = folder(store, clock)
    assert f.update(lambda _vid, cur: (cur, "kept"), initial="init") == (1, "init", "kept")
    assert contents(store) == {PATHS.manifest(1): b"init"}


def test_a_conflict_re_reads_and_re_applies(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    f.update(append("a"), initial="")
    calls: list[tuple[int, str]] = []

    def change(vid: int, cur: str) -> tuple[str, int]:
        calls.append((vid, cur))
        if len(calls) == 1:
            # Another writer creates the id this update is about to take.
            store.put(PATHS.manifest(vid + 1), enc(f"{cur}b"))
        return f"{cur}c", len(calls)

    assert f.update(change) == (3, "abc", 2)  # the result of the attempt that landed
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

    def change(vid: int, cur: str) -> tuple[str, None]:
        store.put(PATHS.manifest(vid + 1), b"theirs")
        return "mine", None

    with pytest.raises(UnavailableError, match="contention"):
        f.update(change, initial="")
    assert f.ids() == [1, 2, 3, 4, 5]
    assert all(v == b"theirs" for v in contents(store).values())


# ---------------------------------------------------------------------------- slow creates


def test_a_fast_create_is_trusted_even_with_a_version_on_top(
    store: HookedStore, clock: ManualClock
) -> None:
    """Within the client window a create is the latest when it landed: a version on top of
    it is someone else's later update, not a reason to apply this one again."""
    f = folder(store, clock)
    f.update(append("a"), initial="")
    calls = []

    def change(vid: int, cur: str) -> tuple[str | None, None]:
        calls.append(cur)
        return (None if "b" in cur else f"{cur}b"), None

    def on_top(path: str) -> None:
        clock.advance(SLOW_MS - 2)  # just inside the window
        # Someone else's version on top of the id ours is about to take.
        store.put(PATHS.manifest(3), b"abz")

    store.before_create = on_top
    assert f.update(change) == (2, "ab", None)
    assert calls == ["a"]


def test_a_slow_create_that_is_the_highest_id_is_trusted(
    store: HookedStore, clock: ManualClock
) -> None:
    f = folder(store, clock)
    f.update(append("a"), initial="")
    calls = []

    def change(vid: int, cur: str) -> tuple[str, None]:
        calls.append(cur)
        return f"{cur}b", None

    store.before_create = lambda _path: clock.advance(SLOW_MS)
    assert f.update(change) == (2, "ab", None)
    assert calls == ["a"]  # one LIST after the create showed it is still the highest
    assert f.ids() == [1, 2]


def test_a_slow_create_below_a_newer_id_is_re_read_and_re_applied(
    store: HookedStore, clock: ManualClock
) -> None:
    """The id may have been collected and created again: whether it counts is unknown, so the
    (idempotent) change is applied again to the latest version."""
    f = folder(store, clock)
    f.update(append("a"), initial="")
    calls: list[str] = []

    def change(vid: int, cur: str) -> tuple[str | None, None]:
        calls.append(cur)
        return (None if cur.endswith("b") else f"{cur}b"), None

    def slow_and_overtaken(_path: str) -> None:
        clock.advance(SLOW_MS)
        store.put(PATHS.manifest(3), b"ab")  # a version on top, seen by the second LIST

    store.before_create = slow_and_overtaken
    assert f.update(change) == (3, "ab", None)
    assert calls == ["a", "ab"]  # re-applied: found done, nothing more written
    assert f.ids() == [1, 2, 3]


def test_a_slow_create_re_applies_what_did_not_land(store: HookedStore, clock: ManualClock) -> None:
    """The same, when the version on top does not hold the change: it is written again."""
    f = folder(store, clock)
    f.update(append("a"), initial="")

    def change(vid: int, cur: str) -> tuple[str | None, None]:
        return (None if "b" in cur else f"{cur}b"), None

    def slow_and_overtaken(_path: str) -> None:
        clock.advance(SLOW_MS)
        store.put(PATHS.manifest(3), b"az")

    store.before_create = slow_and_overtaken
    assert f.update(change) == (4, "azb", None)


def test_create_outcomes(store: HookedStore, clock: ManualClock) -> None:
    f = folder(store, clock)
    for vid in (1, 2, 3, 5):
        store.put(PATHS.manifest(vid), b"x")
    now = f.now()
    assert f.create(3, "y", now) is False  # taken
    assert store.get(PATHS.manifest(3)) == b"x"
    assert f.create(4, "y", now) is True  # fast: trusted
    assert store.get(PATHS.manifest(4)) == b"y"  # the value, encoded
    assert f.create(6, "y", now - CLIENT_WINDOW_S) is True  # slow, but the highest
    assert f.create(0, "y", now - CLIENT_WINDOW_S) is None  # slow, below others: unknown
    assert store.get(PATHS.manifest(0)) == b"y"  # it was created all the same


# ---------------------------------------------------------------------------- manifests


def manifest_store(store: Store, clock: ManualClock) -> ManifestStore:
    return ManifestStore(store, PATHS, clock)


def test_create_if_absent_is_idempotent(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    first = Manifest(writer_epoch=3)
    assert ms.create_if_absent(first) == (1, first)
    assert ms.create_if_absent(Manifest(writer_epoch=9)) == (1, first)
    assert ms.ids() == [1]
    assert decode_manifest(store.get(PATHS.manifest(1)) or b"") == first


def test_create_first_only_once(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    assert ms.create_first(Manifest()) is True
    assert ms.create_first(Manifest(writer_epoch=5)) is False
    assert ms.require_latest() == (1, Manifest())


def test_no_manifest_is_no_database(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    assert ms.latest() is None
    with pytest.raises(DatabaseNotFoundError):
        ms.require_latest()
    with pytest.raises(DatabaseNotFoundError):
        ms.update(plain(lambda m: m))
    assert ms.ids() == []


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
    assert ms.ids() == [1]


def test_an_older_fence_is_fenced(store: HookedStore, clock: ManualClock) -> None:
    ms = manifest_store(store, clock)
    ms.create_if_absent(Manifest())
    old, new = WriterFence(ms), WriterFence(ms)
    old.claim()
    old.update(plain(lambda m: replace(m, last_l0_seq=1)))  # fine while it is the newest
    new.claim()
    assert (old.epoch, new.epoch) == (1, 2)
    ids = ms.ids()
    fenced = r"a newer writer \(epoch 2\) took over 'db'; this writer \(epoch 1\) is fenced"
    with pytest.raises(FencedError, match=fenced):
        old.update(plain(lambda m: replace(m, last_l0_seq=99)))
    with pytest.raises(FencedError, match=fenced):
        old.confirm()
    assert ms.ids() == ids  # nothing written
    _, m, _ = new.update(plain(lambda m: replace(m, last_l0_seq=2)))
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
        old.update(plain(lambda m: replace(m, last_l0_seq=7)))
    _, latest = ms.require_latest()
    assert latest.writer_epoch == 2 and latest.last_l0_seq == 0
