"""A store that fails mid-write: errors are clear, nothing acknowledged is lost, and the writer
recovers once the store does."""

from __future__ import annotations

from typing import Any

import pytest

from slatedb_py import Db
from slatedb_py.config import DbOptions
from slatedb_py.errors import UnavailableError
from slatedb_py.store import Store


class FlakyStore(Store):
    """Fails the WAL uploads while `broken` is set, after the store's own retries."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, max_retries=1, base_delay_s=0.001)
        self.broken = False

    def put_if_absent(self, path: str, data: bytes) -> bool:
        if self.broken and "/wal/" in path:
            raise UnavailableError(f"put-if-absent {path!r} failed: injected fault")
        return super().put_if_absent(path, data)


def test_failed_wal_uploads_are_retried_and_lose_nothing(store) -> None:
    flaky = FlakyStore(store)
    db = Db.open("db", flaky, DbOptions(flush_interval=None))
    acked = {}
    for i in range(10):
        db.put(b"before%d" % i, b"v")
        acked[b"before%d" % i] = b"v"
    flaky.broken = True
    with pytest.raises(UnavailableError, match="injected"):
        db.put(b"during", b"maybe")
    with pytest.raises(UnavailableError):
        db.flush()
    flaky.broken = False
    db.put(b"after", b"v")  # uploads the retained chunk first, then this one
    acked[b"after"] = b"v"
    db.close()
    with Db.open("db", store) as again:
        got = dict(again.scan())
    assert all(got.get(k) == v for k, v in acked.items())
    # The failed write was never acknowledged, but it was not dropped either.
    assert got.get(b"during") == b"maybe"
