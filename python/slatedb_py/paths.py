"""Every object key of a database is built here (FORMAT.md section 1).

    <root>/manifest/<20-digit id>.manifest
    <root>/compactions/<20-digit id>.compactions
    <root>/wal/<20-digit id>.sst          (0 bytes: a writer's fence)
    <root>/compacted/<ULID>.sst
    <root>/gc/manifest.boundary, <root>/gc/compactions.boundary

A database path is an object-store path: "/my/test/db" and "my/test/db" name the same
database (object_store paths have no leading slash).
"""

from __future__ import annotations

from dataclasses import dataclass


def normalize_root(path: str) -> str:
    parts = [p for p in str(path).split("/") if p]
    for p in parts:
        if p in (".", ".."):
            raise ValueError(f"database path {path!r} may not contain '.' or '..'")
    return "/".join(parts)


def _parse_id(name: str) -> int | None:
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


@dataclass(frozen=True)
class DbPaths:
    root: str

    @classmethod
    def of(cls, path: str) -> DbPaths:
        return cls(normalize_root(path))

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

    def boundary(self, kind: str) -> str:
        return self._join("gc", f"{kind}.boundary")

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
