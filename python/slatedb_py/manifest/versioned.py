"""A folder of versions `<20-digit id>.<suffix>`, each written once with put-if-absent of the
latest id + 1 (docs/protocols.md, "sequenced storage"): `manifest/` and `compactions/` are both
a `VersionedStore`, and `manifest.fence.Fence` guards either with an epoch.

The latest version is found by LIST: probing `id + 1` from a cached id is unsafe once the
collector deletes old versions. The LIST starts at the last id this handle saw, so it is short
however many versions the folder holds: the collector never deletes the newest version, so the
newest is always at or after an id once seen. A successful create is trusted without a second
request when it finished within the client window of the LIST that chose its id;
`slatedb_py.safety` says why, and what a slower one does.

Requests are what object storage bills, so a handle keeps the newest version it saw (`Seen`):
- A look whose LIST finds that same object (id, size and time) again reads nothing more.
- An update within the client window of the last look writes on top of the version held,
  with no LIST at all: any version someone else created since that look is still there (it is
  younger than the collector floor), so a create of an id that is taken fails, and the update
  looks and retries. An update whose change, applied to the version held, would write nothing
  or fails looks first: that decision must rest on the latest version.
So an update costs its PUT, plus one short LIST once the window has passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from slatedb_py.clock import Clock, monotonic_s
from slatedb_py.errors import UnavailableError
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import ObjectMeta, Store

T = TypeVar("T")
R = TypeVar("R")
# Conflicts one update retries through before it gives up.
MAX_ATTEMPTS = 1000
# Re-lists when a version vanished between LIST and GET (collected meanwhile).
MAX_RELISTS = 10

# A change: given the latest id and version, the version to write next (None or an equal
# one: write nothing) and what the update returns to its caller.
Change = Callable[[int, T], tuple[T | None, R]]


class Seen(NamedTuple, Generic[T]):
    """The newest version a handle knows: its id and value, the object's size and time as a
    LIST shows them (None for one this handle created: the next LIST fills them in), and when
    (monotonic seconds) the look that found it newest began."""

    vid: int
    value: T
    size: int | None
    modified: datetime | None
    looked_at: float
    # When it was known to exist: the look's start, or when this handle's create of it
    # returned. A look that began earlier cannot be trusted to have seen it.
    known_at: float


def version_id_of(key: str, suffix: str) -> int | None:
    """The id of a version object `<dir>/<digits>.<suffix>`, or None for anything else."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, rest = name.partition(".")
    return int(stem) if dot and rest == suffix and is_version_stem(stem) else None


def is_version_stem(stem: str) -> bool:
    """Exactly the 20 ASCII digits SlateDB writes: any other name (a stray `99.manifest`,
    other scripts' digits) is not a version, since the key read back is built from the id."""
    return len(stem) == 20 and stem.isascii() and stem.isdigit()


