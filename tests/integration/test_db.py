"""The database on real obstore stores (memory and a local folder)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from slatedb_py import Db, WriteBatch
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions
from slatedb_py.errors import (
    ClosedError,
    FencedError,
    InvalidArgumentError,
    InvalidTypeError,
)

FAST = DbOptions(flush_interval=timedelta(milliseconds=10))


def test_put_get_delete_scan_and_reopen(store) -> None:
    db = Db.open_with_opts("/my/test/db", FAST, store)
    for i in range(200):
        db.put(b"k%03d" % i, b"v%d" % i, await_durable=False)
    db.delete(b"k005")
    db.flush()
    assert db.get(b"k001") == b"v1"
    assert db.get(b"k005") is None
    assert [k for k, _ in db.scan(b"k010", b"k013")] == [b"k010", b"k011", b"k012"]
    assert [k for k, _ in db.scan_prefix(b"k19")] == [b"k%03d" % i for i in range(190, 200)]
    assert list(db.scan(b"k2", b"k1")) == []
    db.flush_memtable()
    db.put(b"k000", b"new")
    db.close()
    with Db.open("/my/test/db", store) as again:
        assert again.get(b"k000") == b"new"
        assert again.get(b"k005") is None
        assert len(list(again.scan())) == 199


def test_write_batch_is_atomic_with_one_seq(store) -> None:
    db = Db.open("db", store, FAST)
    db.put(b"b", b"old")
    batch = WriteBatch().put(b"a", b"1").delete(b"b").put(b"c", b"3")
    db.write(batch)
    assert dict(db.scan()) == {b"a": b"1", b"c": b"3"}
    db.close()


def test_ttl_rows_read_as_absent_once_expired(store) -> None:
    clock = ManualClock()
    db = Db.open("db", store, FAST, clock=clock)
    db.put(b"short", b"x", ttl=timedelta(seconds=1))
    db.put(b"long", b"y", ttl=timedelta(hours=1))
    assert db.get(b"short") == b"x"
    clock.advance(1000)
    assert db.get(b"short") is None
    assert dict(db.scan()) == {b"long": b"y"}
    db.flush_memtable()
    assert db.get(b"short") is None and db.get(b"long") == b"y"
    db.close()


def test_l0_flush_by_size_and_reads_across_l0(store) -> None:
    opts = DbOptions(flush_interval=None, l0_sst_size_bytes=8 * 1024, compactor_enabled=False)
    db = Db.open("db", store, opts)
    model = {}
    for i in range(2000):
        k, v = b"key%05d" % (i * 7 % 2000), b"value-%d" % i
        db.put(k, v, await_durable=False)
        model[k] = v
    db.flush_memtable()
    assert len(db.manifest()[1].l0) > 3
    for k in list(model)[::37]:
        assert db.get(k) == model[k]
    assert dict(db.scan()) == model
    db.close()


def test_concurrent_durable_writers_share_uploads(store) -> None:
    db = Db.open("db", store, DbOptions(flush_interval=None))
    errors = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                db.put(b"t%d-%d" % (t, i), b"x")
        except Exception as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(list(db.scan())) == 400
    db.close()


def test_older_writer_is_fenced_and_newer_loses_nothing(store) -> None:
    old = Db.open("db", store, DbOptions(flush_interval=None))
    old.put(b"a", b"from-old")
    new = Db.open("db", store, DbOptions(flush_interval=None))
    assert new.get(b"a") == b"from-old"
    with pytest.raises(FencedError):
        old.put(b"b", b"lost")
    with pytest.raises(ClosedError):
        old.put(b"c", b"refused")
    new.put(b"d", b"kept")
    new.close()
    old.close()
    with Db.open("db", store) as db:
        assert db.get(b"a") == b"from-old" and db.get(b"d") == b"kept"
        assert db.get(b"b") is None and db.get(b"c") is None


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda db: db.put(b"", b"v"), InvalidArgumentError),
        (lambda db: db.put(b"k" * 65536, b"v"), InvalidArgumentError),
        (lambda db: db.put("k", b"v"), InvalidTypeError),
        (lambda db: db.put(b"k", "v"), InvalidTypeError),
        (lambda db: db.put(b"k", 5), InvalidTypeError),
        (lambda db: db.get(""), InvalidTypeError),
        (lambda db: db.put(b"k", b"v", ttl=5), InvalidTypeError),
        (lambda db: db.put(b"k", b"v", ttl=timedelta(seconds=-1)), InvalidArgumentError),
        (lambda db: db.write([(b"k", b"v")]), InvalidArgumentError),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(store, call, exc) -> None:
    db = Db.open("db", store, FAST)
    db.put(b"k", b"before")
    with pytest.raises(exc):
        call(db)
    assert dict(db.scan()) == {b"k": b"before"}
    db.close()


def test_value_over_u32_limit_is_refused_without_allocating(store) -> None:
    import mmap

    db = Db.open("db", store, FAST)
    # A sparse 4 GiB mapping: its size is known without touching its pages.
    with (
        mmap.mmap(
            -1,
            2**32,
            flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0),
        ) as m,
        pytest.raises(InvalidArgumentError, match="4294967295"),
    ):
        db.put(b"k", memoryview(m))
    assert db.get(b"k") is None
    db.close()


def test_use_after_close(store) -> None:
    db = Db.open("db", store)
    db.close()
    db.close()  # idempotent
    for call in (
        lambda: db.put(b"k", b"v"),
        lambda: db.get(b"k"),
        lambda: list(db.scan()),
        db.flush,
    ):
        with pytest.raises(ClosedError):
            call()


def _objects(store, prefix: str) -> dict[str, bytes]:
    import obstore

    out = {}
    for batch in obstore.list(store, prefix):
        for m in batch:
            out[m["path"]] = bytes(obstore.get(store, m["path"]).bytes())
    return out


def test_truncated_manifest_is_a_clear_error_and_changes_nothing(store) -> None:
    import obstore

    from slatedb_py.errors import DataError

    with Db.open("db", store) as db:
        db.put(b"k", b"v")
    latest = sorted(p for p in _objects(store, "db/manifest"))[-1]
    data = _objects(store, "db/manifest")[latest]
    obstore.put(store, latest, data[: len(data) // 2])
    before = _objects(store, "db")
    with pytest.raises(DataError) as e:
        Db.open("db", store)
    assert latest in str(e.value) and e.value.object == latest
    assert _objects(store, "db") == before


def test_corrupt_sst_block_is_a_clear_error(store) -> None:
    import obstore

    from slatedb_py.errors import DataError

    with Db.open("db", store, DbOptions(flush_interval=None)) as db:
        for i in range(500):
            db.put(b"k%04d" % i, b"v" * 50, await_durable=False)
    sst = next(p for p in _objects(store, "db/compacted"))
    data = bytearray(_objects(store, "db/compacted")[sst])
    data[100] ^= 0xFF
    obstore.put(store, sst, bytes(data))
    db = Db.open("db", store)
    with pytest.raises(DataError) as e:
        db.get(b"k0000")
    assert sst in str(e.value) and "checksum" in str(e.value)
    assert db.get(b"k0499") == b"v" * 50  # other blocks still read
    db.close()
