"""The switch that marks engine calls made on an asyncio event loop (`slatedb_py.aio`).

Inside `with inline:`, a call that would have to wait raises `WouldBlock` before it waits:
a read that needs a fetch from the store (`fetch.drive`), and a store request that failed
and would sleep before its retry (`store.Store`). The asyncio twin then runs the call again,
whole, in a worker thread. What runs inline is what answers at once: memory, and the files
of a local folder.
"""

from __future__ import annotations

from threading import get_ident


class WouldBlock(Exception):
    """Raised within `inline` by a call that would wait."""


class _Inline:
    """`with inline:` marks the calling thread; `inline.here()` is True on that thread only.

    The mark is one slot holding the thread's id, not a `threading.local`: setting a
    thread-local costs about 40 ns, twice per read on the twin's hot path, where a whole
    get costs a microsecond. A thread sees only a mark it set itself (a worker thread
    serving a read never takes it for its own), so the slot can only err the safe way: two
    event loops in two threads may overwrite each other's mark, and the one overwritten
    then waits in place for that one call, as a sync call would. (A class, not a generator
    context manager: a hot path.)"""

    owner = 0  # the id of the thread inside `with inline:`, 0 for none

    def __enter__(self) -> None:
        self.owner = get_ident()

    def __exit__(self, *exc: object) -> None:
        self.owner = 0

    def here(self) -> bool:
        return self.owner == get_ident()


inline = _Inline()
