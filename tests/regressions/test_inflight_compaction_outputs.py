"""Found while attacking the fencing fix with a zero-age collector: the collector deleted the
outputs of a compaction that had uploaded them but not committed yet, as soon as the writer
flushed an L0 newer than them; the commit then named missing SSTs. (With default ages the same
happens to any compaction that runs longer than `min_age`.) A compaction is now listed in the
compactor state from before its first output until after its commit, and both our collector
and SlateDB 0.17.0's keep every unreferenced SST newer than the oldest listed compaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.clock import SystemClock
from slatedb_py.compaction_plan import plan_compaction
from slatedb_py.compaction_state import CompactionsStore
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.manifest.compactions_codec import (
    COMPLETED,
    RUNNING,
    CompactionRecord,
    CompactionsState,
    decode_state,
    encode_state,
)
from slatedb_py.manifest.fence import CompactorFence
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
ZERO = GcOptions(min_age=timedelta(0))


class CollectBeforeCommit(CompactorFence):
    """Runs `meanwhile` after the outputs are uploaded, just before the commit."""

    def __init__(self, compactor: Compactor, meanwhile: Callable[[], None]) -> None:
        super().__init__(compactor.manifests)
        self.meanwhile = meanwhile

    def update(self, change: Any, *, initial: Any = None) -> Any:
        self.meanwhile()
        return super().update(change, initial=initial)


def compact_while(store: Any, path: str, collect: Callable[[], None]) -> dict[bytes, bytes]:
    db = Db.open(path, store, OPTS)
    model = {}
    for r in range(4):
        for i in range(200):
            db.put(b"k%04d" % i, b"r%d" % r, await_durable=False)
            model[b"k%04d" % i] = b"r%d" % r
        db.flush_memtable()

    def meanwhile() -> None:
        time.sleep(0.005)  # the next L0's ULID is newer than every output's
        db.put(b"late", b"x")
        db.flush_memtable()
        collect()

    compactor = Compactor(Store.resolve(store), DbPaths.of(path), OPTS, SystemClock())
    compactor.fence = CollectBeforeCommit(compactor, meanwhile)
    compactor.claim()
    _, m = compactor.manifests.require_latest()
    plan = plan_compaction(m, OPTS)
    assert plan is not None
    compactor.compact(m, plan)
    db.close()
    model[b"late"] = b"x"
    return model


def test_our_zero_age_collector_keeps_uncommitted_outputs(store) -> None:  # type: ignore[no-untyped-def]
    model = compact_while(store, "db", lambda: admin.run_gc_once("db", store, ZERO))
    with Db.open("db", store, OPTS) as db:
        assert dict(db.scan()) == model
    [done] = (
        CompactionsStore(Store.resolve(store), DbPaths.of("db"), SystemClock())
        .latest()[1]
        .compactions
    )
    assert done.status == COMPLETED
    # Once committed, the compaction's inputs are garbage and do go.
    assert admin.run_gc_once("db", store, ZERO).compacted


@pytest.mark.interop
def test_0_17_collector_keeps_uncommitted_outputs(tmp_path: Path) -> None:
    from tests.interop import oracle

    path = str(tmp_path / "db")
    model = compact_while(LocalStore("/"), path, lambda: oracle.run_gc_once(path))
    with Db.open(path, LocalStore("/"), OPTS) as db:
        assert dict(db.scan()) == model


def test_the_state_reads_0_17_files_and_round_trips() -> None:
    folder = Path(__file__).parents[1] / "data" / "golden" / "compacted" / "db" / "compactions"
    states = [decode_state(f.read_bytes(), name=f.name) for f in sorted(folder.iterdir())]
    assert states[0] == CompactionsState(0, ())
    [last] = states[-1].compactions
    assert last.status == COMPLETED and len(last.l0_view_ids) == 2
    mine = CompactionsState(
        7, (CompactionRecord(last.id, RUNNING, last.l0_view_ids, (3, 1), 4), last)
    )
    assert decode_state(encode_state(mine)) == mine


def _open_0_17_with_compactor(path: str) -> tuple[Any, Any]:
    """A SlateDB 0.17.0 writer on `path` whose compactor polls every 50 ms, and its loop."""
    import asyncio
    import json

    import slatedb.uniffi as u

    s = u.Settings.default()
    s.set("garbage_collector_options", "null")
    s.set("flush_interval", json.dumps("50ms"))
    s.set("compactor_options.poll_interval", json.dumps("50ms"))
    s.set(
        "compactor_options.scheduler_options",
        json.dumps({"min_compaction_sources": "2", "max_compaction_sources": "8"}),
    )
    loop = asyncio.new_event_loop()
    b = u.DbBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///"))
    b.with_settings(s)
    return loop, loop.run_until_complete(b.build())


@pytest.mark.interop
def test_0_17_compactor_carries_on_after_ours_died_after_its_commit(tmp_path: Path) -> None:
    """Found in the second adversarial round: our compactor killed between its manifest commit
    and its last state write left a Running compaction whose inputs were gone, and SlateDB
    0.17.0's compactor then never compacted again (its writer stalled at l0_max_ssts). Before
    the commit the state now says Compacted, which 0.17.0 settles against the manifest."""
    import threading

    import slatedb.uniffi as u

    path = str(tmp_path / "db")
    opts = DbOptions(
        flush_interval=None, gc_enabled=False, compactor_enabled=False, compaction_min_sources=2
    )
    with Db.open(path, LocalStore("/"), opts) as db:
        for r in range(4):
            db.put(b"k%d" % r, b"v")
            db.flush_memtable()
    ours = Compactor(Store.resolve(LocalStore("/")), DbPaths.of(path), opts, SystemClock())
    ours.state.finish = lambda *a, **k: None  # killed right after the manifest commit
    assert ours.run_once()

    loop, theirs = _open_0_17_with_compactor(path)
    flushed: list[int] = []

    def write() -> None:
        for r in range(12):  # past 0.17.0's l0_max_ssts of 8: needs its compactor working
            loop.run_until_complete(theirs.put(b"x%02d" % r, b"v"))
            loop.run_until_complete(
                theirs.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE))
            )
            flushed.append(r)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    t.join(60)
    assert len(flushed) == 12, "0.17.0's writer stalled: its compactor stopped"
    loop.run_until_complete(theirs.shutdown())
    loop.close()
    with Db.open(path, LocalStore("/"), opts) as db:
        assert dict(db.scan()) == {
            **{b"k%d" % r: b"v" for r in range(4)},
            **{b"x%02d" % r: b"v" for r in range(12)},
        }


@pytest.mark.interop
def test_0_17_settles_our_compaction_killed_before_its_commit(tmp_path: Path) -> None:
    """Found checking the fix above: killed after writing its Compacted entry but before its
    commit, our compactor left an entry with no outputs, and 0.17.0 settled it by committing
    exactly those: the inputs left the tree with nothing in their place (400 of 403 keys lost).
    A Compacted entry now lists its output SSTs, as SlateDB's do."""
    import slatedb.uniffi as u

    path = str(tmp_path / "db")
    opts = DbOptions(
        flush_interval=None, gc_enabled=False, compactor_enabled=False, compaction_min_sources=2
    )
    model = {}
    with Db.open(path, LocalStore("/"), opts) as db:
        for r in range(4):
            for i in range(r, 400, 3):
                db.put(b"k%04d" % i, b"r%d" % r, await_durable=False)
                model[b"k%04d" % i] = b"r%d" % r
            db.flush_memtable()
    ours = Compactor(Store.resolve(LocalStore("/")), DbPaths.of(path), opts, SystemClock())
    ours.state.finish = lambda *a, **k: None

    def killed(_change: Any, **_: Any) -> Any:
        raise KeyboardInterrupt  # the process dies right before the manifest commit

    ours.fence.update = killed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        ours.run_once()
    [entry] = (
        CompactionsStore(Store.resolve(LocalStore("/")), DbPaths.of(path), SystemClock())
        .latest()[1]
        .compactions
    )
    assert entry.status == 4 and entry.outputs  # Compacted, with its outputs

    loop, theirs = _open_0_17_with_compactor(path)
    for r in range(3):
        loop.run_until_complete(theirs.put(b"x%d" % r, b"v"))
        loop.run_until_complete(
            theirs.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE))
        )
        model[b"x%d" % r] = b"v"
    time.sleep(2)  # its compactor settles our entry and compacts
    loop.run_until_complete(theirs.shutdown())
    loop.close()
    with Db.open(path, LocalStore("/"), opts) as db:
        assert dict(db.scan()) == model
