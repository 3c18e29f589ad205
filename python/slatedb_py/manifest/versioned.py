"""A folder of versions `<20-digit id>.<suffix>`, each written once with put-if-absent of the
latest id + 1 (docs/protocols.md, "sequenced storage"): `manifest/` and `compactions/` are both
a `VersionedStore`, and `manifest.fence.Fence` guards either with an epoch.

The latest version is found by LIST: probing `id + 1` from a cached id is unsafe once the
collector deletes old versions. The LIST starts at the last id this handle saw, so it is short
however many versions the folder holds: the collector never deletes the newest version, so the
newest is always at or after an id once seen. A successful create is trusted without a second
request when it finished within the client window of the LIST that chose its id;
`slatedb_py.safety` says why, and what a slower one does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

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

    def ids(self, listed: list[ObjectMeta] | None = None) -> list[int]:
        """Every version id present (from `listed`, a listing of the folder, when given)."""
        metas = self.store.list(self.folder) if listed is None else listed
        return self._ids_of(metas)

    def _ids_of(self, metas: list[ObjectMeta]) -> list[int]:
        ids = sorted(
            i for i in (version_id_of(m.path, self.suffix) for m in metas) if i is not None
        )
        if ids:
            self._known = max(self._known, ids[-1])
        return ids

    def newest_ids(self) -> list[int]:
        """The ids from the last one seen on: one short LIST. Falls back to the whole folder
        when that finds nothing (the folder was emptied and written again)."""
        if self._known > 0:
            ids = self._ids_of(self.store.list(self.folder, after=self.key(self._known - 1)))
            if ids:
                return ids
            self._known = 0
        return self.ids()

    def read(self, vid: int) -> T | None:
        data = self.store.get(self.key(vid))
        return None if data is None else self._decode(data, self.key(vid))

    def latest(self, listed: list[ObjectMeta] | None = None) -> tuple[int, T] | None:
        """The newest version's id and value, or None when the folder holds none. `listed`:
        a listing the caller already made, used for the first look."""
        for _ in range(MAX_RELISTS):
            ids = self.ids(listed) if listed is not None else self.newest_ids()
            listed = None
            if not ids:
                return None
            got = self.read(ids[-1])
            if got is not None:  # else: collected between LIST and GET; list again
                return ids[-1], got
        raise UnavailableError(f"folder {self.folder!r} keeps changing")

    def update(self, change: Change[T, R], *, initial: T | None = None) -> tuple[int, T, R]:
        """Applies `change` to the latest version and creates its result as the next one,
        re-reading and re-applying on conflict and after an unknown outcome (`create`).
        Returns the id and value now latest, and what `change` returned with it. `change`
        must be idempotent: applied to a version that holds its effect, it writes nothing.
        In an empty folder `change` gets id 0 and `initial`, or `missing()` is raised."""
        for _ in range(MAX_ATTEMPTS):
            looked_at = self.now()
            got = self.latest()
            if got is None:
                if initial is None:
                    raise self.missing()
                vid, current, found = 0, initial, False
            else:
                (vid, current), found = got, True
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
        if not self.store.put_if_absent(self.key(vid), self._encode(value)):
            return False
        self._known = max(self._known, vid)
        if monotonic_s(self.clock) - looked_at < CLIENT_WINDOW_S:
            return True
        # Slow: the id may have been collected and re-created. The highest id never is.
        return True if max(self.newest_ids(), default=vid) <= vid else None
