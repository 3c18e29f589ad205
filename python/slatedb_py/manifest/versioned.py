"""A folder of versions `<20-digit id>.<suffix>`, each written once with put-if-absent of the
latest id + 1 (FORMAT.md 1, "sequenced storage protocol"): `manifest/` and `compactions/`.

The latest version is found by LIST (probing `id + 1` from a cached id is unsafe once the
collector deletes old versions). A successful create is trusted without a second request when
it finished within the client window of the LIST that chose its id; `slatedb_py.safety` says
why, and what a slower one does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from slatedb_py.clock import Clock, monotonic_s
from slatedb_py.errors import UnavailableError
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import ObjectMeta, Store

T = TypeVar("T")
# Conflicts one update retries through before it gives up.
MAX_ATTEMPTS = 1000


def version_id_of(key: str, suffix: str) -> int | None:
    """The id of a version object `<dir>/<digits>.<suffix>`, or None for anything else."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, rest = name.partition(".")
    return int(stem) if dot and rest == suffix and is_version_stem(stem) else None


def is_version_stem(stem: str) -> bool:
    """Exactly the 20 ASCII digits SlateDB writes: any other name (a stray `99.manifest`,
    other scripts' digits) is not a version, since the key read back is built from the id."""
    return len(stem) == 20 and stem.isascii() and stem.isdigit()


class VersionedFolder:
    def __init__(
        self, store: Store, folder: str, key: Callable[[int], str], suffix: str, clock: Clock
    ) -> None:
        self.store = store
        self.folder = folder
        self.key = key
        self.suffix = suffix
        self.clock = clock

    def ids(self, listed: list[ObjectMeta] | None = None) -> list[int]:
        """The version ids present (from `listed`, a listing of the folder, when given)."""
        metas = self.store.list(self.folder) if listed is None else listed
        ids = (version_id_of(m.path, self.suffix) for m in metas)
        return sorted(i for i in ids if i is not None)

    def read(self, vid: int) -> bytes | None:
        return self.store.get(self.key(vid))

    def latest(self, listed: list[ObjectMeta] | None = None) -> tuple[int, bytes] | None:
        """The newest version's id and bytes, or None when the folder holds none. `listed`:
        a listing the caller already made, used for the first look."""
        for _ in range(10):
            ids = self.ids(listed)
            listed = None
            if not ids:
                return None
            data = self.read(ids[-1])
            if data is not None:  # else: collected between LIST and GET; list again
                return ids[-1], data
        raise UnavailableError(f"folder {self.folder!r} keeps changing")

    def update(
        self,
        decode: Callable[[int, bytes], T],
        encode: Callable[[T], bytes],
        change: Callable[[int, T | None], T | None],
    ) -> tuple[int, T | None]:
        """Applies `change` (given the latest id and version, or 0 and None in an empty folder)
        and creates its result as the next version, re-reading and re-applying on conflict and
        after an unknown outcome (`create`). `change` returning None or an equal version
        writes nothing. It must be idempotent."""
        for _ in range(MAX_ATTEMPTS):
            looked_at = self.now()
            got = self.latest()
            vid, current = (0, None) if got is None else (got[0], decode(*got))
            new = change(vid, current)
            if new is None or new == current:
                return vid, current
            if self.create(vid + 1, encode(new), looked_at):
                return vid + 1, new
        raise UnavailableError(f"could not update {self.folder!r}: too much contention")

    def now(self) -> float:
        """The monotonic time to pass to `create` as `looked_at`: take it before the LIST."""
        return monotonic_s(self.clock)

    def create(self, vid: int, data: bytes, looked_at: float) -> bool | None:
        """Creates version `vid`, chosen by a LIST that started at `looked_at`. True: it landed
        as the latest. False: the id was taken (a conflict: re-read, re-apply, retry). None:
        created, but whether on top of the latest is unknown; the caller re-reads and
        re-applies its (idempotent) change."""
        if not self.store.put_if_absent(self.key(vid), data):
            return False
        if monotonic_s(self.clock) - looked_at < CLIENT_WINDOW_S:
            return True
        # Slow: the id may have been collected and re-created. The highest id never is.
        return True if max(self.ids(), default=vid) <= vid else None
