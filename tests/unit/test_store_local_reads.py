"""`Store.get` in a local folder reads files directly (`Store.local_root`); the outcome of
every case is the one obstore's LocalStore gives, which a `Store` subclass (no direct reads)
still goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py.errors import UnavailableError
from slatedb_py.store import Store


class ThroughObstore(Store):
    """A subclass: every read goes to obstore."""


def no_sleep(_s: float) -> None:
    pass


@pytest.fixture(params=[Store, ThroughObstore], ids=["direct", "obstore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    (tmp_path / "db" / "wal").mkdir(parents=True)
    (tmp_path / "db" / "wal" / "00000000000000000001.sst").write_bytes(b"rows")
    (tmp_path / "db" / "file").write_bytes(b"x")
    (tmp_path / "odd name").mkdir()
    (tmp_path / "odd name" / "k").write_bytes(b"odd")
    s: Store = request.param(LocalStore(str(tmp_path)), max_retries=2, sleep=no_sleep)
    assert (s.local_root is None) == (request.param is ThroughObstore)
    return s


def test_store_get_reads_a_local_file_as_obstore_does(store: Store) -> None:
    assert store.get("db/wal/00000000000000000001.sst") == b"rows"
    assert store.get("odd name/k") == b"odd"  # not a plain key: through obstore either way
    assert store.get("db/wal/00000000000000000002.sst") is None
    assert store.get("db/wal") is None  # a folder is no object
    with pytest.raises(UnavailableError, match="after 3 attempts"):
        store.get("db/file/k")  # a file where a folder should be: a failed read, retried
