"""Bulk ingest (`slatedb_py.ingest`): a large sorted `put_many` / `delete_many` with
`atomic=False` goes straight to L0 SSTs. Newer writes still win over it, older ones lose,
snapshots never see it half-way, transactions and unsorted input take the memtable path, and
what it wrote reads back the same after a reopen, next to a dict model."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from obstore.store import LocalStore

from slatedb_py import Db, WalReader, admin
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import HistoryGoneError
from tests.support import FaultyStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("ingest_child.py")
OPTS = DbOptions(
    flush_interval=None, compactor_enabled=False, gc_enabled=False, l0_sst_size_bytes=16 << 10
)


def _arrays(lo: int, hi: int, tag: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys `k%08d` for lo..hi, ascending, and 40-byte values marked with `tag`."""
    keys = np.array([b"k%08d" % i for i in range(lo, hi)], dtype="S9")
    values = np.array([b"%02d-%036d" % (tag, i) for i in range(lo, hi)], dtype="S40")
    return keys, values


def _wal_keys(store) -> set[bytes]:  # type: ignore[no-untyped-def]
    return {c.key for c in WalReader("db", store).changes(since_seq=0)}


def test_a_sorted_bulk_load_skips_the_wal_and_newer_writes_win(store) -> None:  # type: ignore[no-untyped-def]
    gated = FaultyStore(store)
    keys, values = _arrays(0, 3000, 1)  # about 150 KB: several SSTs of 16 KiB
    db = Db.open("db", gated, OPTS)
    db.put(b"k00000005", b"before")
    db.flush_memtable()  # the first SST written from here on is the ingest's
    uploads = [0]

    def gate(what: str, path: str) -> bool:
        if what != "put" or "/compacted/" not in path:
            return False
        uploads[0] += 1
        return uploads[0] == 1

    gated.gate.clear()
    gated.gate_when = gate
    loader = threading.Thread(target=db.put_many, args=(keys, values), kwargs={"atomic": False})
    loader.start()
    snaps: list[object] = []
    opener = threading.Thread(target=lambda: snaps.append(db.snapshot()))
    try:
        while uploads[0] < 1:  # its first SST is held at the gate: its seq is taken
            time.sleep(0.005)
        db.put(b"k00000007", b"during")  # writers go on, above the ingest's seq
        assert db.get(b"k00000005") == b"before"  # nothing of it is in the tree yet
        opener.start()
        opener.join(0.2)
        assert opener.is_alive(), "a snapshot started during an ingest waits for its end"
    finally:
        gated.gate.set()
        loader.join()
    opener.join()
    snap = snaps[0]
    assert db.get(b"k00000005") == bytes(values[5])  # newer than "before"
    assert db.get(b"k00000007") == b"during"  # newer than the ingest
    assert snap.get(b"k00000007") == b"during" and snap.get(b"k00000006") == bytes(values[6])  # type: ignore[attr-defined]
    model = {bytes(k): bytes(v) for k, v in zip(keys, values, strict=True)}
    model[b"k00000007"] = b"during"
    assert dict(db.scan()) == model
    assert len(db.manifest()[1].l0) >= 8
    db.close()
    # The ingested rows are in no WAL object; the writes around them are.
    assert _wal_keys(store) == {b"k00000005", b"k00000007"}
    with Db.open("db", store, OPTS) as again:
        assert dict(again.scan()) == model
        again.delete_many(keys[1000:], atomic=False)  # an ingest of tombstones (18 KB)
        for k in keys[1000:]:
            del model[bytes(k)]
        assert dict(again.scan()) == model
    with Db.open("db", store, OPTS) as again:
        assert dict(again.scan()) == model
    # The newest write is an ingest: the stream reports its seq as not in the WAL.
    with pytest.raises(HistoryGoneError, match="a bulk ingest writes none"):
        _wal_keys(store)


def test_what_the_memtable_path_keeps_writing(store) -> None:  # type: ignore[no-untyped-def]
    """An open transaction, unsorted keys, a small input or `atomic=True`: the WAL has them."""
    keys, values = _arrays(0, 2000, 2)
    with Db.open("db", store, OPTS) as db:
        txn = db.begin()
        db.put_many(keys[:500], values[:500], atomic=False)  # a transaction is open
        txn.rollback()
        shuffled = list(range(500, 1000))
        random.Random(3).shuffle(shuffled)
        db.put_many(keys[shuffled], values[shuffled], atomic=False)  # not ascending
        db.put_many(keys[1000:1100], values[1000:1100], atomic=False)  # under one SST
        db.put_many(keys[1100:1400], values[1100:1400])  # atomic
        db.put_many(keys[1400:], values[1400:], atomic=False)  # ingested
        db.put(b"zz", b"after")  # the stream skips the ingest's seq between WAL writes
        assert db.get_many(keys) == [bytes(v) for v in values]
    assert _wal_keys(store) == {bytes(k) for k in keys[:1400]} | {b"zz"}


