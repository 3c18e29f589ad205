"""The objects of backups: streaming copies and checks with checksums, and the backup record.

Objects move in chunks of `CHUNK` bytes (ranged reads; larger objects upload as a multipart
put fed by those reads, `Store.upload`, which holds about three parts of `Store.part_size`),
`WORKERS` objects at a time, so memory stays near `WORKERS * (CHUNK + 3 * part_size)`
whatever the database's size. Every byte read is hashed on the way (SHA-256): a copy's
checksum is of the bytes it read from the source, a check's of the bytes the backup holds
now.

A backup record is a small JSON object, `<backup>/backups/<id>.json`, written last with
put-if-absent: it lists each object the backup needs (path relative to the backup location,
size, SHA-256). No record, no backup: an interrupted backup leaves copies but no record.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from slatedb_py.errors import DataError
from slatedb_py.progress import SILENT, Progress
from slatedb_py.store import Store

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 8 * 1024 * 1024
WORKERS = 4
RECORD_FORMAT = 1


@dataclass(frozen=True)
class Backup:
    """A completed backup (API.md): `manifest_id` is the backup location's manifest version
    it pins; `objects`/`bytes` what it needs, `new_bytes` what it copied (the rest was
    already there, from earlier backups)."""

    id: uuid.UUID
    create_time: datetime
    seq: int
    manifest_id: int
    objects: int
    bytes: int
    new_bytes: int


@dataclass(frozen=True)
class ObjectEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class Record:
    backup: Backup
    source: str  # the source database's path
    source_manifest_id: int
    objects: dict[str, ObjectEntry]  # path relative to the backup location -> entry

    def encode(self) -> bytes:
        b = self.backup
        doc = {
            "format": RECORD_FORMAT,
            "id": str(b.id),
            "create_time_ms": int(b.create_time.timestamp() * 1000),
            "seq": b.seq,
            "manifest_id": b.manifest_id,
            "bytes": b.bytes,
            "new_bytes": b.new_bytes,
            "source": self.source,
            "source_manifest_id": self.source_manifest_id,
            "objects": {p: [e.size, e.sha256] for p, e in sorted(self.objects.items())},
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def decode(cls, data: bytes, name: str) -> Record:
        try:
            doc = json.loads(data)
            if doc["format"] != RECORD_FORMAT:
                raise DataError(f"backup record {name!r} has format {doc['format']}", object=name)
            objects = {p: ObjectEntry(int(s), str(h)) for p, (s, h) in doc["objects"].items()}
            backup = Backup(
                id=uuid.UUID(doc["id"]),
                create_time=datetime.fromtimestamp(doc["create_time_ms"] / 1000, UTC),
                seq=int(doc["seq"]),
                manifest_id=int(doc["manifest_id"]),
                objects=len(objects),
                bytes=int(doc["bytes"]),
                new_bytes=int(doc["new_bytes"]),
            )
            return cls(backup, str(doc["source"]), int(doc["source_manifest_id"]), objects)
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"backup record {name!r} does not decode: {e}", object=name) from e


@dataclass(frozen=True)
class ObjectProblem:
    """One object of a backup that failed its check: `problem` is "missing", "size" or
    "checksum"."""

    path: str
    problem: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    backup_id: uuid.UUID
    objects: int
    bytes: int
    problems: tuple[ObjectProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _chunks(store: Store, path: str, size: int, hasher: Any, progress: Progress) -> Iterator[bytes]:
    for start in range(0, size, CHUNK):
        (buf,) = store.get_ranges(path, [(start, min(size, start + CHUNK))])
        data = bytes(buf)
        hasher.update(data)
        progress.advance(nbytes=len(data))
        yield data


def copy_object(
    src: Store, src_path: str, dst: Store, dst_path: str, size: int, progress: Progress = SILENT
) -> str:
    """Copies `size` bytes from `src_path` to `dst_path`; returns their SHA-256 (hex).
    Reports the bytes to `progress` as they are read (a retried upload reports again)."""
    if size <= CHUNK:
        data = src.get(src_path) if size else b""
        if data is None:
            raise DataError(f"object {src_path!r} is missing from the source", object=src_path)
        if len(data) != size:
            raise DataError(
                f"object {src_path!r} has {len(data)} bytes, listed with {size}", object=src_path
            )
        dst.put(dst_path, data)
        progress.advance(nbytes=size)
        return hashlib.sha256(data).hexdigest()
    hashers: list[Any] = []

    def fresh() -> Iterator[bytes]:
        hashers.append(hashlib.sha256())  # a retried upload hashes from the start again
        return _chunks(src, src_path, size, hashers[-1], progress)

    dst.put_chunks(dst_path, fresh)
    return str(hashers[-1].hexdigest())


def hash_object(store: Store, path: str, size: int, progress: Progress = SILENT) -> str:
    """The SHA-256 (hex) of the first `size` bytes of `path`, read in chunks."""
    hasher = hashlib.sha256()
    for _ in _chunks(store, path, size, hasher, progress):
        pass
    return hasher.hexdigest()


def check_object(
    store: Store,
    path: str,
    rel: str,
    want: ObjectEntry,
    sizes: dict[str, int],
    progress: Progress = SILENT,
) -> ObjectProblem | None:
    """Compares `path` (listed sizes in `sizes`) with its record entry; None when it matches."""
    size = sizes.get(path)
    if size is None:
        return ObjectProblem(rel, "missing", f"{path!r} is not in the backup store")
    if size != want.size:
        return ObjectProblem(rel, "size", f"{path!r} has {size} bytes, recorded {want.size}")
    got = hash_object(store, path, size, progress)
    if got != want.sha256:
        return ObjectProblem(rel, "checksum", f"{path!r} has SHA-256 {got}, recorded {want.sha256}")
    return None


def in_parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`fn` over `items`, `WORKERS` at a time, results in order; the first error cancels
    the calls not started and is raised once the running ones have ended."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="slatedb-backup") as pool:
        futures = [pool.submit(fn, i) for i in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:  # an interrupted copy stops soon, not after every other object
                f.cancel()
            raise


def sizes_under(store: Store, folders: set[str]) -> dict[str, int]:
    """Listed sizes of every object under `folders` (one listing each)."""
    return {m.path: m.size for f in sorted(folders) for m in store.list(f)}
