"""The compactor's memory stays bounded with SlateDB's 256 MiB outputs: a standalone compactor
process merges about 600 MB of L0 SSTs into outputs of `max_sst_size` with a peak RSS
(VmHWM, its own) under 200 MB, in a local folder and on the S3 server. Outputs go up in
parts as they are written; held whole, they took the compactor to about 400 MB. On S3 the
compactor merges about 300 MB into one full output and the rest: one 256 MiB output held
whole is over the bound already, and moto took a minute over the 600 MB."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions
from tests.support import run_child, shared_store

ROOT = Path(__file__).resolve().parents[2]
ROWS, VALUE = 560_000, 1000  # about 580 MB of rows: three outputs of up to 256 MiB
# On S3 about 300 MB: one full output and the rest. The output pipeline is the store's
# alike; on S3 only its uploads (multipart, part by part) differ, and one 256 MiB output
# held whole is over the bound already.
S3_ROWS = 290_000
COMPACTOR_RSS_MB = 200

CHILD = textwrap.dedent(
    """
    import json, sys
    from slatedb_py.clock import SystemClock
    from slatedb_py.compactor import Compactor
    from slatedb_py.config import DbOptions
    from slatedb_py.paths import DbPaths
    from slatedb_py.store import Store
    from tests.support import peak_rss_mb, reopen_store

    c = Compactor(Store(reopen_store(*sys.argv[1:4])), DbPaths.of("db"), DbOptions(), SystemClock())
    c.run_once(full=True)
    _, m = c.manifests.require_latest()
    print(json.dumps({
        "peak_mb": peak_rss_mb(),
        "l0": len(m.l0),
        "sizes": [v.sst.info.estimated_size for r in m.compacted for v in r.views],
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_compactor_writes_256_mib_outputs_in_bounded_memory(kind: str, tmp_path: Path) -> None:
    inner, where, bucket = shared_store(kind, tmp_path)
    rows, outputs = (ROWS, 3) if kind == "local" else (S3_ROWS, 2)
    buf = random.Random(7).randbytes(1 << 22)
    opts = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    with Db.open("db", inner, opts) as db:
        for s in range(0, rows, 1000):
            b = WriteBatch()
            for i in range(s, s + 1000):
                at = (i * 4099) % (len(buf) - VALUE)
                # Keys spread over the whole range in every batch: every L0 SST overlaps
                # the others, so the compactor merges (disjoint inputs are only moved).
                b.put(b"key%09d" % ((i * 7919) % ROWS), buf[at : at + VALUE])
            db.write(b, await_durable=False)
        db.flush_memtable()
        assert len(db.manifest()[1].l0) >= 4
    got = run_child(CHILD, kind, where, bucket, timeout=1800)
    sizes = got["sizes"]
    assert got["l0"] == 0 and len(sizes) == outputs, got
    assert sorted(sizes)[1] >= 256 * 1024 * 1024, got  # full outputs and the rest
    assert got["peak_mb"] < COMPACTOR_RSS_MB, got
