"""`aio.admin`: every function of `slatedb_py.admin`, awaitable. Each runs the sync function
in a worker thread (they are object-store work from start to end: checkpoints, clones,
restores, backups, the collector), so the event loop stays free; arguments, results and
errors are the sync function's."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from slatedb_py import admin as _sync

P = ParamSpec("P")
R = TypeVar("R")


def _awaitable(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(fn, *args, **kwargs)

    return run


__all__: list[str] = []
for _name in _sync.__all__:
    _fn = getattr(_sync, _name)
    if callable(_fn) and not isinstance(_fn, type):  # functions, not the result classes
        globals()[_name] = _awaitable(_fn)
        __all__.append(_name)
    else:
        globals()[_name] = _fn  # the result types, for annotations
        __all__.append(_name)
