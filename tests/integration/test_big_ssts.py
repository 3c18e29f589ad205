"""Big SSTs without big memory: an L0 flush or a compaction output larger than the store's part
size goes up as a multipart upload of the pieces the native core hands out while it writes;
a smaller one is one PUT. The SSTs read back whole and as the manifest describes them, and an
output whose merge fails midway is aborted: no SST appears and no upload is left behind."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import obstore
import pytest

from slatedb_py import Db, _native
from slatedb_py.config import DbOptions
from slatedb_py.errors import MergeOperatorError
from slatedb_py.manifest.model import SstTableInfo
from slatedb_py.store import Store
from tests.support import hidden_uploads

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part
ROWS, VALUE = 12_000, 1000  # about 12 MB: an L0 of three parts
OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def requests(s: Store) -> dict[str, int]:
    """The upload requests counted for `compacted/` (where SSTs go)."""
    snap = s.metrics.snapshot()
    kinds = ("put", "put_part", "multipart")
    return {k: int(snap[f"store_requests_compacted_{k}_total"]) for k in kinds}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def ssts(store: Any) -> dict[str, int]:
    return {m["path"]: m["size"] for b in obstore.list(store, "db/compacted") for m in b}


def parts(size: int) -> int:
    return -(-size // PART)


def etag_parts(store: Any, path: str) -> int | None:
    """Parts S3 put the object together from (its ETag ends in `-<parts>` after a multipart
    upload); None on other stores."""
    if type(store).__name__ != "S3Store":
        return None
    etag = str(obstore.head(store, path)["e_tag"]).strip('"')
    return int(etag.rpartition("-")[2]) if "-" in etag else 1


def test_big_l0s_and_compaction_outputs_upload_in_parts(store: Any) -> None:
    s = Store(store, part_size=PART)
    rows = {b"key%06d" % i: os.urandom(VALUE) for i in range(ROWS)}
    opts = replace(OPTS, max_sst_size=8 * MiB)
    with Db.open("db", s, opts) as db:
        for k, v in rows.items():
            db.put(k, v, await_durable=False)
        before = requests(s)
        db.flush_memtable()
        [l0] = [f"db/compacted/{v.sst.id}.sst" for v in db.manifest()[1].l0]
        size = ssts(store)[l0]
        assert size > 2 * PART
        # Create, a part per 5 MiB, complete.
        assert delta(requests(s), before) == {"put": 0, "put_part": parts(size), "multipart": 2}
        assert etag_parts(store, l0) in (None, parts(size))
        before = requests(s)
        db.compact()
        _, m = db.manifest()
    outputs = {f"db/compacted/{v.sst.id}.sst": v.sst.info for r in m.compacted for v in r.views}
    assert len(outputs) >= 2
    listed = ssts(store)
    want = {"put": 0, "put_part": 0, "multipart": 0}
    for path, info in outputs.items():
        data = Store(store).get(path)
        assert data is not None and len(data) == listed[path]
        # The object is the SST the manifest describes, and it decodes whole.
        assert SstTableInfo.from_native(_native.decode_sst(data, path).info()) == info
        if info.filter_offset >= PART:  # its data filled a part before it ended
            want["put_part"] += parts(len(data))
            want["multipart"] += 2
            assert etag_parts(store, path) in (None, parts(len(data)))
        else:
            want["put"] += 1
    assert want["multipart"] >= 2 and want["put"] >= 1
    assert delta(requests(s), before) == want
    assert hidden_uploads(store) == []
    with Db.open("db", Store(store), OPTS) as db:
        assert dict(db.scan()) == rows


def test_an_output_whose_merge_fails_midway_is_aborted(store: Any) -> None:
    # The operator refuses to fold two operands of one key, late in the key order: the
    # compaction output has sent parts by then.
    target = b"key%06d~" % (ROWS - 5)

    def refuse(key: bytes, existing: bytes | None, operand: bytes) -> bytes:
        if existing is not None and key == target:
            raise ValueError("refused")
        return operand

    s = Store(store, part_size=PART)
    opts = replace(OPTS, merge_operator=refuse)
    with Db.open("db", s, opts) as db:
        for i in range(ROWS):
            db.put(b"key%06d" % i, os.urandom(VALUE), await_durable=False)
        db.merge(target, b"a", await_durable=False)
        db.flush_memtable()
        db.merge(target, b"b", await_durable=False)
        db.flush_memtable()
        inputs = ssts(store)
        before = requests(s)
        with pytest.raises(MergeOperatorError):
            db.compact()
        assert ssts(store) == inputs
        assert hidden_uploads(store) == []
        # The output's upload was created, sent parts, and was aborted.
        got = delta(requests(s), before)
        assert got["multipart"] == 2 and got["put_part"] >= 2 and got["put"] == 0
        assert db.get(b"key%06d" % 7) is not None
