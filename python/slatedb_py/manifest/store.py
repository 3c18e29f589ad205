"""Versioned manifests on the object store: `manifest/<id>.manifest`, a `VersionedStore`.

Each version is a new object created with put-if-absent of the latest id + 1; an update that
loses the race re-reads the latest version, re-applies its change and tries again. After a
slow create whose outcome is unknown the update is also re-applied
(`manifest.versioned`), so changes must be idempotent: applied to a manifest that already
holds their effect, they write nothing. Writers and compactors guard their updates with
`manifest.fence`.
"""

from __future__ import annotations

from slatedb_py.clock import Clock, SystemClock
from slatedb_py.errors import DatabaseDeletingError, DatabaseNotFoundError
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.versioned import VersionedStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store


def _decode(data: bytes, name: str) -> Manifest:
    return decode_manifest(data, name=name)


class ManifestStore(VersionedStore[Manifest]):
    def __init__(self, store: Store, paths: DbPaths, clock: Clock | None = None) -> None:
        super().__init__(
            store,
            paths.manifest_dir,
            paths.manifest,
            "manifest",
            clock or SystemClock(),
            _decode,
            encode_manifest,
        )
        self.paths = paths

    def require_latest(self, *, max_age: float = 0.0) -> tuple[int, Manifest]:
        """`latest`, or DatabaseNotFoundError when there is no manifest."""
        latest = self.latest(max_age=max_age)
        if latest is None:
            raise self.missing()
        return latest

    def create_first(self, initial: Manifest) -> bool:
        """Writes version 1 if there is no manifest yet; False when there is one."""
        looked_at = self.now()
        if self.latest() is not None:
            return False
        return bool(self.create(1, initial, looked_at))

    def refuse_if_deleting(self) -> None:
        """DatabaseDeletingError when a delete of this database started and did not finish
        (its `.deleting` marker is there): what is left is partial, and a writer that went on
        (or created a manifest where none is left) would bring back a broken database."""
        marker = self.paths.deleting_marker
        if self.store.get(marker) is not None:
            raise DatabaseDeletingError(
                f"the database at {self.paths.root!r} is being deleted: {marker!r} marks a "
                "delete (SlateDB's Admin::delete_db) that has not finished; run the delete "
                "again to finish it",
                path=self.paths.root,
                marker=marker,
            )

    def create_if_absent(self, initial: Manifest) -> tuple[int, Manifest]:
        mid, m, _ = self.update(lambda _mid, cur: (cur, None), initial=initial)
        return mid, m

    def missing(self) -> DatabaseNotFoundError:
        return DatabaseNotFoundError(
            f"no database at {self.paths.root!r} (no manifest)", path=self.paths.root
        )
