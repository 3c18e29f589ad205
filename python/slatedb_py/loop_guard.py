"""The switch that marks engine calls made on an asyncio event loop (`slatedb_py.aio`).

Inside `with inline:`, a call that would have to wait raises `WouldBlock` before it waits:
a read that needs a fetch from the store (`fetch.drive`), and a store request that failed
and would sleep before its retry (`store.Store`). The asyncio twin then runs the call again,
whole, in a worker thread. What runs inline is what answers at once: memory, and the files
of a local folder.
"""

from __future__ import annotations

import threading


class WouldBlock(Exception):
    """Raised within `inline` by a call that would wait."""


class _Inline(threading.local):
    """`with inline:` (a class, not a generator context manager: a hot path)."""

    on = False

    def __enter__(self) -> None:
        self.on = True

    def __exit__(self, *exc: object) -> None:
        self.on = False


inline = _Inline()
