"""`DbOptions(disk_cache_dir=...)` / `ReaderOptions(disk_cache_dir=...)`: SST bytes a remote
read fetched once are served from local disk by later handles (after a restart too), and a
local folder never uses it (its files are read directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from tests.support import CountingSstReads


def _load(store: Any) -> dict[bytes, bytes]:
    rows = {b"key%06d" % i: b"v%06d" % i * 20 for i in range(20_000)}
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, gc_enabled=False, block_cache_bytes=0
    )
    with Db.open("db", store, opts) as db:
        for i, (k, v) in enumerate(rows.items()):
            db.put(k, v, await_durable=False)
            if i % 7000 == 6999:
                db.flush_memtable()
    return rows


def test_a_second_reader_reads_sst_bytes_from_the_disk_cache(tmp_path: Path) -> None:
    inner = MemoryStore()
    rows = _load(inner)
    keys = list(rows)[::97]
    opts = ReaderOptions(
        manifest_poll_interval=None, disk_cache_dir=tmp_path / "cache", block_cache_bytes=0
    )
    first = CountingSstReads(inner)
    with DbReader.open("db", first, options=opts) as r:
        assert dict(r.scan()) == rows
        assert r.get_many(keys) == [rows[k] for k in keys]
    assert first.requests > 0
    # Same cache folder, a new handle (as after a restart): the SST bytes come from disk.
    second = CountingSstReads(inner)
    with DbReader.open("db", second, options=opts) as r:
        assert dict(r.scan()) == rows
        assert r.get_many(keys) == [rows[k] for k in keys]
        assert [r.get(k) for k in keys] == [rows[k] for k in keys]
    assert second.requests == 0
    # A bounded cache still answers correctly; it just fetches again what it evicted.
    small = ReaderOptions(
        manifest_poll_interval=None,
        disk_cache_dir=tmp_path / "small",
        disk_cache_bytes=64 * 1024,
        block_cache_bytes=0,
    )
    with DbReader.open("db", CountingSstReads(inner), options=small) as r:
        assert dict(r.scan()) == rows
    held = sum(p.stat().st_size for p in (tmp_path / "small").rglob("*.blk"))
    assert held <= 64 * 1024


def test_a_local_folder_never_uses_the_disk_cache(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    store = LocalStore(str(tmp_path / "data"))
    rows = _load(store)
    opts = DbOptions(disk_cache_dir=tmp_path / "cache", flush_interval=None)
    with Db.open("db", store, opts) as db:
        assert dict(db.scan()) == rows
    assert not list((tmp_path / "cache").rglob("*.blk"))
