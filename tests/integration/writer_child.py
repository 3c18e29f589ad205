"""Child process: a writer doing durable puts (with L0 flushes, so it edits the manifest
often) until its stdin closes; prints each acknowledged key."""

import sys
import threading

from obstore.store import LocalStore

from slatedb_py import Db
from slatedb_py.config import DbOptions

root = sys.argv[1]
db = Db.open("db", LocalStore(root), DbOptions(l0_sst_size_bytes=4096, gc_enabled=False))
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
i = 0
while not stop.is_set():
    key = b"key%06d" % i
    db.put(key, b"x" * 64)
    print(key.decode(), flush=True)
    i += 1
db.close()
print("closed", flush=True)
