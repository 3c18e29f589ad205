"""The memtable is native (rust/src/memtable.rs): rows in (key, seq desc) order plus the
queue of rows not yet in a WAL object. This module is its one door."""

from __future__ import annotations

from typing import Any

from slatedb_py import _native


def new_memtable() -> Any:
    return _native.Memtable()
