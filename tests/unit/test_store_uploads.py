"""`Store.upload`: an object written in pieces is one PUT below the part size and a multipart
upload above it, appears only once complete, leaves nothing when the writing fails, and is
counted request by request. On every store kind (S3: the moto server)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import LocalStore

from slatedb_py.errors import InvalidArgumentError
from slatedb_py.store import Store
from tests.support import hidden_uploads

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part


def requests(s: Store) -> dict[str, int]:
    snap = s.metrics.snapshot()
    return {k: int(snap[f"store_{k}_requests_total"]) for k in ("put", "put_part", "multipart")} | {
        "written": int(snap["store_written_bytes_total"])
    }


def parts_received(s: Store, path: str) -> int | None:
    """How many parts the store put the object together from, from its ETag (S3 gives a
    multipart upload's object the ETag `<md5 of the part md5s>-<parts>`); None elsewhere."""
    etag = obstore.head(s.inner, path).get("e_tag")
    if type(s.inner).__name__ != "S3Store" or etag is None:
        return None
    tail = etag.strip('"').rpartition("-")[2]
    return int(tail) if tail.isdigit() and "-" in etag else 1


def test_an_upload_below_the_part_size_is_one_put(store: Any) -> None:
    s = Store(store, part_size=PART)
    pieces = [os.urandom(100_000) for _ in range(3)]
    with s.upload("a/small") as up:
        for p in pieces:
            up.write(p)
        assert s.get("a/small") is None and s.list("a") == []
    assert s.get("a/small") == b"".join(pieces)
    assert requests(s) == {"put": 1, "put_part": 0, "multipart": 0, "written": 300_000}
    assert parts_received(s, "a/small") in (None, 1)


def test_a_larger_upload_is_multipart_and_appears_only_once_complete(store: Any) -> None:
    s = Store(store, part_size=PART)
    pieces = [os.urandom(PART), os.urandom(PART), os.urandom(MiB)]
    with s.upload("a/large") as up:
        for p in pieces:
            up.write(p)
            assert s.get("a/large") is None and s.list("a") == []
    assert s.get("a/large") == b"".join(pieces)
    # Create, three parts (the last one short), complete; counted by folder too.
    assert requests(s) == {"put": 0, "put_part": 3, "multipart": 2, "written": 11 * MiB}
    snap = s.metrics.snapshot()
    assert snap["store_requests_other_put_part_total"] == 3
    assert snap["store_requests_other_multipart_total"] == 2
    assert parts_received(s, "a/large") in (None, 3)
    assert hidden_uploads(store) == []


def test_pieces_of_any_size_make_parts_of_the_part_size(store: Any) -> None:
    s = Store(store, part_size=PART)
    data = os.urandom(2 * PART + 12345)
    with s.upload("a/odd") as up:
        for at in range(0, len(data), 3 * MiB + 7):
            up.write(data[at : at + 3 * MiB + 7])
    assert s.get("a/odd") == data
    assert requests(s)["put_part"] == 3 and requests(s)["multipart"] == 2
    assert parts_received(s, "a/odd") in (None, 3)


@pytest.mark.parametrize("size", [MiB, 2 * PART + MiB])
def test_an_upload_whose_writer_fails_is_aborted_and_leaves_nothing(store: Any, size: int) -> None:
    s = Store(store, part_size=PART)
    with pytest.raises(RuntimeError, match="the merge broke"), s.upload("a/broken") as up:
        for at in range(0, size, MiB):
            up.write(os.urandom(min(MiB, size - at)))
        raise RuntimeError("the merge broke")
    assert s.get("a/broken") is None and s.list("a") == []
    assert hidden_uploads(store) == []
    # Below a part nothing was sent; above, the upload was created and aborted.
    multipart = 2 if size >= PART else 0
    assert requests(s) == {"put": 0, "put_part": size // PART, "multipart": multipart} | {
        "written": size
    }


def test_put_chunks_goes_through_an_upload(store: Any) -> None:
    s = Store(store, part_size=PART)
    chunks = [os.urandom(2 * MiB) for _ in range(4)]
    s.put_chunks("a/chunked", lambda: iter(chunks))
    assert s.get("a/chunked") == b"".join(chunks)
    assert requests(s)["put_part"] == 2 and requests(s)["multipart"] == 2


def test_part_size_must_be_positive() -> None:
    with pytest.raises(InvalidArgumentError, match="part_size"):
        Store(LocalStore("/tmp"), part_size=0)


def test_leftovers_are_a_local_folders_staging_files(tmp_path: Path) -> None:
    s = Store(LocalStore(tmp_path))
    (tmp_path / "db" / "compacted").mkdir(parents=True)
    (tmp_path / "db" / "compacted" / "01J0000000000000000000000.sst#3").write_bytes(b"x" * 10)
    (tmp_path / "db" / "compacted" / "01J0000000000000000000001.sst").write_bytes(b"y")
    (tmp_path / "db" / "compacted" / "notes#draft").write_bytes(b"z")
    [left] = s.leftovers("db/compacted")
    assert s.leftovers("db/compacted/") == [left]  # the collector's folder names end in "/"
    assert left.path == "db/compacted/01J0000000000000000000000.sst#3" and left.size == 10
    assert abs((datetime.now(UTC) - left.last_modified).total_seconds()) < 60
    # obstore lists no staging file, and refuses to delete one: the store removes it itself.
    assert sorted(m.path for m in s.list("db/compacted")) == [
        "db/compacted/01J0000000000000000000001.sst",
        "db/compacted/notes#draft",
    ]
    s.delete_leftover(left.path)
    assert s.leftovers("db/compacted") == [] and s.leftovers("db/missing") == []
    for bad in ("db/compacted/01J0000000000000000000001.sst", "db/../x.sst#1"):
        with pytest.raises(InvalidArgumentError):
            s.delete_leftover(bad)
    assert (tmp_path / "db" / "compacted" / "01J0000000000000000000001.sst").exists()


def test_other_stores_have_no_leftovers(store: Any) -> None:
    s = Store(store)
    s.put("db/compacted/x.sst", b"x")
    if not isinstance(store, LocalStore):
        assert s.leftovers("db/compacted") == []
        with pytest.raises(InvalidArgumentError):
            s.delete_leftover("db/compacted/x.sst#1")
