"""One role of the multi-process soak, on an S3 bucket with injected faults.

    soak_child.py ROLE ENDPOINT BUCKET   (runs until stdin closes)

writer:    durable batches setting all three keys of a group to the batch number; prints
           "ack GROUP N" per acknowledged batch.
reader:    follows the writer; checks that a group's keys never disagree (no half batch) and
           never go backwards; prints "ok READS" or "bad ...".
compactor: a standalone compactor loop. collector: garbage collection rounds.
"""

import random
import sys
import threading
import time
from datetime import timedelta

sys.path.insert(0, sys.argv[4] if len(sys.argv) > 4 else ".")

from slatedb_py import Db, DbReader, WriteBatch
from slatedb_py.clock import SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions
from slatedb_py.garbage_collector import collect_garbage
from slatedb_py.paths import DbPaths
from tests.support import FaultyStore, S3Server

role, endpoint, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
server = S3Server.__new__(S3Server)
server.endpoint = endpoint
store = FaultyStore(server.store(bucket), error_rate=0.05, seed=hash(role) & 0xFFFF)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
GROUPS = 20
opts = DbOptions(
    flush_interval=timedelta(milliseconds=20),
    l0_sst_size_bytes=16 * 1024,
    compactor_enabled=False,  # the compactor is its own process
    gc_enabled=False,  # and so is the collector
)

if role == "writer":
    db = Db.open("soak", store, opts)
    rng = random.Random(1)
    n = 0
    while not stop.is_set():
        n += 1
        g = rng.randrange(GROUPS)
        b = WriteBatch()
        for part in "abc":
            b.put(b"g%02d/%s" % (g, part.encode()), b"%08d" % n)
        db.write(b)
        print(f"ack {g} {n}", flush=True)
    db.close()
    print("closed", flush=True)
elif role == "reader":
    reader = DbReader.open(
        "soak",
        store,
        options=ReaderOptions(
            manifest_poll_interval=None, checkpoint_lifetime=timedelta(seconds=30)
        ),
    )
    last: dict[int, int] = {}
    reads = 0
    while not stop.is_set():
        try:
            reader.refresh()
            rows = dict(reader.scan())
        except Exception as e:  # a transient failure of a whole refresh: try again
            print(f"retry {type(e).__name__}", flush=True)
            continue
        for g in range(GROUPS):
            vals = {rows.get(b"g%02d/%s" % (g, p.encode())) for p in "abc"}
            if len(vals) != 1:
                print(f"bad half-batch group {g}: {vals}", flush=True)
            v = vals.pop()
            if v is not None:
                if int(v) < last.get(g, 0):
                    print(f"bad backwards group {g}: {int(v)} < {last[g]}", flush=True)
                last[g] = int(v)
        reads += 1
        time.sleep(0.05)
    reader.close()
    print(f"ok {reads}", flush=True)
elif role == "compactor":
    c = Compactor(
        store,
        DbPaths.of("soak"),
        DbOptions(compactor_poll_interval=timedelta(milliseconds=100), compaction_min_sources=2),
        SystemClock(),
    )
    threading.Thread(target=lambda: (stop.wait(), c.stop.set(), c.wake.set()), daemon=True).start()
    c.run_forever()
    print(f"ok {c.compactions}", flush=True)
elif role == "collector":
    rounds = 0
    while not stop.wait(1.0):
        try:
            collect_garbage(
                store, DbPaths.of("soak"), GcOptions(min_age=timedelta(seconds=2)), SystemClock()
            )
            rounds += 1
        except Exception as e:
            print(f"retry {type(e).__name__}", flush=True)
    print(f"ok {rounds}", flush=True)
