"""Merge operands shared both ways with the real SlateDB 0.17.0: its operands (L0 and WAL
tail, batches that fold a put or delete with merges, operands with a TTL) read the same here,
and operands written and compacted here read the same there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, DbReader, WriteBatch
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import MergeOperatorError
from slatedb_py.merge import Concat
from tests.interop.golden import GOLDEN, Fixture
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
QUIET = {"flush_interval": None, "gc_enabled": False, "compactor_enabled": False}


def golden_model(fx: Fixture) -> dict[bytes, bytes]:
    expired = set(fx.expected["expired_keys"])
    keys = fx.expected["keys"].items()
    return {
        bytes.fromhex(k): bytes.fromhex(v) for k, v in keys if v is not None and k not in expired
    }


def test_0_17_operands_read_the_same_then_fold_here_and_read_there(tmp_path: Path) -> None:
    fx = Fixture("merge")
    path = str(tmp_path / "db")
    shutil.copytree(GOLDEN / "merge" / "db", path)
    model = golden_model(fx)
    assert fx.expected["op_counts"]["merge"] > 400  # operands in L0 and in the WAL tail

    # Without an operator, the first operand met is an error naming its key.
    plain = DbReader.open(path, ROOT, options=ReaderOptions(managed_checkpoint=False))
    with plain, pytest.raises(MergeOperatorError, match="merge of key"):
        dict(plain.scan())
    with DbReader.open(
        path, ROOT, options=ReaderOptions(managed_checkpoint=False, merge_operator=Concat)
    ) as reader:
        assert dict(reader.scan()) == model
        assert dict(reader.scan(reverse=True)) == model

    db = Db.open(path, ROOT, DbOptions(merge_operator=Concat(), **QUIET))
    keys = sorted(model)
    assert [db.get(k) for k in keys] == [model[k] for k in keys]
    assert db.get_many(keys) == [model[k] for k in keys]
    # More operands over theirs, then everything folded by a full compaction, then a tail.
    for i, k in enumerate(keys[::3]):
        db.merge(k, b"/py%d" % i, await_durable=False)
        model[k] += b"/py%d" % i
    db.write(WriteBatch().put(b"py/new", b"base").merge(b"py/new", b"+1").merge(b"py/only", b"o"))
    model[b"py/new"], model[b"py/only"] = b"base+1", b"o"
    db.compact()
    assert dict(db.scan()) == model
    for k in keys[1::7]:
        db.merge(k, b"/tail", await_durable=False)
        model[k] += b"/tail"
    db.flush_memtable()
    db.merge(keys[0], b"/wal")
    model[keys[0]] += b"/wal"
    db.close()

    official = Official(path, concat=True)
    assert official.scan() == model
    official.merge(keys[2], b"/0.17")
    model[keys[2]] += b"/0.17"
    official.close(keep_wal_tail=True)

    with Db.open(path, ROOT, DbOptions(merge_operator=Concat, **QUIET)) as again:
        assert dict(again.scan()) == model


def test_operands_written_here_read_the_same_in_0_17(tmp_path: Path) -> None:
    """Merge rows with no base (folded in a compaction while a snapshot kept the newer ones),
    value rows folded from a base, and unfolded operands in L0 and the WAL."""
    path = str(tmp_path / "ours")
    model: dict[bytes, bytes] = {}
    with Db.open(path, ROOT, DbOptions(merge_operator=Concat, **QUIET)) as db:
        for i in range(400):
            k = b"log/%03d" % (i % 40)
            if i % 97 == 0:
                db.put(k, b"P", await_durable=False)
                model[k] = b"P"
            else:
                db.merge(k, b"%d," % i, await_durable=False)
                model[k] = model.get(k, b"") + b"%d," % i
        db.flush_memtable()
        snap = db.snapshot()  # keeps the versions above it: some operands stay unfolded
        for i in range(40):
            k = b"log/%03d" % i
            db.merge(k, b"s", await_durable=False)
            model[k] += b"s"
        db.compact()
        db.delete(b"log/007")
        model.pop(b"log/007")
        db.merge(b"log/007", b"again")
        model[b"log/007"] = b"again"
        snap.close()
    reader = Official(path, reader=True, concat=True)
    assert reader.scan() == model
    assert all(reader.get(k) == v for k, v in model.items())
    reader.close()