def test_ttl_of_ingested_rows() -> None:
    from obstore.store import MemoryStore

    clock = ManualClock(1_000_000)
    keys, values = _arrays(0, 1000, 3)
    with Db.open("db", MemoryStore(), OPTS, clock=clock) as db:
        db.put_many(keys, values, ttl=timedelta(seconds=10), atomic=False)
        assert db.get(b"k00000010") == bytes(values[10])
        clock.advance(11_000)
        assert db.get(b"k00000010") is None and list(db.scan()) == []


@pytest.mark.parametrize("seed", range(6))
def test_ingests_mixed_with_writes_match_a_dict_model(seed: int) -> None:
    from obstore.store import MemoryStore

    rng = random.Random(seed)
    store = MemoryStore()
    opts = DbOptions(
        flush_interval=None, gc_enabled=False, l0_sst_size_bytes=4 << 10,
        compactor_enabled=rng.random() < 0.5, compactor_poll_interval=timedelta(milliseconds=5),
    )  # fmt: skip
    model: dict[bytes, bytes] = {}
    db = Db.open("db", store, opts)
    snaps: list[tuple[object, dict[bytes, bytes]]] = []
    for step in range(30):
        lo = rng.randrange(0, 3000)
        hi = lo + rng.randrange(1, 400)
        keys, values = _arrays(lo, hi, step)
        op = rng.random()
        if op < 0.35:
            db.put_many(keys, values, atomic=False, await_durable=False)
            model.update((bytes(k), bytes(v)) for k, v in zip(keys, values, strict=True))
        elif op < 0.5:
            db.delete_many(keys, atomic=False, await_durable=False)
            for k in keys:
                model.pop(bytes(k), None)
        elif op < 0.8:
            for _ in range(rng.randrange(1, 30)):
                k = b"k%08d" % rng.randrange(lo, hi)
                if rng.random() < 0.8:
                    db.put(k, b"single-%d" % step, await_durable=False)
                    model[k] = b"single-%d" % step
                else:
                    db.delete(k, await_durable=False)
                    model.pop(k, None)
        elif op < 0.9:
            db.flush_memtable()
        else:
            snaps.append((db.snapshot(), dict(model)))
        if rng.random() < 0.1:
            db.close()
            db = Db.open("db", store, opts)
            snaps.clear()
    assert dict(db.scan()) == model
    for snap, then in snaps:
        assert dict(snap.scan()) == then  # type: ignore[attr-defined]
    db.compact()
    assert dict(db.scan()) == model
    db.close()
    with Db.open("db", store, opts) as again:
        assert dict(again.scan()) == model


@pytest.mark.slow
def test_a_writer_killed_mid_ingest_keeps_a_prefix_of_it(tmp_path: Path) -> None:
    """SIGKILL at random moments of back-to-back ingests of every key: the database opens, and
    in key order its values are the last acknowledged round's, after a prefix of the next
    round's (SSTs are recorded one by one, in key order); a zero-age collection keeps that."""
    n, root = 20_000, str(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(11)
    opts = DbOptions(flush_interval=None, gc_enabled=False, l0_sst_size_bytes=16 << 10)
    acked = -1
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), root, str(n)], env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one round done: the next one is under way
        assert first, "the child wrote no round"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acked = max([acked, *(int(x) for x in (first + out).split())])
        admin.run_gc_once("db", LocalStore(root), GcOptions(min_age=timedelta(0)))
        with Db.open("db", LocalStore(root), opts) as db:
            rows = list(db.scan(b"k", b"l"))
            assert [k for k, _ in rows] == [b"k%08d" % i for i in range(n)]
            rounds = [int(v[:6]) for _, v in rows]
            done = int(db.get(b"round") or b"0") - 1
            assert done >= acked, (done, acked)  # every acknowledged round is durable
            cut = sum(1 for r in rounds if r == done + 1)
            assert rounds == [done + 1] * cut + [done] * (n - cut), "not a prefix"


def test_a_store_failing_mid_ingest_leaves_a_prefix_and_a_working_writer(store) -> None:  # type: ignore[no-untyped-def]
    from slatedb_py.errors import UnavailableError

    faulty = FaultyStore(store)
    keys, values = _arrays(0, 3000, 4)
    uploads = [0]

    def fail_third_sst(what: str, path: str) -> bool:
        if what == "put" and "/compacted/" in path:
            uploads[0] += 1
            if uploads[0] >= 3:
                raise ConnectionError(f"injected: {path}")
        return False

    db = Db.open("db", faulty, OPTS)
    faulty.gate_when = fail_third_sst
    with pytest.raises(UnavailableError):
        db.put_many(keys, values, atomic=False)
    faulty.gate_when = None
    got = dict(db.scan())
    want = {bytes(k): bytes(v) for k, v in zip(keys, values, strict=True)}
    prefix = [bytes(k) for k in keys[: len(got)]]
    assert 0 < len(got) < len(keys) and sorted(got) == prefix
    assert all(got[k] == want[k] for k in got)
    db.put(b"k00002999", b"still writing")  # the writer goes on
    db.put_many(keys[:100], values[:100])
    snap = db.snapshot()  # nothing waits on the failed ingest
    assert snap.get(b"k00002999") == b"still writing"
    db.close()
    with Db.open("db", store, OPTS) as again:
        assert again.get(b"k00002999") == b"still writing"
        assert len(dict(again.scan())) == len(got) + 1
