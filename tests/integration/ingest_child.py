"""Child process for the ingest crash test: round after round, every key written again by one
sorted `put_many` (an ingest), each round acknowledged on stdout once it returns."""

import sys

import numpy as np
from obstore.store import LocalStore

from slatedb_py import Db
from slatedb_py.config import DbOptions

root, n = sys.argv[1], int(sys.argv[2])
opts = DbOptions(flush_interval=None, l0_sst_size_bytes=16 << 10)
keys = np.array([b"k%08d" % i for i in range(n)], dtype="S9")
with Db.open("db", LocalStore(root), opts) as db:
    start = int(db.get(b"round") or b"0")
    for r in range(start, start + 1000):
        db.put_many(keys, np.full(n, b"%06d" % r * 8, dtype="S48"), atomic=False)
        db.put(b"round", b"%d" % (r + 1))
        print(r, flush=True)
