"""Child process for the killed-backup test: backs up `<root>/db` into `<root>/bak` with
each SST upload slowed down, so that the parent can kill it half-way."""

import sys
import threading
from typing import Any

from obstore.store import LocalStore

from slatedb_py import admin
from slatedb_py.store import Store


class Slow(Store):
    def put(self, path: str, data: Any) -> None:
        super().put(path, data)
        if "/compacted/" in path:
            threading.Event().wait(0.3)


store = LocalStore(sys.argv[1])
print("copying", flush=True)
admin.create_backup("db", store, "bak", Slow(store))
print("done", flush=True)
