"""Versioned manifests on the object store: the sequenced-storage protocol of FORMAT.md 1.

Each version is a new object `manifest/<id+1>.manifest` created with put-if-absent; a writer
that loses the race re-reads the latest version, re-applies its change and tries again.
Writers and compactors fence older instances with epochs kept in the manifest itself.

Creates follow `manifest.versioned`: one is trusted when it finished within the client window
of the LIST that chose its id (`slatedb_py.safety`); after a slower one whose outcome is unknown
the update is re-read and re-applied. Mutations must therefore be idempotent: applied to a
manifest that already holds their effect, they return None (or an equal manifest), so
re-applying an update whose create did land writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from slatedb_py.clock import Clock, SystemClock, monotonic_s
from slatedb_py.errors import DatabaseNotFoundError, DataError, FencedError
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.versioned import VersionedFolder
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

Mutation = Callable[[Manifest], Manifest | None]
# A mutation that also needs the id of the version it starts from (the new one is id + 1).
IdMutation = Callable[[int, Manifest], Manifest | None]


class ManifestStore:
    def __init__(self, store: Store, paths: DbPaths, clock: Clock | None = None) -> None:
        self.store = store
        self.paths = paths
        self.clock = clock or SystemClock()
        self.versions = VersionedFolder(
            store, paths.manifest_dir, paths.manifest, "manifest", self.clock
        )

    def list_ids(self) -> list[int]:
        return self.versions.ids()

    def read(self, manifest_id: int) -> Manifest | None:
        data = self.versions.read(manifest_id)
        return None if data is None else self._decode(manifest_id, data)

    def read_latest(self) -> tuple[int, Manifest] | None:
        """The newest version, or None when there is no database here."""
        latest = self.versions.latest()
        return None if latest is None else (latest[0], self._decode(*latest))

    def require_latest(self) -> tuple[int, Manifest]:
        latest = self.read_latest()
        if latest is None:
            raise DatabaseNotFoundError(
                f"no database at {self.paths.root!r} (no manifest)", path=self.paths.root
            )
        return latest

    def create_first(self, initial: Manifest) -> bool:
        """Writes version 1 if there is no manifest yet; False when there is one."""
        looked_at = self.versions.now()
        if self.read_latest() is not None:
            return False
        return bool(self.versions.create(1, encode_manifest(initial), looked_at))

    def create_if_absent(self, initial: Manifest) -> tuple[int, Manifest]:
        mid, m = self.versions.update(
            self._decode, encode_manifest, lambda _vid, cur: cur or initial
        )
        assert m is not None
        return mid, m

    def _decode(self, manifest_id: int, data: bytes) -> Manifest:
        return decode_manifest(data, name=self.paths.manifest(manifest_id))

    def update(self, mutate: Mutation) -> tuple[int, Manifest]:
        """Applies `mutate` to the latest version and writes the result as the next one,
        re-reading and re-applying on conflict. A mutation returning None (or the same
        manifest) writes nothing. `mutate` must be idempotent (module docstring)."""
        return self.update_with_id(lambda _mid, m: mutate(m))

    def update_with_id(self, mutate: IdMutation) -> tuple[int, Manifest]:
        def change(mid: int, current: Manifest | None) -> Manifest | None:
            if current is None:
                raise DatabaseNotFoundError(
                    f"no database at {self.paths.root!r} (no manifest)", path=self.paths.root
                )
            return mutate(mid, current)

        mid, m = self.versions.update(self._decode, encode_manifest, change)
        assert m is not None  # `change` raised otherwise
        return mid, m


class WriterFence:
    """Holds a writer epoch: every manifest update first checks that no newer writer took over.

    `confirmed_at` is when (monotonic seconds) a look at the latest manifest last found this
    epoch current; the WAL uses it to decide whether an upload may be acknowledged as is
    (`slatedb_py.safety`)."""

    def __init__(self, manifests: ManifestStore) -> None:
        self.manifests = manifests
        self.epoch = 0
        self.confirmed_at = float("-inf")

    def claim(self) -> tuple[int, Manifest]:
        def bump(m: Manifest) -> Manifest:
            if not m.initialized:
                raise DataError(
                    f"the database at {self.manifests.paths.root!r} is not initialized (a clone being created)"
                )
            # Not idempotent, and need not be: bumping twice after an unknown outcome only
            # leaves this writer with a higher epoch, still the newest.
            return replace(m, writer_epoch=m.writer_epoch + 1)

        started = monotonic_s(self.manifests.clock)
        mid, m = self.manifests.update(bump)
        self.epoch = m.writer_epoch
        self.confirmed_at = started
        return mid, m

    def confirm(self) -> None:
        """Reads the latest manifest; raises FencedError if a newer writer took over."""
        started = monotonic_s(self.manifests.clock)
        _, m = self.manifests.require_latest()
        self.check(m)
        self.confirmed_at = started

    def check(self, m: Manifest) -> None:
        if m.writer_epoch > self.epoch:
            raise FencedError(
                f"a newer writer (epoch {m.writer_epoch}) opened {self.manifests.paths.root!r}; "
                f"this writer (epoch {self.epoch}) is fenced"
            )

    def update(self, mutate: Mutation) -> tuple[int, Manifest]:
        return self.update_with_id(lambda _mid, m: mutate(m))

    def update_with_id(self, mutate: IdMutation) -> tuple[int, Manifest]:
        def guarded(mid: int, m: Manifest) -> Manifest | None:
            self.check(m)
            return mutate(mid, m)

        started = monotonic_s(self.manifests.clock)
        result = self.manifests.update_with_id(guarded)
        self.confirmed_at = max(self.confirmed_at, started)
        return result
