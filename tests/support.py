"""Stores for tests: every store-parametrized test runs on each kind."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from obstore.store import LocalStore, MemoryStore

STORE_KINDS = ["memory", "local"]


@contextmanager
def make_store(kind: str) -> Iterator[Any]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "local":
        with tempfile.TemporaryDirectory() as d:
            yield LocalStore(d)
    else:
        raise ValueError(kind)
