"""A write acknowledged as durable must be in a WAL object, whatever a concurrent freeze does.

`Db._freeze` cut the active memtable's last WAL chunk, released the lock, and only then swapped
in a new memtable. A write landing in that gap joined the old memtable's WAL queue, which
nobody would take again; the next durable flush then advanced the durability watermark past
it, so its writer was told "durable" while the row sat only in a frozen memtable. A crash
before that memtable's L0 flush lost it. Now the cut and the swap share one critical section.

The test holds every L0 upload (so frozen memtables stay in memory only), runs durable
writers while memtables freeze every few writes, then "crashes" by opening a second writer
(the first is abandoned, never closed): every acknowledged key must be there.
"""

from __future__ import annotations

import threading
from typing import Any

from obstore.store import MemoryStore

from slatedb_py import Db
from slatedb_py.config import DbOptions
from slatedb_py.errors import SlateDBError
from slatedb_py.store import Store


class HoldL0(Store):
    """Never completes an upload under compacted/: L0 SSTs are never written."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.gate = threading.Event()

    def put(self, path: str, data: Any) -> None:
        if "/compacted/" in path:
            self.gate.wait()
            raise SlateDBError("held")
        super().put(path, data)


def test_every_acknowledged_write_survives_a_crash_with_frozen_memtables() -> None:
    inner = MemoryStore()
    store = HoldL0(inner)
    opts = DbOptions(
        flush_interval=None,
        l0_sst_size_bytes=2048,
        compactor_enabled=False,
        gc_enabled=False,
        max_unflushed_bytes=1 << 30,
    )
    db = Db.open("db", store, opts)
    acked: list[bytes] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(150):
            k = b"w%02d-%04d" % (t, i)
            db.put(k, b"x" * 40)  # durable when it returns
            with lock:
                acked.append(k)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acked) == 1200
    # Crash: the first writer is abandoned with its frozen memtables unflushed.
    survivor = Db.open(
        "db",
        Store(inner),
        DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False),
    )
    try:
        missing = [k for k in acked if survivor.get(k) is None]
        assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    finally:
        survivor.close()
        store.gate.set()
