"""Child process for the crash test: durable write batches, each acknowledged on stdout."""

import sys
from datetime import timedelta

from obstore.store import LocalStore

from slatedb_py import Db, WriteBatch
from slatedb_py.config import DbOptions

root, start = sys.argv[1], int(sys.argv[2])
db = Db.open(
    "crash/db",
    LocalStore(root),
    DbOptions(flush_interval=timedelta(milliseconds=5), l0_sst_size_bytes=16 * 1024),
)
i = start
while True:
    b = WriteBatch()
    for part in range(3):
        b.put(b"batch%07d/%d" % (i, part), b"payload-%d" % i * 4)
    db.write(b)  # durable when it returns
    print(i, flush=True)
    i += 1
