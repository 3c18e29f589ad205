"""A zero-age garbage collector (min_age=0, WAL fences deletable at age 0) running nonstop next to
a writer with an embedded compactor, concurrent puts / deletes / batches from several threads,
frequent L0 flushes and full compactions, on a store that fails 5% of requests (half of them as
lost responses). Every acknowledged write must survive a reopen; a restore in the middle of it
all must fence the writers and yield exactly the checkpoint's state.

Reads run meanwhile too: none may fail (a flush once reinstalled an older manifest over the
compactor's, and reads then met SSTs the collector had taken).

The collector's clock is the real one: COLLECTOR_FLOOR (manifests, fences) is what keeps the
manifest and WAL protocols safe here (slatedb_py.safety)."""

from __future__ import annotations

import collections
import random
import threading
import time
from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, WriteBatch, admin
from slatedb_py.clock import SystemClock
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions
from slatedb_py.errors import FencedError, UnavailableError
from slatedb_py.garbage_collector import collect_garbage
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from tests.support import FaultyStore

ZERO = GcOptions(min_age=timedelta(0), delete_wal_fences=True, wal_fence_min_age=timedelta(0))
OPTS = DbOptions(
    flush_interval=timedelta(milliseconds=10),
    l0_sst_size_bytes=4096,
    compaction_min_sources=2,
    compactor_poll_interval=timedelta(milliseconds=10),
    gc=GcOptions(
        min_age=timedelta(0), interval=timedelta(milliseconds=20)
    ),  # the Db's own collector too
)
WRITERS = 3


class Workload:
    """Writer threads on disjoint keys against a model of acknowledged writes, a flusher
    (flush_memtable / compact) and a zero-age collector loop."""

    def __init__(self, db: Db, store: Store, seed: int) -> None:
        self.db, self.store, self.seed = db, store, seed
        self.model: dict[bytes, bytes | None] = {}
        self.uncertain: dict[bytes, set[bytes | None]] = collections.defaultdict(set)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.paused = threading.Semaphore(0)
        self.fenced = 0
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._writer, args=(i,), daemon=True) for i in range(WRITERS)
        ]
        self.threads += [
            threading.Thread(target=self._flusher, daemon=True),
            threading.Thread(target=self._collector, daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), f"{t.name} hung"
        assert not self.errors, self.errors[:3]

    def quiesce(self) -> None:
        self.pause.set()
        for _ in range(WRITERS):
            assert self.paused.acquire(timeout=30), f"a writer stopped early: {self.errors[:3]}"

    def _ack(self, changes: dict[bytes, bytes | None], op: object) -> None:
        try:
            op()  # type: ignore[operator]
        except (UnavailableError, FencedError):
            with self.lock:
                for k, v in changes.items():
                    self.uncertain[k].add(v)
            raise
        with self.lock:
            self.model.update(changes)

    def _writer(self, tid: int) -> None:
        rng = random.Random(self.seed * 100 + tid)
        keys = [b"t%d-%03d" % (tid, i) for i in range(50)]
        n = 0
        while not self.stop.is_set():
            if self.pause.is_set():
                self.paused.release()
                while self.pause.is_set() and not self.stop.is_set():
                    time.sleep(0.005)
            n += 1
            r = rng.random()
            try:
                if r < 0.5:
                    k = rng.choice(keys)
                    v = b"%s=%d" % (k, n) + b"x" * rng.randint(0, 300)
                    self._ack({k: v}, lambda k=k, v=v: self.db.put(k, v))
                elif r < 0.65:
                    self.db.get(rng.choice(keys))
                    if rng.random() < 0.05:
                        sum(1 for _ in self.db.scan())
                elif r < 0.8:
                    k = rng.choice(keys)
                    self._ack({k: None}, lambda k=k: self.db.delete(k))
                else:
                    batch, changes = WriteBatch(), {}
                    for k in rng.sample(keys, 4):
                        if rng.random() < 0.7:
                            changes[k] = b"%s=b%d" % (k, n)
                            batch.put(k, changes[k])
                        else:
                            changes[k] = None
                            batch.delete(k)
                    self._ack(changes, lambda batch=batch: self.db.write(batch))
            except UnavailableError:
                continue
            except FencedError:
                with self.lock:
                    self.fenced += 1
                return
            except BaseException as e:
                self.errors.append(e)
                return

    def _flusher(self) -> None:
        rng = random.Random(self.seed)
        while not self.stop.is_set():
            try:
                self.db.compact() if rng.random() < 0.25 else self.db.flush_memtable()
            except (UnavailableError, FencedError):
                pass
            except BaseException as e:
                self.errors.append(e)
                return
            time.sleep(rng.uniform(0.01, 0.06))

    def _collector(self) -> None:
        while not self.stop.is_set():
            try:
                collect_garbage(self.store, DbPaths.of("db"), ZERO, SystemClock())
            except UnavailableError:
                pass
            except BaseException as e:
                self.errors.append(e)
                return
            time.sleep(0.005)


def _check(
    inner: object, expected: dict[bytes, bytes | None], uncertain: dict[bytes, set[bytes | None]]
) -> None:
    with Db.open("db", inner, DbOptions(compactor_enabled=False, gc_enabled=False)) as db:
        wrong = [
            (k, db.get(k), v)
            for k, v in expected.items()
            if db.get(k) != v and db.get(k) not in uncertain.get(k, ())
        ]
        extra = [k for k, _ in db.scan(None, None) if k not in expected and k not in uncertain]
    assert not wrong, f"{len(wrong)} keys differ from the acknowledged writes, e.g. {wrong[:3]}"
    assert not extra, f"keys never acknowledged: {extra[:3]}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_acknowledged_writes_survive_a_zero_age_collector(seed: int) -> None:
    inner = MemoryStore()
    store = FaultyStore(inner, error_rate=0.05, seed=seed)
    db = Db.open("db", store, OPTS)
    work = Workload(db, store, seed)
    work.start()
    try:
        time.sleep(6)
    finally:
        work.finish()
    try:
        db.close()
    except UnavailableError:
        pass  # the rows are in the WAL; the reopen replays them
    assert len(work.model) > 100
    _check(inner, work.model, work.uncertain)


@pytest.mark.slow
def test_restore_under_a_zero_age_collector_is_exactly_the_checkpoint() -> None:
    inner = MemoryStore()
    store = FaultyStore(inner, error_rate=0.05, seed=3)
    db = Db.open("db", store, OPTS)
    work = Workload(db, store, 3)
    work.start()
    try:
        _restore_midway(db, store, inner, work)
    finally:
        work.finish()
        db.close()


def _restore_midway(db: Db, store: Store, inner: object, work: Workload) -> None:
    time.sleep(2)
    work.quiesce()
    while True:
        try:
            cp = db.create_checkpoint(CheckpointOptions(lifetime=timedelta(minutes=5)))
            break
        except UnavailableError:
            continue
    with work.lock:
        expected = dict(work.model)
        uncertain = {k: set(v) for k, v in work.uncertain.items()}
    work.pause.clear()
    time.sleep(2)
    for _ in range(5):
        try:
            admin.restore_checkpoint("db", store, cp.id)
            break
        except UnavailableError:
            continue
    deadline = time.monotonic() + 20
    while work.fenced < WRITERS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert work.fenced == WRITERS, "a writer kept writing after the restore"
    work.finish()
    _check(inner, expected, uncertain)