class VersionedStore(Generic[T]):
    """The versions of one folder, decoded as `T`."""

    def __init__(
        self,
        store: Store,
        folder: str,
        key: Callable[[int], str],
        suffix: str,
        clock: Clock,
        decode: Callable[[bytes, str], T],
        encode: Callable[[T], bytes],
    ) -> None:
        self.store = store
        self.folder = folder
        self.key = key
        self.suffix = suffix
        self.clock = clock
        self._decode = decode
        self._encode = encode
        self._known = 0  # the newest id this handle has seen: later LISTs start there
        self._seen: Seen[T] | None = None
        self._seen_lock = threading.Lock()  # a writer and its compactor share one handle

    def ids(self, listed: list[ObjectMeta] | None = None) -> list[int]:
        """Every version id present (from `listed`, a listing of the folder, when given)."""
        metas = self.store.list(self.folder) if listed is None else listed
        return [vid for vid, _ in self._versions(metas)]

    def _versions(self, metas: list[ObjectMeta]) -> list[tuple[int, ObjectMeta]]:
        found = [(version_id_of(m.path, self.suffix), m) for m in metas]
        out = sorted((vid, m) for vid, m in found if vid is not None)
        if out:
            self._known = max(self._known, out[-1][0])
        return out

    def _newest_versions(self) -> list[tuple[int, ObjectMeta]]:
        """The versions from the last id seen on: one short LIST. Falls back to the whole
        folder when that finds nothing (the folder was emptied and written again)."""
        if self._known > 0:
            found = self._versions(self.store.list(self.folder, after=self.key(self._known - 1)))
            if found:
                return found
            self._known = 0
        return self._versions(self.store.list(self.folder))

    def newest_ids(self) -> list[int]:
        """The ids from the last one seen on (`_newest_versions`)."""
        return [vid for vid, _ in self._newest_versions()]

    def read(self, vid: int) -> T | None:
        data = self.store.get(self.key(vid))
        return None if data is None else self._decode(data, self.key(vid))

    def latest(
        self, listed: list[ObjectMeta] | None = None, *, max_age: float = 0.0
    ) -> tuple[int, T] | None:
        """The newest version's id and value, or None when the folder holds none. `listed`:
        a listing the caller already made, used for the first look. `max_age`: the version
        held may answer without a request if its look began less than that many seconds ago
        (for callers that act on it only through an update, which checks again)."""
        seen = self._seen
        if max_age > 0 and seen is not None and self.now() - seen.looked_at < max_age:
            return seen.vid, seen.value
        got = self._look(listed)
        return None if got is None else (got.vid, got.value)

    def _look(self, listed: list[ObjectMeta] | None = None) -> Seen[T] | None:
        """Finds the newest version: a LIST, and a GET unless it is the one held."""
        for _ in range(MAX_RELISTS):
            looked_at = self.now()
            found = self._versions(listed) if listed is not None else self._newest_versions()
            listed = None
            if not found:
                return None
            vid, meta = found[-1]
            seen = self._seen
            if seen is not None and seen.vid == vid and _same(seen, meta):
                value = seen.value  # versions are written once: the one held is this one
            else:
                got = self.read(vid)
                if got is None:  # collected between LIST and GET; list again
                    continue
                value = got
            new = Seen(vid, value, meta.size, meta.last_modified, looked_at, looked_at)
            self._hold(new)
            return new
        raise UnavailableError(f"folder {self.folder!r} keeps changing")

    def _hold(self, seen: Seen[T]) -> None:
        """Keeps `seen` unless the version held is newer. A lower id replaces it only from a
        look that began after the held version was known to exist (the folder was emptied and
        written again); a look that began before may simply have missed it (a create of
        another thread of this handle)."""
        with self._seen_lock:
            held = self._seen
            if held is None or seen.vid >= held.vid or seen.looked_at > held.known_at:
                self._seen = seen

    def _recent(self) -> Seen[T] | None:
        """The version held, if its look began within the client window (`update`)."""
        seen = self._seen
        if seen is not None and self.now() - seen.looked_at < CLIENT_WINDOW_S:
            return seen
        return None

    def update(self, change: Change[T, R], *, initial: T | None = None) -> tuple[int, T, R]:
        """Applies `change` to the latest version and creates its result as the next one,
        re-reading and re-applying on conflict and after an unknown outcome (`create`).
        Returns the id and value now latest, and what `change` returned with it. `change`
        must be idempotent: applied to a version that holds its effect, it writes nothing.
        In an empty folder `change` gets id 0 and `initial`, or `missing()` is raised.
        The first try may build on the version held (module docstring)."""
        held = self._recent()
        if held is not None:
            try:
                new, result = change(held.vid, held.value)
            except Exception:  # decided on a version that may be old: look, then decide
                new = None
            if (
                new is not None
                and new != held.value
                and self.create(held.vid + 1, new, held.looked_at)
            ):
                return held.vid + 1, new, result
        for _ in range(MAX_ATTEMPTS):
            got = self._look()
            if got is None:
                if initial is None:
                    raise self.missing()
                vid, current, found, looked_at = 0, initial, False, self.now()
            else:
                vid, current, found, looked_at = got.vid, got.value, True, got.looked_at
            new, result = change(vid, current)
            if new is None or (found and new == current):
                if not found:
                    raise self.missing()
                return vid, current, result
            if self.create(vid + 1, new, looked_at):
                return vid + 1, new, result
        raise UnavailableError(f"could not update {self.folder!r}: too much contention")

    def missing(self) -> Exception:
        """What an update of an empty folder raises when it has no `initial` version."""
        return UnavailableError(f"no versions in {self.folder!r}")

    def now(self) -> float:
        """The monotonic time to pass to `create` as `looked_at`: take it before the LIST."""
        return monotonic_s(self.clock)

    def create(self, vid: int, value: T, looked_at: float) -> bool | None:
        """Creates version `vid`, chosen by a LIST that started at `looked_at`. True: it landed
        as the latest. False: the id was taken (a conflict: re-read, re-apply, retry). None:
        created, but whether on top of the latest is unknown; the caller re-reads and
        re-applies its (idempotent) change."""
        data = self._encode(value)
        if not self.store.put_if_absent(self.key(vid), data):
            return False
        self._known = max(self._known, vid)
        if monotonic_s(self.clock) - looked_at < CLIENT_WINDOW_S:
            # Landed as the newest: held as seen at the look that chose its id.
            self._hold(Seen(vid, value, len(data), None, looked_at, self.now()))
            return True
        # Slow: the id may have been collected and re-created. The highest id never is.
        return True if max(self.newest_ids(), default=vid) <= vid else None


def _same(seen: Seen[Any], meta: ObjectMeta) -> bool:
    """Whether a listed object is the version held: same size, and same time once known (a
    folder emptied and written again reuses ids)."""
    return seen.size == meta.size and seen.modified in (None, meta.last_modified)
