"""Errors about broken or missing SSTs say which object broke.

A corrupt data block hit by a compaction raised `DataError` with no object (the streaming
job dropped the input's name), and an SST the manifest references but the store no longer
holds raised `UnavailableError` ("retry later"), though no retry can bring it back. Now each
data error names its object (and the block offset when known), and a missing referenced SST
is a `DataError` saying it is missing.
"""

from __future__ import annotations

from typing import Any

import obstore
import pytest

from slatedb_py import Db, DbReader
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import DataError, UnavailableError
from slatedb_py.format import decode_sst

NO_FLUSH = DbOptions(flush_interval=None)


def _ssts(store: Any) -> list[str]:
    return sorted(m["path"] for batch in obstore.list(store, "db/compacted") for m in batch)


def _one_compacted_sst(store: Any) -> tuple[str, bytes]:
    """A database whose rows all live in one compacted SST (a sorted run): its key and bytes."""
    with Db.open("db", store, NO_FLUSH) as db:
        for i in range(2000):
            db.put(b"k%05d" % i, b"v%05d" % i + b"." * 40, await_durable=False)
        db.flush_memtable()
        before = set(_ssts(store))
        db.compact()
    [sst] = set(_ssts(store)) - before  # the old L0 SST stays until garbage collection
    return sst, bytes(obstore.get(store, sst).bytes())


def _assert_names(e: pytest.ExceptionInfo[DataError], sst: str, offset: int | None) -> None:
    assert not isinstance(e.value, UnavailableError)
    assert e.value.object == sst, (e.value.object, str(e.value))
    assert sst in str(e.value)
    if offset is not None:
        assert e.value.offset == offset, (e.value.offset, str(e.value))


def test_corrupt_data_block_is_named_by_get_scan_and_compact(store) -> None:
    sst, data = _one_compacted_sst(store)
    table = decode_sst(data)
    blocks = table.blocks()
    assert len(blocks) > 4
    index = len(blocks) // 2
    start, end, _ = blocks[index]
    key = table.block_rows(index)[0].key
    bad = bytearray(data)
    for i in range(start + (end - start) // 2, start + (end - start) // 2 + 8):
        bad[i] ^= 0xFF
    obstore.put(store, sst, bytes(bad))

    db = Db.open("db", store, NO_FLUSH)
    try:
        with pytest.raises(DataError) as e:
            db.get(key)
        _assert_names(e, sst, start)
        assert "checksum" in str(e.value)
        assert db.get(blocks[0][2] or b"k00000") is not None  # other blocks still read
        with pytest.raises(DataError) as e:
            dict(db.scan())
        _assert_names(e, sst, start)
        with pytest.raises(DataError) as e:
            db.compact()
        _assert_names(e, sst, start)
        assert "checksum" in str(e.value)
    finally:
        db.close()


def _get_scan_compact_name_the_missing(db: Db, sst: str, key: bytes) -> None:
    for call in (lambda: db.get(key), lambda: dict(db.scan()), db.compact):
        with pytest.raises(DataError, match="missing") as e:
            call()
        _assert_names(e, sst, None)


def test_missing_referenced_sst_is_a_data_error_naming_it(store) -> None:
    sst, _ = _one_compacted_sst(store)
    obstore.delete(store, sst)
    db = Db.open("db", store, NO_FLUSH)
    try:
        _get_scan_compact_name_the_missing(db, sst, b"k00010")
    finally:
        db.close()
    reader = DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=None))
    try:
        with pytest.raises(DataError, match="missing") as e:
            reader.get(b"k00010")
        _assert_names(e, sst, None)
    finally:
        reader.close()


def test_sst_deleted_after_it_was_opened_is_a_data_error_naming_it(store) -> None:
    """The SST's tail is already open (read once), then its blocks vanish: the block fetch
    (a ranged GET), not the open, finds it missing. In a local folder the open file stays
    readable after the unlink (POSIX), so reads go on answering, correctly."""
    sst, _ = _one_compacted_sst(store)
    db = Db.open("db", store, NO_FLUSH)
    try:
        assert db.get(b"k00010") is not None  # opens the SST, caches one block
        obstore.delete(store, sst)
        if type(store).__name__ == "LocalStore":
            assert db.get(b"k01500") is not None
            assert len(dict(db.scan())) == len(dict(db.scan(reverse=True))) > 1500
            return
        _get_scan_compact_name_the_missing(db, sst, b"k01500")
    finally:
        db.close()
