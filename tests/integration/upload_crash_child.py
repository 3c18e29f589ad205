"""Child process of the upload crash test: a standalone compactor whose store stalls in the
middle of an output's multipart upload (after its second part), names that output on stdout,
and waits there to be killed.

    upload_crash_child.py KIND WHERE BUCKET ROOT    (KIND: local | s3)
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, sys.argv[4])

from slatedb_py.clock import SystemClock
from slatedb_py.compactor import Compactor
from slatedb_py.config import DbOptions
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from slatedb_py.upload import Upload
from tests.support import reopen_store

inner = reopen_store(sys.argv[1], sys.argv[2], sys.argv[3])


class Stalling(Store):
    @contextmanager
    def upload(self, path: str) -> Iterator[Upload]:
        with super().upload(path) as up:
            send, sent = up.write, 0

            def write(data: Any) -> None:
                nonlocal sent
                send(data)
                sent += 1
                if sent == 2:
                    print(path, flush=True)
                    time.sleep(3600)

            up.write = write  # type: ignore[method-assign]
            yield up


store = Stalling(inner, part_size=5 * 1024 * 1024)
Compactor(store, DbPaths.of("db"), DbOptions(), SystemClock()).run_once(full=True)
print("finished without stalling", flush=True)
