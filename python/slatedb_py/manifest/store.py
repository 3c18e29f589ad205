"""Versioned manifests on the object store: the sequenced-storage protocol of FORMAT.md 1.

Each version is a new object `manifest/<id+1>.manifest` created with put-if-absent; a writer
that loses the race re-reads the latest version, re-applies its change and tries again.
Writers and compactors fence older instances with epochs kept in the manifest itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from slatedb_py.errors import DatabaseNotFoundError, DataError, FencedError, UnavailableError
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.model import Manifest
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

Mutation = Callable[[Manifest], Manifest | None]
# A mutation that also needs the id of the version it starts from (the new one is id + 1).
IdMutation = Callable[[int, Manifest], Manifest | None]

MAX_ATTEMPTS = 1000


class ManifestStore:
    def __init__(self, store: Store, paths: DbPaths) -> None:
        self.store = store
        self.paths = paths

    def list_ids(self) -> list[int]:
        ids = []
        for meta in self.store.list(self.paths.manifest_dir):
            mid = DbPaths.manifest_id_of(meta.path)
            if mid is not None:
                ids.append(mid)
        return sorted(ids)

    def read(self, manifest_id: int) -> Manifest | None:
        key = self.paths.manifest(manifest_id)
        data = self.store.get(key)
        return None if data is None else decode_manifest(data, name=key)

    def read_latest(self) -> tuple[int, Manifest] | None:
        """The newest version, or None when there is no database here.

        Always a LIST: probing `id + 1` from a cached id is unsafe once the collector deletes
        old versions (a deleted id looks like "no newer version")."""
        for _ in range(10):
            ids = self.list_ids()
            if not ids:
                return None
            m = self.read(ids[-1])
            if m is not None:  # else: collected between LIST and GET; list again
                return ids[-1], m
        raise UnavailableError(f"manifest folder {self.paths.manifest_dir!r} keeps changing")

    def require_latest(self) -> tuple[int, Manifest]:
        latest = self.read_latest()
        if latest is None:
            raise DatabaseNotFoundError(
                f"no database at {self.paths.root!r} (no manifest)", path=self.paths.root
            )
        return latest

    def try_write(self, manifest_id: int, manifest: Manifest) -> bool:
        """Writes version `manifest_id` if nobody did. The create can also succeed on an id the
        collector deleted long ago (a writer that read a stale latest): a newer version in the
        listing afterwards means this one is not the latest, so it counts as a conflict (the
        orphan is collected later; ids only grow, so nobody ever takes it for the latest)."""
        if not self.store.put_if_absent(self.paths.manifest(manifest_id), encode_manifest(manifest)):
            return False
        return max(self.list_ids(), default=manifest_id) <= manifest_id

    def create_if_absent(self, initial: Manifest) -> tuple[int, Manifest]:
        latest = self.read_latest()
        if latest is not None:
            return latest
        if self.try_write(1, initial):
            return 1, initial
        return self.require_latest()

    def update(self, mutate: Mutation) -> tuple[int, Manifest]:
        """Applies `mutate` to the latest version and writes the result as the next one,
        re-reading and re-applying on conflict. A mutation returning None (or the same
        manifest) writes nothing."""
        return self.update_with_id(lambda _mid, m: mutate(m))

    def update_with_id(self, mutate: IdMutation) -> tuple[int, Manifest]:
        for _ in range(MAX_ATTEMPTS):
            mid, current = self.require_latest()
            new = mutate(mid, current)
            if new is None or new == current:
                return mid, current
            if self.try_write(mid + 1, new):
                return mid + 1, new
        raise UnavailableError(f"could not update the manifest of {self.paths.root!r}: too much contention")


class WriterFence:
    """Holds a writer epoch: every manifest update first checks that no newer writer took over."""

    def __init__(self, manifests: ManifestStore) -> None:
        self.manifests = manifests
        self.epoch = 0

    def claim(self) -> tuple[int, Manifest]:
        def bump(m: Manifest) -> Manifest:
            if not m.initialized:
                raise DataError(f"the database at {self.manifests.paths.root!r} is not initialized (a clone being created)")
            return replace(m, writer_epoch=m.writer_epoch + 1)

        mid, m = self.manifests.update(bump)
        self.epoch = m.writer_epoch
        return mid, m

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

        return self.manifests.update_with_id(guarded)
