"""A backup restored by slatedb_py opens in SlateDB 0.17.0 with the same contents; so does
the backup location itself (it is a database whose checkpoints are the backups)."""

from __future__ import annotations

from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.config import DbOptions
from tests.interop.oracle import Official

pytestmark = pytest.mark.interop
ROOT = LocalStore("/")
OPTS = DbOptions(flush_interval=None, gc_enabled=False)


def test_a_restored_backup_opens_in_0_17_0(tmp_path: Path) -> None:
    src, bak = str(tmp_path / "db"), str(tmp_path / "bak")
    model: dict[bytes, bytes] = {}
    with Db.open(src, ROOT, OPTS) as db:
        for i in range(3000):
            model[b"k%05d" % i] = b"v%d" % i
            db.put(b"k%05d" % i, b"v%d" % i, await_durable=False)
        db.flush_memtable()
        db.delete(b"k00007")
        del model[b"k00007"]
        db.put(b"tail", b"wal-only")  # only in the WAL: the backup carries its WAL range
        model[b"tail"] = b"wal-only"
        db.flush()
        first = admin.create_backup(src, ROOT, bak, ROOT)
        at_first = dict(model)
        for i in range(30):
            model[b"k%05d" % i] = b"again"
            db.put(b"k%05d" % i, b"again", await_durable=False)
        db.flush()
    second = admin.create_backup(src, ROOT, bak, ROOT)

    for backup, want, dest in ((first, at_first, "r1"), (second, model, "r2")):
        path = str(tmp_path / dest)
        admin.restore_backup(bak, ROOT, backup.id, path, ROOT)
        theirs = Official(path, reader=True)
        assert theirs.scan() == want
        assert theirs.get(b"tail") == b"wal-only"
        theirs.close()

    latest = Official(bak, reader=True)  # the backup location's latest state: the newest backup
    assert latest.scan() == model
    latest.close()

    # restore in place, then 0.17.0 writes on top
    admin.restore_backup(bak, ROOT, first.id, src, ROOT)
    writer = Official(src)
    writer.put(b"after", b"restore")
    assert writer.scan() == {**at_first, b"after": b"restore"}
    writer.close()
