"""Databases shared both ways with the real SlateDB 0.17.0 (its Python wheel, in-process)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch
from tests.interop.golden import GOLDEN, NAMES, Fixture
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
PLAIN = [n for n in NAMES if n != "merge"]  # needs its operator: test_interop_merge.py


def expected_live(fx: Fixture) -> dict[bytes, bytes]:
    expired = set(fx.expected["expired_keys"])
    return {
        bytes.fromhex(k): bytes.fromhex(v)
        for k, v in fx.expected["keys"].items()
        if v is not None and k not in expired
    }


@pytest.mark.parametrize("name", PLAIN)
def test_0_17_database_reads_exactly_then_both_keep_writing(name: str, tmp_path: Path) -> None:
    fx = Fixture(name)
    path = str(tmp_path / "db")
    shutil.copytree(GOLDEN / name / "db", path)
    model = expected_live(fx)

    db = Db.open(path, ROOT)
    for key_hex in fx.expected["keys"]:
        key = bytes.fromhex(key_hex)
        assert db.get(key) == model.get(key), key
    assert dict(db.scan()) == model
    # Write more: puts, overwrites, deletes, a batch; part flushed to L0, part left in the WAL.
    keys = sorted(model)
    for i, k in enumerate(keys[:200]):
        db.put(k, b"rewritten-%d" % i, await_durable=False)
        model[k] = b"rewritten-%d" % i
    for k in keys[200:260]:
        db.delete(k, await_durable=False)
        model.pop(k)
    db.flush_memtable()
    batch = WriteBatch().put(b"slatedb_py/new", b"1").delete(keys[300])
    db.write(batch)
    model[b"slatedb_py/new"] = b"1"
    model.pop(keys[300])
    db.close()

    reader = Official(path, reader=True)
    assert reader.scan() == model
    reader.close()

    official = Official(path)
    assert official.scan() == model
    official.put(b"official/after", b"2")
    official.delete(keys[400])
    model[b"official/after"] = b"2"
    model.pop(keys[400])
    official.close(keep_wal_tail=True)

    with Db.open(path, ROOT) as again:
        assert dict(again.scan()) == model


def test_database_created_by_slatedb_py_opens_in_0_17(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh")
    model = {}
    with Db.open(path, ROOT) as db:
        for i in range(3000):
            k, v = b"user:%06d" % (i * 7919 % 100_000), b"v%d" % i
            db.put(k, v, await_durable=False)
            model[k] = v
        db.flush_memtable()  # an L0 SST with a bloom filter (>= 1000 rows)
        for k in sorted(model)[::5]:
            db.delete(k, await_durable=False)
            del model[k]
        db.flush()
    reader = Official(path, reader=True)
    assert reader.scan() == model
    assert all(reader.get(k) == v for k, v in list(model.items())[::50])
    reader.close()
    official = Official(path)
    assert official.scan() == model
    official.put(b"zz", b"from 0.17")
    official.close()
    with Db.open(path, ROOT) as db:
        assert db.get(b"zz") == b"from 0.17"
        assert len(list(db.scan())) == len(model) + 1


def test_unflushed_wal_tail_written_by_slatedb_py_replays_in_0_17(tmp_path: Path) -> None:
    path = str(tmp_path / "tail")
    db = Db.open(path, ROOT)
    db.put(b"a", b"1")
    db.put(b"b", b"2")
    db.delete(b"a")
    # Abandon the writer without closing: only the WAL holds these rows.
    db._stop.set()
    time.sleep(0.05)
    official = Official(path, reader=True)
    assert official.scan() == {b"b": b"2"}
    official.close()


def test_database_compacted_by_slatedb_py_opens_in_0_17_and_back(tmp_path: Path) -> None:
    from slatedb_py.config import DbOptions

    path = str(tmp_path / "compacted")
    opts = DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
    model = {}
    with Db.open(path, ROOT, opts) as db:
        for r in range(6):
            for i in range(0, 2000, r + 1):
                k, v = b"key%05d" % i, b"r%d-%d" % (r, i)
                db.put(k, v, await_durable=False)
                model[k] = v
            db.flush_memtable()
        for k in sorted(model)[::9]:
            db.delete(k, await_durable=False)
            del model[k]
        db.compact()  # one sorted run, tombstones gone
        db.put(b"after-compaction", b"l0")
        model[b"after-compaction"] = b"l0"
    official = Official(path)
    assert official.scan() == model
    official.put(b"from-0.17", b"1")
    model[b"from-0.17"] = b"1"
    official.flush_memtable()
    official.close()
    with Db.open(path, ROOT, opts) as db:
        db.compact()
        assert dict(db.scan()) == model
    reader = Official(path, reader=True)
    assert reader.scan() == model
    reader.close()


def test_0_17_compactor_compacts_a_slatedb_py_database(tmp_path: Path) -> None:
    import asyncio
    import json as _json

    import slatedb.uniffi as u

    from slatedb_py.config import DbOptions

    path = str(tmp_path / "db")
    model = {}
    # Our compactor ran first: the compactor epoch and a .compactions state are ours.
    with Db.open(
        path, ROOT, DbOptions(flush_interval=None, gc_enabled=False, compaction_min_sources=2)
    ) as db:
        for r in range(6):
            for i in range(r, 3000, 3):
                model[b"k%05d" % i] = b"r%d" % r
                db.put(b"k%05d" % i, b"r%d" % r, await_durable=False)
            db.flush_memtable()
        db.compact()
        for r in range(4):
            db.put(b"late%d" % r, b"x")
            model[b"late%d" % r] = b"x"
            db.flush_memtable()
    loop = asyncio.new_event_loop()
    try:
        s = u.Settings.default()
        s.set("garbage_collector_options", "null")
        s.set("compactor_options.poll_interval", _json.dumps("50ms"))
        s.set(
            "compactor_options.scheduler_options",
            _json.dumps({"min_compaction_sources": "2", "max_compaction_sources": "8"}),
        )
        b = u.DbBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///"))
        b.with_settings(s)
        db17 = loop.run_until_complete(b.build())
        deadline = time.monotonic() + 30
        adm = u.AdminBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///")).build()
        while time.monotonic() < deadline:
            m = adm.read_manifest(None)
            m = loop.run_until_complete(m) if asyncio.iscoroutine(m) else m
            if not m.l0:
                break
            time.sleep(0.05)
        assert not m.l0, "0.17.0's compactor did not drain L0"
        loop.run_until_complete(db17.shutdown())
    finally:
        loop.close()
    with Db.open(path, ROOT, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        assert dict(db.scan()) == model
