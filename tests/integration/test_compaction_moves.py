"""Compactions of inputs with disjoint key ranges (a sequential load, time-ordered keys) move
the SSTs into the destination run without rewriting them (`compaction_plan.disjoint_order`);
inputs that share even one key, or that are small, are merged as before. Reads, the collector
and SlateDB 0.17.0 see the moved run as any other."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch, admin
from slatedb_py.compaction_plan import CompactionPlan, disjoint_order
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.manifest.model import (
    INCLUDED,
    UNBOUNDED,
    BytesBound,
    SortedRun,
    SstHandle,
    SstTableInfo,
    SstView,
)
from tests.interop.oracle import Official

NOW = GcOptions(min_age=timedelta(0))
# Small memtables: each flush is one L0 SST of about 64 KiB.
OPTS = DbOptions(
    flush_interval=None, compactor_enabled=False, gc_enabled=False, l0_sst_size_bytes=64 << 10
)


def _load(db: Db, lo: int, hi: int, tag: bytes, model: dict[bytes, bytes]) -> None:
    """Keys lo..hi (100-byte values) as one L0 SST."""
    b = WriteBatch()
    for i in range(lo, hi):
        k, v = b"key%07d" % i, tag + b"%07d" % i * 12
        b.put(k, v)
        model[k] = v
    db.write(b, await_durable=False)
    db.flush_memtable()


def _ids(db: Db) -> tuple[list[str], list[list[str]]]:
    m = db.manifest()[1]
    return [v.id for v in m.l0], [[v.id for v in r.views] for r in m.compacted]


def test_disjoint_l0_ssts_become_a_run_without_a_rewrite(store) -> None:  # type: ignore[no-untyped-def]
    model: dict[bytes, bytes] = {}
    with Db.open("db", store, OPTS) as db:
        for part in range(6):
            _load(db, part * 600, part * 600 + 600, b"a", model)
        l0, runs = _ids(db)
        assert len(l0) == 6 and runs == []
        written = db.metrics()["compaction_output_bytes_total"]
        db.compact()
        l0_after, runs_after = _ids(db)
        # The same SSTs, in key order (L0 lists the newest first; keys grew with time).
        assert l0_after == [] and runs_after == [l0[::-1]]
        assert db.metrics()["compaction_output_bytes_total"] == written
        assert dict(db.scan()) == model
        assert db.get(b"key0001234") == model[b"key0001234"]
        # A collector with zero ages keeps every moved SST: they are referenced.
        admin.run_gc_once("db", store, NOW)
        assert dict(db.scan()) == model
        # Overwrites across the run's range overlap it: the next compaction merges.
        _load(db, 1000, 1600, b"b", model)
        db.compact()
        _, runs_merged = _ids(db)
        assert len(runs_merged) == 1 and not set(runs_merged[0]) & set(l0)
        admin.run_gc_once("db", store, NOW)
        assert dict(db.scan()) == model
    with Db.open("db", store, OPTS) as db:
        assert dict(db.scan()) == model


def test_inputs_sharing_a_key_at_their_edge_are_merged(store) -> None:  # type: ignore[no-untyped-def]
    model: dict[bytes, bytes] = {}
    with Db.open("db", store, OPTS) as db:
        _load(db, 0, 600, b"a", model)
        _load(db, 599, 1200, b"b", model)  # key 599 in both: its newer version must win
        l0, _ = _ids(db)
        db.compact()
        _, runs = _ids(db)
        assert len(runs) == 1 and not set(runs[0]) & set(l0)
        assert db.get(b"key0000599") == model[b"key0000599"]
        assert dict(db.scan()) == model


def test_small_ssts_are_merged_even_when_disjoint(store) -> None:  # type: ignore[no-untyped-def]
    model: dict[bytes, bytes] = {}
    with Db.open("db", store, OPTS) as db:
        for part in range(6):
            _load(db, part * 10, part * 10 + 10, b"a", model)  # about 1 KiB each
        l0, _ = _ids(db)
        db.compact()
        _, runs = _ids(db)
        assert runs and len(runs[0]) == 1 and runs[0][0] not in l0
        assert dict(db.scan()) == model


def _view(name: str, first: bytes | None, last: bytes | None, size: int = 1000) -> SstView:
    info = SstTableInfo(first, last, size, 10, size, 0, None, "compacted", 0, 0, 1)
    return SstView(name, SstHandle(name, info, 2))


def test_disjoint_order_lines_inputs_up_by_key() -> None:
    a, b, c = _view("a", b"a", b"c"), _view("b", b"d", b"f"), _view("c", b"g", b"h")
    run = SortedRun(1, (b, c))
    assert disjoint_order(CompactionPlan((a,), (run,), 2, True), 500, 5000) == (a, b, c)
    assert disjoint_order(CompactionPlan((c, a), (), 2, True), 500, 5000) == (a, c)
    # Touching at one key, overlapping, an unknown range, too small on average, an SST over
    # the run's SST size: merged.
    for plan, avg, most in [
        (CompactionPlan((_view("x", b"c", b"d"), a), (), 2, True), 500, 5000),
        (CompactionPlan((a, _view("y", b"b", b"z")), (), 2, True), 500, 5000),
        (CompactionPlan((a, _view("z", b"x", None)), (), 2, True), 500, 5000),
        (CompactionPlan((a, b), (), 2, True), 2000, 5000),
        (CompactionPlan((a, b), (), 2, True), 500, 1009),
    ]:
        assert disjoint_order(plan, avg, most) is None
    projected = SstView("p", b.sst, (BytesBound(INCLUDED, b"d"), BytesBound(UNBOUNDED)))
    assert disjoint_order(CompactionPlan((a, projected), (), 2, True), 500, 5000) is None


@pytest.mark.interop
def test_a_moved_run_opens_in_0_17_and_back(tmp_path: Path) -> None:
    path, model = str(tmp_path / "db"), {}
    root = LocalStore("/")
    with Db.open(path, root, OPTS) as db:
        for part in range(5):
            _load(db, part * 600, part * 600 + 600, b"a", model)
        db.compact()
        assert len(_ids(db)[1]) == 1
    official = Official(path)
    try:
        assert official.scan() == model
        official.put(b"key9999999", b"from 0.17")
        model[b"key9999999"] = b"from 0.17"
        official.flush_memtable()
    finally:
        official.close()
    with Db.open(path, root, OPTS) as db:
        assert dict(db.scan()) == model
