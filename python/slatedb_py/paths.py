"""Every object key of a database is built here (FORMAT.md section 1).

    <root>/manifest/<20-digit id>.manifest
    <root>/compactions/<20-digit id>.compactions
    <root>/wal/<20-digit id>.sst          (0 bytes: a writer's fence)
    <root>/compacted/<ULID>.sst
    <root>/gc/manifest.boundary, <root>/gc/compactions.boundary

A database path is an object-store path: "/my/test/db" and "my/test/db" name the same
database (object_store paths have no leading slash; empty segments are dropped, so
"my//test/db/" is that database too).

`DbPaths.of` is the one check every public entry point applies to a database path, before
it touches the store:
- the path must be a `str` (not bytes, not a `pathlib` path, not None): `InvalidTypeError`;
- no segment may be "." or ".." (object-store paths have no relative segments; dots inside
  a segment, like "v1.2", are fine): `InvalidArgumentError`;
- it must have at least one segment: "", "/" and "///" are refused with
  `InvalidArgumentError` rather than meaning "the store's root" (an empty path is almost
  always an unset variable, and a database at the root would share its top-level
  `manifest/`, `wal/` and `compacted/` folders with whatever else the bucket holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:  # the model is above paths; only its type is named here
    from slatedb_py.manifest.model import Manifest


def normalize_root(path: str, what: str = "database path") -> str:
    """`path` checked (see the module docstring) and normalized; `what` names it in errors."""
    if not isinstance(path, str):
        raise InvalidTypeError(f"{what} must be a str, not {type(path).__name__} {path!r:.60}")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgumentError(f"{what} {path!r} may not contain '.' or '..' segments")
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise InvalidArgumentError(f"{what} {path!r} may not contain control characters")
    if not parts:
        raise InvalidArgumentError(
            f"{what} {path!r} names no database: it needs at least one segment, like 'my/db'"
        )
    return "/".join(parts)


def _parse_id(name: str) -> int | None:
    # Exactly the 20 ASCII digits of `{:020}`: other names are not ours to parse.
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(stem) if len(stem) == 20 and stem.isascii() and stem.isdigit() else None


@dataclass(frozen=True)
class DbPaths:
    root: str

    @classmethod
    def of(cls, path: str, what: str = "database path") -> DbPaths:
        """The paths of the database at `path`: the one check of a user's database path
        (raises `InvalidTypeError` or `InvalidArgumentError`, naming `what` and the value)."""
        return cls(normalize_root(path, what))

    @classmethod
    def stored(cls, path: str) -> DbPaths:
        """The paths of a database named inside a manifest (a clone's external database), taken
        as SlateDB wrote it: not a user's argument, so the store's root is a valid answer."""
        return cls("/".join(p for p in path.split("/") if p))

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.root, *parts) if p)

    @property
    def manifest_dir(self) -> str:
        return self._join("manifest") + "/"

    @property
    def wal_dir(self) -> str:
        return self._join("wal") + "/"

    @property
    def compacted_dir(self) -> str:
        return self._join("compacted") + "/"

    @property
    def compactions_dir(self) -> str:
        return self._join("compactions") + "/"

    def manifest(self, manifest_id: int) -> str:
        return self._join("manifest", f"{manifest_id:020d}.manifest")

    def compactions(self, compactions_id: int) -> str:
        return self._join("compactions", f"{compactions_id:020d}.compactions")

    def wal(self, wal_id: int) -> str:
        return self._join("wal", f"{wal_id:020d}.sst")

    def compacted(self, ulid: str) -> str:
        return self._join("compacted", f"{ulid}.sst")

    def sst_in(self, m: Manifest, sst_id: str) -> str:
        """Where SST `sst_id` of this database's manifest `m` lives: here, or under the
        external database (a clone's parent) that owns it."""
        for ext in m.external_dbs:
            if sst_id in ext.sst_ids:
                return DbPaths.stored(ext.path).compacted(sst_id)
        return self.compacted(sst_id)

    def boundary(self, kind: str) -> str:
        return self._join("gc", f"{kind}.boundary")

    @property
    def deleting_marker(self) -> str:
        """What SlateDB's `Admin::delete_db` (0.16 and later) writes before it deletes
        anything and removes last: while it exists, the database is partly gone."""
        return self._join(".deleting")

    @staticmethod
    def manifest_id_of(key: str) -> int | None:
        return _parse_id(key) if key.endswith(".manifest") else None

    @staticmethod
    def wal_id_of(key: str) -> int | None:
        return _parse_id(key) if key.endswith(".sst") else None

    @staticmethod
    def ulid_of(key: str) -> str | None:
        stem = key.rsplit("/", 1)[-1]
        return stem[:-4] if stem.endswith(".sst") and len(stem) == 30 else None
