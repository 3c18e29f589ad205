"""Races between a zero-age (or clock-skewed) collector and the rest of the engine, found by an
adversarial review of the fencing fix: restores racing compactions and checkpoint expiry,
readers (a writer's `Db`, a managed `DbReader`) left on a tree whose files were collected, a
manifest update lost to a collector whose clock runs ahead, a WAL upload retried after a lost
response, and a flush that put the writer back on an older manifest. Each interleaving is forced
deterministically: a gate in `tests.support.FaultyStore` holds one thread's request (what a slow
store does) while the others move on, or a hook runs a step at the exact point."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from slatedb_py import Db, DbReader, admin
from slatedb_py.clock import ManualClock, SystemClock
from slatedb_py.compaction_plan import plan_compaction
from slatedb_py.compactor import Compactor
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import CheckpointNotFoundError, ConflictError, UnavailableError
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from tests.support import FaultyStore, gate

ZERO = GcOptions(min_age=timedelta(0))
WAIT_S = 20  # bound on every wait, so a regression fails instead of hanging


def real_time() -> ManualClock:
    """A manual clock starting at the real time, like the store's object timestamps."""
    return ManualClock(time.time_ns() // 1_000_000)


def tick() -> None:
    """What is written next gets a ULID in a later millisecond: the collector takes only the
    compacted-away SSTs older than the last compacted L0 and than any running compaction."""
    time.sleep(0.002)


def in_thread(
    name: str, fn: Callable[[], Any]
) -> tuple[threading.Thread, list[Any], list[BaseException]]:
    """Starts `fn` in a thread called `name`; returns it and lists that get its result or error."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(fn())
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t, results, errors


def finish(store: Any, *threads: threading.Thread) -> None:
    store.gate.set()
    for t in threads:
        t.join(WAIT_S)
        assert not t.is_alive(), f"thread {t.name} hung"


def test_a_compaction_planned_before_a_restore_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    """A compaction planned before a restore and committing after it: its commit check compared
    the sorted runs' ids only, and the restore brings back the same ids with older contents, so
    the compaction committed and replaced the restored runs with a merge of the pre-restore
    runs (the database then showed rows written after the checkpoint and lost rows the
    checkpoint had). Now the runs are compared by content: the commit is refused with
    `ConflictError` and the database equals the checkpoint."""
    opts = DbOptions(compactor_enabled=False, flush_interval=None, compaction_min_sources=2)
    db = Db.open("db", store, opts)

    def l0(key: bytes, value: bytes) -> None:
        db.put(key, value)
        db.flush_memtable()

    c = Compactor(db._store, db._paths, opts, db._clock)
    for key, value in ((b"a", b"A0"), (b"x", b"x0")):
        l0(key, value)
    assert c.run_once()  # run 0
    for key, value in ((b"b", b"B0"), (b"y", b"y0")):
        l0(key, value)
    assert c.run_once()  # run 1
    assert [r.id for r in db._manifests.require_latest()[1].compacted] == [1, 0]
    cp = db.create_checkpoint(CheckpointOptions())
    c.run_once()  # runs {1, 0} merge into run 0
    l0(b"a", b"A1-after-checkpoint")
    l0(b"c", b"C1-after-checkpoint")
    db.delete(b"x")
    db.flush_memtable()
    c.run_once()  # and the new L0s into run 1: the ids of the checkpoint's runs, other contents
    _, m = db._manifests.require_latest()
    assert [r.id for r in m.compacted] == [1, 0] and not m.l0
    plan = plan_compaction(m, opts)  # the slow compactor's snapshot and plan
    assert plan is not None and [r.id for r in plan.runs] == [1, 0]
    db.close()

    admin.restore_checkpoint("db", store, cp.id)
    with pytest.raises(ConflictError):
        c.compact(m, plan)
    with Db.open("db", store, opts) as db2:
        got = {k: db2.get(k) for k in (b"a", b"b", b"c", b"x", b"y")}
        assert dict(db2.scan()) == {b"a": b"A0", b"b": b"B0", b"x": b"x0", b"y": b"y0"}
    assert got == {b"a": b"A0", b"b": b"B0", b"c": None, b"x": b"x0", b"y": b"y0"}


def test_a_restore_whose_checkpoint_expires_midway_changes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    """The restore checked that its checkpoint was live only at its start. The checkpoint
    expired while the restore was uploading the L0 of its WAL tail, a zero-age collector then
    took the checkpoint's SSTs, and the restore committed a tree naming them: every read of the
    database failed with a missing SST. Now the restore checks the checkpoint again in its
    manifest update: it raises `CheckpointNotFoundError`, the tree is not changed, and the
    database reads as before the restore."""
    store = FaultyStore(store)
    opts = DbOptions(flush_interval=None, compaction_min_sources=2)
    db = Db.open("db", store, opts)
    for i in range(4):
        db.put(b"k%d" % i, b"v%d-old" % i)
        db.flush_memtable()
    db.put(b"tail", b"in-wal")  # the checkpoint's WAL tail: the restore writes an L0 of it
    clock = real_time()
    minute = CheckpointOptions(lifetime=timedelta(minutes=1))
    cp = admin.create_checkpoint("db", store, minute, clock=clock)
    tick()
    for i in range(4):
        db.put(b"k%d" % i, b"v%d-new" % i)
        db.flush_memtable()
    db.compact()  # the checkpoint's SSTs are now pinned by the checkpoint only
    db.close()

    reached = gate(store, "restore", "put", "compacted")  # a slow L0 upload
    t, _, errors = in_thread(
        "restore", lambda: admin.restore_checkpoint("db", store, cp.id, clock=clock)
    )
    try:
        assert reached.wait(WAIT_S)
        clock.advance(2 * 60_000)  # the checkpoint expired
        r = admin.run_gc_once("db", store, ZERO, clock=clock)
        assert r.expired_checkpoints == [str(cp.id)]
        assert r.compacted  # the checkpoint's SSTs went
    finally:
        finish(store, t)
    assert [type(e) for e in errors] == [CheckpointNotFoundError], errors
    with Db.open("db", store, opts) as db2:
        assert {k: db2.get(k) for k in (b"k0", b"k1", b"k2", b"k3", b"tail")} == {
            **{b"k%d" % i: b"v%d-new" % i for i in range(4)},
            b"tail": b"in-wal",
        }
        assert len(dict(db2.scan())) == 5


@pytest.mark.parametrize("read", ["get", "scan"])
def test_a_db_follows_a_standalone_compactor(store, read: str) -> None:  # type: ignore[no-untyped-def]
    """A `Db` with a standalone compactor (`compactor_enabled=False`) kept reading through the
    tree of its own last manifest update until its next flush; once the compactor had merged
    those L0 SSTs away and a zero-age collector had deleted them, `Db.get` and `Db.scan` raised
    `DataError` (missing SST). Now a read that finds an SST missing moves the `Db` to the latest
    tree and answers from it: both the first `get` and the first `scan` after the collection
    return the rows."""
    opts = DbOptions(
        flush_interval=None, compactor_enabled=False, compaction_min_sources=2, block_cache_bytes=0
    )
    with Db.open("db", store, opts) as db:
        for i in range(2):
            db.put(b"k%d" % i, b"v%d" % i)
            db.flush_memtable()
            tick()
        assert db.get(b"k0") == b"v0" and db.get(b"k1") == b"v1"
        standalone = Compactor(Store.resolve(store), DbPaths.of("db"), opts, SystemClock())
        assert standalone.run_once()
        assert len(admin.run_gc_once("db", store, ZERO).compacted) == 2  # the Db's L0 SSTs
        if read == "get":
            assert (db.get(b"k0"), db.get(b"k1"), db.get(b"k2")) == (b"v0", b"v1", None)
        else:
            assert list(db.scan()) == [(b"k0", b"v0"), (b"k1", b"v1")]
        assert list(db.scan(b"k1")) == [(b"k1", b"v1")]


def test_a_managed_reader_refresh_survives_a_collected_wal(store) -> None:  # type: ignore[no-untyped-def]
    """A managed `DbReader` replays the WAL objects it listed past its checkpoint's last seen
    id, and nothing pins those: when the writer flushed (moving its replay point past them) and
    a zero-age collector ran between the reader's LIST and its GETs, `refresh()` raised
    `DataError` ("WAL truncated"). Now the reader starts its load over from the newer tree:
    `refresh()` succeeds and the reader sees every row."""
    store = FaultyStore(store)
    with Db.open("db", store, DbOptions(flush_interval=None)) as db:
        db.put(b"a", b"1")
        rd = DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=None))
        try:
            db.put(b"b", b"2")  # a WAL object newer than the reader's checkpoint
            reached = gate(store, "rd", "get", "wal")  # a slow WAL GET
            t, _, errors = in_thread("rd", rd.refresh)
            try:
                assert reached.wait(WAIT_S)
                db.put(b"c", b"3")
                db.flush_memtable()  # the replay point moves past b's WAL object
                assert admin.run_gc_once("db", store, ZERO).wal  # which goes
            finally:
                finish(store, t)
            assert errors == []
            assert (rd.get(b"a"), rd.get(b"b")) == (b"1", b"2")
            rd.refresh()
            assert list(rd.scan()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
        finally:
            rd.close()


def test_a_managed_reader_reads_while_it_moves_on(store) -> None:  # type: ignore[no-untyped-def]
    """A managed `DbReader` moves its checkpoint to the new tree before it swaps its view (it
    replays the WAL in between); a `get` meanwhile read the old view, whose SSTs nothing pinned
    any more, and after a compaction and a zero-age collection it raised `DataError` (missing
    SST). Now a read that finds an object missing retries on the newer tree once the load has
    finished: the `get` returns the row, and the refresh succeeds."""
    store = FaultyStore(store)
    opts = DbOptions(flush_interval=None, compaction_min_sources=2, compactor_enabled=False)
    with Db.open("db", store, opts) as db:
        for part in range(2):  # SSTs larger than the 64 KiB tail an open reads
            for i in range(4000):
                db.put(b"key%06d" % i, b"v%d-%06d" % (part, i) * 4, await_durable=False)
            db.put(b"a" if part == 0 else b"b", b"%d" % (part + 1))
            db.flush_memtable()
            tick()
        no_cache = ReaderOptions(manifest_poll_interval=None, block_cache_bytes=0)
        rd = DbReader.open("db", store, options=no_cache)
        try:
            assert (rd.get(b"key000000"), rd.get(b"b")) == (b"v1-000000" * 4, b"2")
            db.compact()  # the tree changed: the reader will move its checkpoint
            db.put(b"c", b"3")  # a WAL object its next load replays
            reached = gate(store, "rd", "get", "wal")  # slow WAL GETs: moved, not swapped yet
            t, _, errors = in_thread("rd", rd.refresh)
            try:
                assert reached.wait(WAIT_S)
                assert len(admin.run_gc_once("db", store, ZERO).compacted) == 2  # the old L0s
                reading = threading.Event()
                held = store.gate_when

                def watch(what: str, path: str) -> bool:
                    getter = threading.current_thread().name == "getter"
                    if getter and "/compacted/" in "/" + path:
                        reading.set()
                    return held(what, path)

                store.gate_when = watch
                g, got, get_errors = in_thread("getter", lambda: rd.get(b"key000000"))
                assert reading.wait(WAIT_S)  # the get reads an SST of the old view
            finally:
                finish(store, t)
            g.join(WAIT_S)
            assert not g.is_alive()
            assert get_errors == [] and got == [b"v1-000000" * 4]
            assert errors == []
            assert (rd.get(b"a"), rd.get(b"b"), rd.get(b"c"), rd.get(b"key003999")) == (
                b"1",
                b"2",
                b"3",
                b"v1-003999" * 4,
            )
        finally:
            rd.close()


def test_a_collector_clock_ahead_loses_no_manifest_update(store) -> None:  # type: ignore[no-untyped-def]
    """The collector measured its safety floor for manifests on its own clock. A writer LISTed
    the manifests (latest N) and its create of N+1 was slow; meanwhile N+1 and N+2 were written
    (a checkpoint created and deleted) and a collector whose clock ran hours ahead deleted N+1.
    The writer's create then succeeded and, being within the client window of its LIST, was
    trusted: its L0 flush was recorded below the real latest, and its next flush moved the
    replay point past the WAL that held the first flush's rows, losing an acknowledged write.
    Now the floor is measured on the store's clock: the collector deletes no manifest here and
    both acknowledged writes survive."""
    store = FaultyStore(store)
    opts = DbOptions(flush_interval=None, compactor_enabled=False)
    skewed = ManualClock(time.time_ns() // 1_000_000 + 3 * 3600 * 1000)
    db = Db.open("db", store, opts)
    try:
        db.put(b"first", b"acked-1")  # durable in the WAL
        reached = gate(store, "w", "put-if-absent", "manifest")  # a slow manifest create
        t, _, errors = in_thread("w", db.flush_memtable)
        try:
            assert reached.wait(WAIT_S)  # the writer LISTed and waits on its create
            store.gate_when = None
            cp = admin.create_checkpoint("db", store, CheckpointOptions())  # N+1
            Db.delete_checkpoint("db", store, cp.id)  # N+2
            collected = admin.run_gc_once("db", store, ZERO, clock=skewed).manifests
        finally:
            finish(store, t)
        assert errors == []
        db.put(b"second", b"acked-2")
        db.flush_memtable()
    finally:
        db.close()
    admin.run_gc_once("db", store, ZERO, clock=skewed)
    with Db.open("db", store, opts) as d:
        assert (d.get(b"first"), d.get(b"second")) == (b"acked-1", b"acked-2")
    assert collected == []  # the manifests are all younger than the floor, on the store's clock


def test_a_wal_upload_retried_after_a_lost_response(store) -> None:  # type: ignore[no-untyped-def]
    """A WAL upload whose create landed but whose response was lost, followed by an outage
    longer than the store's retries, fails the put with `UnavailableError` (an unknown outcome,
    as it should). The chunk stays queued, and the next flush created the same id again: it
    found its own object there and the writer failed itself with `FencedError` though no other
    writer existed, and the rows after it were lost. Now an existing object with exactly the
    chunk's bytes counts as this writer's upload: the next put succeeds and, reopened, the
    database has every row."""

    class Flaky(Store):
        outage = 0

        def _call(self, what: str, path: str, fn: Callable[[], Any]) -> Any:
            def wrapped() -> Any:
                if self.outage > 0 and what == "put-if-absent" and "/wal/" in "/" + path:
                    if self.outage == 10:  # the first attempt lands; its response is lost
                        fn()
                    self.outage -= 1
                    raise ConnectionError("network down")
                return fn()

            return super()._call(what, path, wrapped)

    flaky = Flaky(store, max_retries=3, base_delay_s=0.001)
    db = Db.open("db", flaky, DbOptions(flush_interval=None))
    try:
        db.put(b"a", b"1")
        flaky.outage = 10
        with pytest.raises(UnavailableError):
            db.put(b"b", b"2")
        flaky.outage = 0
        db.put(b"c", b"3")
        assert (db.get(b"b"), db.get(b"c")) == (b"2", b"3")
    finally:
        db.close()
    with Db.open("db", flaky) as d:
        assert (d.get(b"a"), d.get(b"b"), d.get(b"c")) == (b"1", b"2", b"3")


def test_a_flush_never_installs_an_older_manifest(store) -> None:  # type: ignore[no-untyped-def]
    """A flush installed the manifest its own update returned without checking that a newer one
    was installed already. When the embedded compactor committed (and installed version N+1)
    between the flush's manifest create (N) and that assignment, the `Db` went back to N, whose
    L0 SSTs N+1 had compacted away; a zero-age collector deleted them and `Db.get` raised
    `DataError` (missing SST) until the next flush. The hook forces that interleaving. Now the
    `Db` only moves forward: after the flush it is on the compactor's version, the latest, and
    reads answer."""
    db = Db.open(
        "db",
        store,
        DbOptions(
            flush_interval=None,
            compaction_min_sources=2,
            # No compactor thread: only the hook's `run_once` compacts. A thread woken by the
            # first flush could run late, under load, and take both L0 SSTs first.
            compactor_enabled=False,
            block_cache_bytes=0,
        ),
    )
    try:
        db.put(b"a", b"1")
        db.flush_memtable()
        tick()
        update = db._fence.update
        installed: list[int] = []

        def update_then_compactor_commits(mutate: Any) -> Any:
            landed = update(mutate)  # the flush's version N
            tick()
            assert db._compactor.run_once()  # the compactor commits N+1 and installs it
            installed.append(db.manifest()[0])
            return landed

        db._fence.update = update_then_compactor_commits
        db.put(b"b", b"2")
        db.flush_memtable()
        db._fence.update = update
        mid, m = db.manifest()
        assert installed and mid == installed[0] == db._manifests.require_latest()[0]
        assert not m.l0
        assert admin.run_gc_once("db", store, ZERO).compacted  # the two L0 SSTs
        assert (db.get(b"a"), db.get(b"b")) == (b"1", b"2")
        assert list(db.scan()) == [(b"a", b"1"), (b"b", b"2")]
    finally:
        db.close()
