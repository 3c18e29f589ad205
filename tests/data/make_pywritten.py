"""Databases slatedb_py writes for SlateDB 0.18 to read and write (the reverse direction).

    python tests/data/make_pywritten.py [OUT]      # default OUT: tests/data/pywritten

Each `OUT/<name>/db` is a database as slatedb_py left it, with `OUT/<name>/expected.json`:
`keys` ({hex key: hex value or null} for every key written), `merge_operator` (null or
"concat"), `run_0_18_compactor` (0.18's compactor is to run on it last, until no compaction
is unfinished: one it must resume, or one the tree calls for). `make golden-018` runs this
after writing `golden018/` (three of these start from a copy of one of its databases) and
before `gen018 reverse`, which opens every one with 0.18. Keys and values come from fixed
seeds; ids and timestamps differ from run to run.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions
from slatedb_py.merge import Concat

HERE = Path(__file__).resolve().parent
TEN_YEARS_S = 315_360_000
QUIET = {"compactor_enabled": False}


class Model:
    """Writes through a `Db` while recording what each key must read back as."""

    def __init__(self, db: Db, seed: int, keys: dict[bytes, bytes | None] | None = None) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.keys: dict[bytes, bytes | None] = dict(keys or {})

    def value(self, most: int = 120) -> bytes:
        n = self.rng.randrange(most)
        if self.rng.random() < 0.5:
            return (b"py-%d-" % self.rng.randrange(40) * 40)[:n]
        return self.rng.randbytes(n)

    def fresh(self, n: int) -> None:
        from datetime import timedelta

        for _ in range(n):
            key = b"py:%08d:%s" % (len(self.keys), self.rng.randbytes(4).hex().encode())
            v = self.value()
            ttl = timedelta(seconds=TEN_YEARS_S) if self.rng.random() < 0.05 else None
            self.db.put(key, v, ttl=ttl, await_durable=False)
            self.keys[key] = v

    def churn(self, overwrites: int, deletes: int) -> None:
        pool = sorted(self.keys)
        for key in self.rng.sample(pool, min(overwrites, len(pool))):
            v = self.value()
            self.db.put(key, v, await_durable=False)
            self.keys[key] = v
        for key in self.rng.sample(pool, min(deletes, len(pool))):
            self.db.delete(key, await_durable=False)
            self.keys[key] = None
        batch = WriteBatch()
        for key in self.rng.sample(pool, min(4, len(pool))):
            v = self.value()
            batch.put(key, v)
            self.keys[key] = v
        self.db.write(batch)

    def merge(self, key: bytes, operand: bytes) -> None:
        self.db.merge(key, operand, await_durable=False)
        self.keys[key] = (self.keys.get(key) or b"") + operand


def _expected(model: Model, **extra: Any) -> dict[str, Any]:
    keys = {k.hex(): (None if v is None else v.hex()) for k, v in sorted(model.keys.items())}
    doc: dict[str, Any] = {"writer": "slatedb_py", "keys": keys, "expired_keys": []}
    doc.update({"merge_operator": None, "run_0_18_compactor": False})
    doc.update(extra)
    return doc


def plain(store: LocalStore, path: str) -> dict[str, Any]:
    """L0 SSTs, a full compaction into a sorted run, more L0, a WAL tail, a checkpoint."""
    opts = DbOptions(compression="zstd", min_filter_keys=100, **QUIET)
    with Db.open(path, store, opts) as db:
        m = Model(db, 31)
        m.fresh(300)
        db.flush_memtable()
        m.churn(60, 40)
        m.fresh(100)
        db.flush_memtable()
        db.compact()
        m.fresh(80)
        m.churn(20, 10)
        db.flush_memtable()
        m.fresh(30)
        db.flush()
    return _expected(m)


def padded(store: LocalStore, path: str) -> dict[str, Any]:
    """`sst_block_alignment`: L0 and compacted SSTs padded to 1 KiB units, as 0.18 pads."""
    opts = DbOptions(block_size=1024, sst_block_alignment=True, min_filter_keys=100, **QUIET)
    with Db.open(path, store, opts) as db:
        m = Model(db, 36)
        m.fresh(200)
        db.put(b"py-big", b"B" * 2500, await_durable=False)
        m.keys[b"py-big"] = b"B" * 2500
        db.flush_memtable()
        m.churn(40, 20)
        db.flush_memtable()
        db.compact()
        m.fresh(40)
        db.flush_memtable()
        m.fresh(10)
        db.flush()
    return _expected(m)


def merged(store: LocalStore, path: str) -> dict[str, Any]:
    """Merge operands (concatenation) over bases, alone and after deletes; compacted."""
    opts = DbOptions(merge_operator=Concat(), **QUIET)
    with Db.open(path, store, opts) as db:
        m = Model(db, 32)
        m.fresh(60)
        for i, key in enumerate(sorted(m.keys)):
            for j in range(1 + i % 3):
                m.merge(key, b"m%d," % j)
        for i in range(30):
            m.merge(b"py-merge-only-%03d" % i, b"a,")
        db.flush_memtable()
        for i in range(30):
            m.merge(b"py-merge-only-%03d" % i, b"b,")
        db.flush_memtable()
        db.compact()
        for i in range(10):
            m.merge(b"py-merge-only-%03d" % i, b"tail,")
        db.flush()
    return _expected(m, merge_operator="concat")


def on_compacting(store: LocalStore, path: str, *, compact: bool) -> dict[str, Any]:
    """0.18's half-done compaction (golden018/compacting) with slatedb_py writing on top as
    its writer: with its compactor off (0.18 must resume the compaction), or after a full
    compaction of its own (0.18 must settle the compaction it finds, whose inputs are gone)."""
    fixture = HERE / "golden018" / "compacting"
    base = json.loads((fixture / "expected.json").read_text())["keys"]
    keys = {bytes.fromhex(k): (None if v is None else bytes.fromhex(v)) for k, v in base.items()}
    opts = DbOptions() if compact else DbOptions(**QUIET)
    with Db.open(path, store, opts) as db:
        m = Model(db, 33 + compact, keys)
        m.fresh(50)
        m.churn(20, 10)
        db.flush_memtable()
        if compact:
            db.compact()
        m.fresh(10)
        db.flush()
    return _expected(m, run_0_18_compactor=True)


def on_padded(store: LocalStore, path: str) -> dict[str, Any]:
    """0.18's padded SSTs (golden018/padded_1k: a sorted run and an L0) with slatedb_py's
    unpadded L0 SSTs on top: 0.18 then reads, and compacts, a tree of both kinds."""
    base = json.loads((HERE / "golden018" / "padded_1k" / "expected.json").read_text())["keys"]
    keys = {bytes.fromhex(k): (None if v is None else bytes.fromhex(v)) for k, v in base.items()}
    with Db.open(path, store, DbOptions(block_size=1024, **QUIET)) as db:
        m = Model(db, 35, keys)
        m.fresh(60)
        m.churn(40, 20)
        db.flush_memtable()
        m.fresh(40)
        db.flush_memtable()
        m.fresh(10)
        db.flush()
    return _expected(m, run_0_18_compactor=True)


def write_all(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = LocalStore(str(out))
    makers = {
        "plain": plain,
        "padded": padded,
        "merge": merged,
        "on_compacting018_writer": lambda s, p: on_compacting(s, p, compact=False),
        "on_compacting018_compacted": lambda s, p: on_compacting(s, p, compact=True),
        "on_padded018": on_padded,
    }
    sources = {"on_compacting018": "compacting", "on_padded018": "padded_1k"}
    for name, make in makers.items():
        for prefix, fixture in sources.items():
            if name.startswith(prefix):
                shutil.copytree(HERE / "golden018" / fixture / "db", out / name / "db")
        doc = make(store, f"{name}/db")
        (out / name / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{name}: {len(doc['keys'])} keys")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "pywritten")
