"""A database bulk-loaded from numpy and Arrow arrays here opens in the real SlateDB 0.17.0:
rows in L0 SSTs, a sorted run and the WAL read back the same there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from obstore.store import LocalStore

from slatedb_py import Db
from slatedb_py.config import DbOptions
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")


def test_a_bulk_loaded_database_opens_in_0_17(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    opts = DbOptions(flush_interval=None, l0_sst_size_bytes=64 << 10, max_unflushed_bytes=1 << 20)
    n = 30_000
    keys = np.array([b"user:%08d" % i for i in range(n)], dtype="S13")
    values = np.frombuffer(bytes(range(256)) * (n * 24 // 256 + 1), np.uint8)[: n * 24]
    values = values.reshape(n, 24)
    with Db.open(path, ROOT, opts) as db:
        db.put_many(keys, values, atomic=False)  # several memtables: L0 SSTs
        db.compact()  # a sorted run
        db.delete_many(pa.array(keys[::10].tolist(), pa.binary()))
        db.put_many(pa.array([b"user:%08d" % i for i in range(5)]), [b"new"] * 5)
        db.flush()  # the last writes only in the WAL
        want = dict(db.scan())
    assert len(want) == n - n // 10 + 1
    reader = Official(path, reader=True)
    try:
        assert reader.scan() == want
    finally:
        reader.close()
