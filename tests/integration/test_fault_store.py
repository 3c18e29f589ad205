"""The fault-injecting store: the engine stays correct with latency and transient errors."""

from __future__ import annotations

import threading
import time

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions
from tests.support import FaultyStore


def test_transient_errors_and_lost_responses_lose_nothing(store) -> None:
    faulty = FaultyStore(store, error_rate=0.1, seed=7)
    db = Db.open(
        "db",
        faulty,
        DbOptions(flush_interval=None, l0_sst_size_bytes=8 * 1024, compaction_min_sources=2),
    )
    model = {}
    for i in range(300):
        b = WriteBatch().put(b"a%03d" % (i % 50), b"%d" % i).put(b"b%03d" % (i % 50), b"%d" % i)
        db.write(b)
        model[b"a%03d" % (i % 50)] = model[b"b%03d" % (i % 50)] = b"%d" % i
        if i % 60 == 59:
            db.flush_memtable()
    db.compact()
    db.close()
    assert faulty.injected > 20
    with Db.open("db", store) as clean:
        assert dict(clean.scan()) == model


def test_latency_and_group_commit(store) -> None:
    """With 20 ms per request, a durable put costs one WAL upload (not a flush tick), and
    many concurrent writers share uploads. Counted (`metrics`), not timed: a timing would
    only say how busy the machine was."""
    slow = FaultyStore(store, latency_s=0.02)
    db = Db.open(
        "db", slow, DbOptions(flush_interval=None, gc_enabled=False, compactor_enabled=False)
    )
    before = db.metrics()["wal_uploads_total"]
    for i in range(5):
        db.put(b"k%d" % i, b"v")
    assert db.metrics()["wal_uploads_total"] - before == 5  # one upload each, none extra
    n_threads, each = 64, 25
    start = threading.Barrier(n_threads + 1)

    def writer(t: int) -> None:
        start.wait()
        for i in range(each):
            db.put(b"t%02d-%d" % (t, i), b"x")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    before = db.metrics()["wal_uploads_total"]
    start.wait()
    for th in threads:
        th.join()
    uploads = db.metrics()["wal_uploads_total"] - before
    waits = db.metrics()["durable_wait_seconds_count"]
    db.close()
    # Each upload takes 20 ms; the writers waiting meanwhile ride on the next one.
    assert waits == 5 + n_threads * each
    assert uploads <= n_threads * each / 8, uploads


def test_gate_forces_an_interleaving(store) -> None:
    """Two writers race on one manifest version: the gate holds the first writer's manifest
    write until the second one has opened; the first then finds itself fenced."""
    from slatedb_py.errors import FencedError

    gated = FaultyStore(store)
    first = Db.open(
        "db", gated, DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    )
    first.put(b"a", b"1", await_durable=False)
    gated.gate.clear()
    gated.gate_when = lambda what, path: what == "put-if-absent" and "/manifest/" in path
    result: list[BaseException | None] = []

    def flush() -> None:
        try:
            first.flush_memtable()
            result.append(None)
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=flush)
    t.start()
    time.sleep(0.1)
    second = Db.open(
        "db", store, DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    )
    gated.gate.set()
    t.join()
    assert len(result) == 1 and isinstance(result[0], FencedError)
    assert second.get(b"a") == b"1"  # it was in the WAL the first writer uploaded
    second.close()
    first.close()


def test_an_uploader_going_on_for_others_is_not_failed_by_their_upload(store) -> None:
    """The uploader of a group commit goes on uploading for the writers that parked during
    its upload (`WalWriter._upload_for_waiters`). Its own row is durable by then: a failure
    of that further upload is the waiters' to see, not its. Nothing is lost either way."""
    from slatedb_py.errors import UnavailableError

    gated = FaultyStore(store)
    # The failing upload fails whatever the retries: a few show it as well as the default
    # twelve, whose backoff (about 8 s per store kind) was this test's whole run time.
    gated.max_retries = 2
    opts = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    db = Db.open("db", gated, opts)
    failing = threading.Event()
    wal_puts = [0]

    def gate(what: str, path: str) -> bool:
        if what != "put-if-absent" or "/wal/" not in path:
            return False
        wal_puts[0] += 1
        if failing.is_set():
            raise ConnectionError(f"injected: {path}")
        return wal_puts[0] == 1  # the first WAL upload waits at the gate

    gated.gate.clear()
    gated.gate_when = gate
    outcome: dict[str, BaseException | None] = {}

    def put(name: bytes) -> None:
        try:
            db.put(name, b"v")
            outcome[name.decode()] = None
        except BaseException as e:
            outcome[name.decode()] = e

    first = threading.Thread(target=put, args=(b"first",))
    first.start()
    while wal_puts[0] < 1:  # the first writer's upload is held at the gate
        time.sleep(0.005)
    second = threading.Thread(target=put, args=(b"second",))
    second.start()
    while db._wal.durable.waiting < 1:  # the second writer parked behind that upload
        time.sleep(0.005)
    failing.set()  # from now on WAL uploads fail, after the held one
    gated.gate.set()
    first.join()
    second.join()
    assert outcome["first"] is None  # durable with the held upload
    assert isinstance(outcome["second"], UnavailableError), outcome
    failing.clear()
    db.flush()  # the second row stayed first in line, and goes now
    db.close()
    with Db.open("db", store, opts) as clean:
        assert clean.get(b"first") == b"v" and clean.get(b"second") == b"v"
