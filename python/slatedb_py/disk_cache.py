"""An optional on-disk cache of byte ranges of immutable objects (SlateDB's object-store cache).

Why: against a remote store (S3, GCS) every block read is a network round trip and a billed
request. SST files never change once written and their names are never reused, so a range read
once can be served from local disk for as long as disk space allows, including after a restart.
The driver that serves the engine's byte requests asks :meth:`DiskCache.get` /
:meth:`DiskCache.get_tail` first and hands what it fetched to :meth:`DiskCache.put` /
:meth:`DiskCache.put_tail`.

Guarantees:

* Never wrong bytes. Each entry is one file holding its key and a crc32 over key and data; an
  entry that is truncated, corrupted or belongs to another key (hash collision) is a miss and is
  deleted. Writes go to a temp file in the same directory and are published with ``os.replace``,
  so readers see a whole entry or none; a torn file left by a crash fails the checksum, which is
  why no fsync is needed. Temp files are never read and stale ones are removed at startup.
* Never a failed read. ``OSError`` (disk full, permissions, a file deleted by someone else) on
  ``put`` skips caching and on ``get`` is a miss.
* Bounded: the bytes this instance knows of stay <= ``max_bytes``, plus the entries being written
  at that moment; least recently used entries are evicted first. Use order lives in memory and is
  seeded at startup from file mtimes (hits refresh the mtime at most once a minute per entry).
  Sizes are file lengths (not filesystem blocks). Several processes may share one root safely,
  but each enforces the bound only over the entries it wrote, read or found at startup, so the
  directory may hold up to ``max_bytes`` per process sharing it (best effort).
* Persistent and thread-safe: a new instance on the same root finds earlier entries; one lock
  guards the bookkeeping while file I/O runs outside it.

The key is (namespace, object path, range); ``namespace`` separates stores sharing a root. The
cache trusts that an object path never names different bytes later: cache only immutable objects
(SSTs), never the manifest. The root should be the cache's own: entry files found there count
against the bound and may be evicted. Layout: ``root/<2 hex>/<sha256 of key>.blk``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import threading
import zlib
from collections import OrderedDict
from typing import NamedTuple

from slatedb_py.clock import file_time_s
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

# magic, crc32, key length, object size (-1 for a range entry), data length.
_HEADER = struct.Struct("<4sIIqQ")
_MAGIC = b"SDC1"
_TOUCH_EVERY_S = 60.0  # refresh a hit entry's mtime at most this often: hits stay cheap
_STALE_TMP_S = 3600.0  # a temp file this old is a crash leftover, not another writer's work


class _Entry(NamedTuple):
    size: int  # bytes of the file
    touched: float  # when its mtime was last set (by the write or a hit's refresh)
    seq: int  # which write of the file this is, to tell a republished file from the one read


class DiskCache:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int, *, namespace: str = ""):
        if not isinstance(root, (str, os.PathLike)):
            raise InvalidTypeError(f"root must be a str or os.PathLike, got {root!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            raise InvalidTypeError(f"max_bytes must be an int, got {max_bytes!r}")
        if max_bytes <= 0:
            raise InvalidArgumentError(f"max_bytes must be > 0, got {max_bytes!r}")
        if not isinstance(namespace, str):
            raise InvalidTypeError(f"namespace must be a str, got {namespace!r}")
        self.root = os.fspath(root)
        self.max_bytes = max_bytes
        self.namespace = namespace
        self._lock = threading.Lock()
        # entry file -> _Entry; order is least recently used first.
        self._lru: OrderedDict[str, _Entry] = OrderedDict()
        self._seq = 0
        self._bytes = 0
        self._stats = {"hits": 0, "misses": 0, "evictions": 0}
        self._scan()

    def _scan(self) -> None:
        """Index the entries already on disk, oldest mtime first (one stat per file)."""
        found: list[tuple[float, str, int]] = []
        now = file_time_s()
        try:
            shards = [e.path for e in os.scandir(self.root) if e.is_dir() and len(e.name) == 2]
        except OSError:
            return  # no usable root: every put and get will just fail softly
        for shard in shards:
            try:
                entries = list(os.scandir(shard))
            except OSError:
                continue
            for e in entries:
                name = e.name
                try:  # another process may delete a file between the listing and the stat
                    st = e.stat()
                except OSError:
                    continue
                if len(name) == 68 and name.endswith(".blk"):  # sha256 hex + ".blk"
                    found.append((st.st_mtime, e.path, st.st_size))
                elif name.endswith(".tmp") and now - st.st_mtime > _STALE_TMP_S:
                    _unlink(e.path)
        found.sort(key=lambda f: f[0])  # oldest first: seeds the LRU order
        with self._lock:
            for mtime, path, size in found:
                self._lru[path] = _Entry(size, mtime, self._next_seq())
                self._bytes += size
            victims = self._evict_locked()
        _unlink_all(victims)

    def _file(self, key: bytes) -> str:
        h = hashlib.sha256(key).hexdigest()
        return os.path.join(self.root, h[:2], h + ".blk")

    def _range_key(self, path: str, start: int, end: int) -> bytes:
        if not (0 <= start <= end):
            raise InvalidArgumentError(f"bad range [{start}, {end}) of {path!r}")
        return json.dumps(["range", self.namespace, path, start, end]).encode()

    def _tail_key(self, path: str) -> bytes:
        return json.dumps(["tail", self.namespace, path]).encode()

    def get(self, path: str, start: int, end: int) -> bytes | None:
        """The bytes [start, end) of object ``path`` if cached, else None."""
        hit = self._read(self._range_key(path, start, end), 0)
        return None if hit is None else hit[0]

    def put(self, path: str, start: int, end: int, data: bytes | bytearray | memoryview) -> None:
        """Cache what the store returned for [start, end) of object ``path`` (stored as given,
        so a range cut short at the object's end is served as the store served it)."""
        key = self._range_key(path, start, end)
        self._write(key, memoryview(data).cast("B"), -1, replace_smaller=False)

    def get_tail(self, path: str, length: int) -> tuple[bytes, int] | None:
        """The last ``length`` bytes of ``path`` and its size, if a tail at least that long is
        cached."""
        if length < 0:
            raise InvalidArgumentError(f"tail length must be >= 0, got {length!r}")
        hit = self._read(self._tail_key(path), length)
        if hit is None:
            return None
        data, size = hit
        return data[max(0, len(data) - length) :], size

    def put_tail(self, path: str, data: bytes | bytearray | memoryview, object_size: int) -> None:
        """Cache the last ``len(data)`` bytes of ``path``, whose size is ``object_size``. A
        longer tail this instance knows of is kept: it serves every request this one would."""
        view = memoryview(data).cast("B")
        if not (0 <= view.nbytes <= object_size):
            raise InvalidArgumentError(
                f"tail of {view.nbytes} bytes of a {object_size}-byte object"
            )
        self._write(self._tail_key(path), view, object_size, replace_smaller=True)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._stats, "bytes": self._bytes, "entries": len(self._lru)}

    def _read(self, key: bytes, min_len: int) -> tuple[bytes, int] | None:
        file = self._file(key)
        with self._lock:
            before = self._seq_of_locked(file)
        found = False
        try:
            with open(file, "rb") as f:
                found = True
                buf = f.read()
            entry = _decode(buf, key)
        except OSError:  # absent, deleted by another process, unreadable: all just a miss
            buf, entry = b"", None
        bad = False
        now = file_time_s()
        victims: list[str] = []
        touch = False
        with self._lock:
            if entry is None:
                self._stats["misses"] += 1
                # Forget the entry only if no put republished it while we read: forgetting a
                # fresh file would leave bytes on disk that the bound no longer counts.
                bad = self._seq_of_locked(file) == before
                if bad:
                    self._forget_locked(file)
            elif len(entry[0]) < min_len and not (entry[1] >= 0 and len(entry[0]) == entry[1]):
                # A valid tail, just shorter than asked for (a whole object serves any length).
                self._stats["misses"] += 1
                return None
            else:
                self._stats["hits"] += 1
                # Not indexed if another process wrote it or it was evicted while we read it.
                old = self._lru.pop(file, None)
                self._bytes += len(buf) - (old.size if old is not None else 0)
                touched = old.touched if old is not None else 0.0
                touch = now - touched > _TOUCH_EVERY_S
                seq = old.seq if old is not None else self._next_seq()
                self._lru[file] = _Entry(len(buf), now if touch else touched, seq)
                victims = self._evict_locked()
        if entry is None:
            if bad and found:
                _unlink(file)  # corrupt, truncated or a hash collision: never serve it again
            return None
        if touch:
            try:  # so the LRU order seeded at the next startup reflects use, not just writes
                os.utime(file)
            except OSError:
                pass
        _unlink_all(victims)
        return entry

    def _write(self, key: bytes, data: memoryview, size: int, *, replace_smaller: bool) -> None:
        file = self._file(key)
        total = _HEADER.size + len(key) + data.nbytes
        if total > self.max_bytes:
            return  # would evict everything and still not fit
        with self._lock:
            known = self._lru.get(file)
            if known is not None and (not replace_smaller or known.size >= total):
                return  # immutable objects: what is cached is already as good
        meta = struct.pack("<IqQ", len(key), size, data.nbytes)
        crc = zlib.crc32(data, zlib.crc32(key, zlib.crc32(meta)))
        tmp = f"{file}.{secrets.token_hex(6)}.tmp"
        try:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_HEADER.pack(_MAGIC, crc, len(key), size, data.nbytes))
                f.write(key)
                f.write(data)
            os.replace(tmp, file)
        except OSError:  # disk full, no permission: skip caching, the read goes on
            _unlink(tmp)
            return
        with self._lock:
            self._forget_locked(file)
            self._lru[file] = _Entry(total, file_time_s(), self._next_seq())
            self._bytes += total
            victims = self._evict_locked()
        _unlink_all(victims)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _seq_of_locked(self, file: str) -> int:
        entry = self._lru.get(file)
        return 0 if entry is None else entry.seq

    def _forget_locked(self, file: str) -> None:
        old = self._lru.pop(file, None)
        if old is not None:
            self._bytes -= old.size

    def _evict_locked(self) -> list[str]:
        """Drop least recently used entries until within the bound; the caller unlinks them
        after releasing the lock."""
        victims: list[str] = []
        while self._bytes > self.max_bytes and self._lru:
            file, entry = self._lru.popitem(last=False)
            self._bytes -= entry.size
            self._stats["evictions"] += 1
            victims.append(file)
        return victims


def _decode(buf: bytes, key: bytes) -> tuple[bytes, int] | None:
    """(data, object size) of an entry file, or None unless it is whole and is ``key``'s."""
    if len(buf) < _HEADER.size:
        return None
    magic, crc, key_len, size, data_len = _HEADER.unpack_from(buf)
    if magic != _MAGIC or _HEADER.size + key_len + data_len != len(buf):
        return None
    body = memoryview(buf)[_HEADER.size :]
    meta = struct.pack("<IqQ", key_len, size, data_len)
    if zlib.crc32(body, zlib.crc32(meta)) != crc or body[:key_len] != key:
        return None
    return bytes(body[key_len:]), size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        _unlink(path)
