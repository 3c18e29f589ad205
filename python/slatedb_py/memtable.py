"""The memtable is native (rust/src/memtable.rs): rows in (key, seq desc) order plus the
queue of rows not yet in a WAL object. This module is its one door."""

from __future__ import annotations

from slatedb_py import _native

# The native types, named for the modules that hold them but may not import `_native`.
Memtable = _native.Memtable
DurableWatermark = _native.DurableWatermark
# Rows taken from a memtable's WAL queue, encoded when uploaded (`WalWriter.queue`).
WalRows = _native.WalRows


def new_memtable(memory_limit: int | None = None) -> _native.Memtable:
    """A memtable; once it holds `memory_limit` bytes of memory its writes report it full
    (as if it had reached the L0 size), so the writer freezes it."""
    return _native.Memtable() if memory_limit is None else _native.Memtable(memory_limit)


def new_durable_watermark(durable_seq: int) -> _native.DurableWatermark:
    """Group commit's meeting point (rust/src/bindings/durable.rs): writers wait there for
    their seq to reach the WAL with the GIL released; one of them at a time uploads."""
    return _native.DurableWatermark(durable_seq)
