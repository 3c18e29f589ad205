"""A multipart upload cut short by a crash: a compactor process SIGKILLed in the middle of an
output's upload leaves no visible SST, the database stays whole, and what the upload left
behind is hidden and collected. In a local folder that is obstore's staging file
`<key>#<n>`, which the collector removes once it is old enough and the SST it was to become
could go; on S3 it is an incomplete multipart upload, invisible to LIST and reads, which obstore
cannot list: the bucket's lifecycle rule (AbortIncompleteMultipartUpload) clears it, done here
by hand."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest

from slatedb_py import Db, admin
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.store import Store
from tests.support import abort_hidden_upload, hidden_uploads, shared_store

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("upload_crash_child.py")
PART = 5 * 1024 * 1024
ROWS, VALUE = 12_000, 1000  # about 12 MB: a compaction output of three parts
OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)


def ssts(store: Any) -> set[str]:
    return {m["path"] for b in obstore.list(store, "db/compacted") for m in b}


def kill_mid_upload(kind: str, where: str, bucket: str) -> str:
    """Runs the stalling compactor (upload_crash_child.py) and SIGKILLs it once it is in the
    middle of an output's upload; returns that output's key."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), kind, where, bucket, str(ROOT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 300)
        line = proc.stdout.readline().strip() if ready else ""
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert line.startswith("db/compacted/") and line.endswith(".sst"), (line, err[-3000:])
    return line


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_compactor_killed_mid_upload_leaves_no_sst_and_no_uncollectable_leak(
    kind: str, tmp_path: Path
) -> None:
    inner, where, bucket = shared_store(kind, tmp_path)
    rows = {b"key%06d" % i: os.urandom(VALUE) for i in range(ROWS)}
    with Db.open("db", Store(inner, part_size=PART), OPTS) as db:
        for i, (k, v) in enumerate(rows.items()):
            db.put(k, v, await_durable=False)
            if i == ROWS // 2:
                db.flush_memtable()
        db.flush_memtable()
    inputs = ssts(inner)

    output = kill_mid_upload(kind, where, bucket)

    # No visible SST: listings show the inputs only, and the output cannot be read.
    assert ssts(inner) == inputs
    assert Store(inner).get(output) is None
    # What the upload left is hidden from listings: a staging file, or an incomplete upload.
    assert hidden_uploads(inner) == [output]

    # The database is whole; a new compactor does the compaction. New data and a later
    # compaction then move the collector's marks past the dead output's id.
    with Db.open("db", Store(inner, part_size=PART), OPTS) as db:
        assert dict(db.scan()) == rows
        db.compact()
        db.put(b"later", b"x")
        db.flush_memtable()
        db.compact()
        _, m = db.manifest()
        live = {f"db/compacted/{v.sst.id}.sst" for v in m.all_views()}
        # The L0 just compacted may share its millisecond with the compaction's id, which
        # keeps it until a later compaction (the collector's marks are strict).
        last_l0 = f"db/compacted/{m.last_compacted_l0_view_id}.sst"

    # Too young for the default minimum age: kept.
    assert admin.run_gc_once("db", inner, GcOptions()).leftovers == []
    assert hidden_uploads(inner) == [output]
    result = admin.run_gc_once("db", inner, GcOptions(min_age=timedelta(0)))
    assert live <= ssts(inner) <= live | {last_l0}
    if kind == "local":
        assert [p.rsplit("#", 1)[0] for p in result.leftovers] == [output]
        assert hidden_uploads(inner) == []
    else:
        assert result.leftovers == []
        assert hidden_uploads(inner) == [output]  # not an object: no listing shows it
        abort_hidden_upload(inner, output)
        assert hidden_uploads(inner) == []
    with Db.open("db", Store(inner), OPTS) as db:
        assert dict(db.scan()) == {**rows, b"later": b"x"}
