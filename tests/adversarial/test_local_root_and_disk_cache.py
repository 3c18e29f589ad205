"""Where SST bytes come from: the native `pread` of a local folder (`Store.local_root`) and
the on-disk cache of a remote store (`disk_cache.py`, `fetch._serve`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from tests.support import CountingSstReads

OPTS = DbOptions(flush_interval=None, compactor_enabled=False)


def test_a_local_store_with_a_relative_root_survives_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed bug: a `LocalStore` made with a relative root stops reading its SSTs after the process
    changes directory: every get and scan raises `MissingObjectError` for SSTs that exist.

    obstore canonicalizes the root when the store is made (its writes keep going to the right
    folder), but `Store.local_root` hands the native core `str(inner.prefix)`, the relative
    path as given, and `Tables` joins SST paths onto it at read time: after `os.chdir` the
    core looks in `<new cwd>/data/db/compacted/...`.

    Expected: `db.get(b"k") == b"v"`, `list(db.scan()) == [(b"k", b"v")]`.
    Actual: `MissingObjectError: object db/compacted/<id>.sst is missing from the store`.

    Root cause: store.py `Store.local_root` (`str(prefix)`, not made absolute) and fetch.rs
    `Tables::slot` (`r.join(path)` against the current directory)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = LocalStore("data")
    with Db.open("db", store, OPTS) as db:
        db.put(b"k", b"v")
        db.flush_memtable()
        assert db.get(b"k") == b"v"
        monkeypatch.chdir(tmp_path / "elsewhere")
        db.put(b"k2", b"v2")
        db.flush_memtable()  # written through obstore: lands in tmp_path/data
        assert list((tmp_path / "data" / "db" / "compacted").iterdir())
        assert db.get(b"k") == b"v"
        assert list(db.scan()) == [(b"k", b"v"), (b"k2", b"v2")]


def test_the_disk_cache_serves_ssts_smaller_than_the_tail_read(tmp_path: Path) -> None:
    """BUG (performance): an SST smaller than the 64 KiB tail an open asks for is never served
    from the disk cache: every new handle fetches it from the store again.

    The open asks for the last 65536 bytes; the store answers with the whole (smaller) object
    and its size, which `put_tail` caches. The next handle's `get_tail(path, 65536)` finds a
    valid entry holding the whole object, but `_read(.., min_len=65536)` counts it as a miss
    ("a valid tail, just shorter than asked for"). Small SSTs (L0s of a lightly written
    database, the last SST of every sorted run) all pay a store round trip per handle.

    Expected: the second reader makes 0 SST requests (as it does for large SSTs,
    tests/integration/test_disk_cache_reads.py).
    Actual: 1 request per small SST per handle; the disk cache's `hits` stays 0.

    Root cause: disk_cache.py `DiskCache.get_tail` / `_read`: a cached tail with
    `len(data) == object size` answers any tail length; `min_len` should be
    `min(length, size)`."""
    inner = MemoryStore()
    with Db.open("db", inner, OPTS) as db:
        for i in range(50):
            db.put(b"k%03d" % i, b"v%03d" % i, await_durable=False)
        db.flush_memtable()
    opts = ReaderOptions(
        manifest_poll_interval=None, disk_cache_dir=tmp_path / "cache", block_cache_bytes=0
    )
    requests = []
    for _ in range(2):
        store = CountingSstReads(inner)
        with DbReader.open("db", store, options=opts) as r:
            assert r.get(b"k010") == b"v010"
            assert len(list(r.scan())) == 50
        requests.append(store.requests)
    assert requests[0] > 0
    assert requests[1] == 0, (
        f"the second reader fetched {requests[1]} times what the disk cache holds"
    )


def test_a_broken_disk_cache_never_changes_an_answer(tmp_path: Path) -> None:
    """Holds: a disk_cache_dir that is a file (or under one), entries with a flipped byte, and
    entries swapped between files (another key's entry under our name) are misses: every read
    answers right."""
    inner = MemoryStore()
    rows = [(b"k%05d" % i, b"v%05d" % i * 10) for i in range(3000)]
    with Db.open("db", inner, OPTS) as db:
        for k, v in rows:
            db.put(k, v, await_durable=False)
        db.flush_memtable()
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    for bad_root in (afile, afile / "sub"):
        o = ReaderOptions(manifest_poll_interval=None, disk_cache_dir=bad_root, block_cache_bytes=0)
        with DbReader.open("db", inner, options=o) as r:
            assert list(r.scan()) == rows and r.get(rows[10][0]) == rows[10][1]
    cache = tmp_path / "cache"
    o = ReaderOptions(manifest_poll_interval=None, disk_cache_dir=cache, block_cache_bytes=0)
    with DbReader.open("db", inner, options=o) as r:
        assert list(r.scan()) == rows
    files = sorted(cache.rglob("*.blk"))
    assert len(files) >= 2
    blobs = [f.read_bytes() for f in files]
    for f, b in zip(files, blobs[1:] + blobs[:1], strict=True):
        f.write_bytes(b)  # every entry now holds another key's bytes
    with DbReader.open("db", inner, options=o) as r:
        assert list(r.scan()) == rows and r.get(rows[10][0]) == rows[10][1]
    for f in cache.rglob("*.blk"):
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    with DbReader.open("db", inner, options=o) as r:
        assert list(r.scan(reverse=True)) == rows[::-1]
        assert r.get_many([k for k, _ in rows[::250]]) == [v for _, v in rows[::250]]
    assert os.path.isfile(afile)
