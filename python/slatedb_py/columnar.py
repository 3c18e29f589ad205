"""Scans out as Arrow (`DbIterator.to_arrow`): record batches of `key: binary, value: binary`
built natively from the scan's pages (rust/src/bindings/arrow.rs), no Python object per row.

A batch speaks the Arrow PyCapsule interface, and so does the iterator of batches
(`__arrow_c_stream__`): pyarrow (`pyarrow.RecordBatchReader.from_stream(it)`,
`pyarrow.record_batch(b)`), polars (`polars.DataFrame(it)`) and DuckDB (`duckdb.sql("select
... from it")`) read them without copying, and none of them is needed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from slatedb_py import _native
from slatedb_py.errors import InvalidArgumentError

RecordBatch = _native.RecordBatch

# Rows per batch: large enough that a batch's crossing costs nothing per row, small enough
# for a consumer's working set.
BATCH_ROWS = 65_536
# Bytes of keys and values per batch (one row more, however large, if a row alone is
# larger): what bounds memory when values are big. An Arrow binary column's offsets are
# 32-bit, so a batch holds under 2 GiB.
BATCH_BYTES = 64 << 20
_MAX_BATCH_BYTES = 2**31 - 1


def check_batch_size(batch_rows: Any, batch_bytes: Any) -> None:
    for name, v, top in (
        ("batch_rows", batch_rows, None),
        ("batch_bytes", batch_bytes, _MAX_BATCH_BYTES),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InvalidArgumentError(f"{name} must be a positive int, not {v!r:.40}")
        if top is not None and v > top:
            raise InvalidArgumentError(
                f"{name} of {v} is more than an Arrow binary column holds ({top})"
            )


def batch_of(rows: list[tuple[bytes, bytes]]) -> RecordBatch:
    """A batch of `(key, value)` rows already in Python."""
    return _native.record_batch(rows)


def split_rows(
    rows: list[tuple[bytes, bytes]], batch_rows: int, batch_bytes: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The first batch's worth of `rows` (one row at least), and the rest."""
    n = size = 0
    for k, v in rows[:batch_rows]:
        size += len(k) + len(v)
        if size > batch_bytes and n > 0:
            break
        n += 1
    return rows[:n], rows[n:]


class ArrowBatches:
    """The rest of a scan as Arrow record batches (`to_arrow`): iterate it, or hand it to
    anything that reads an Arrow stream (module docstring). Each batch holds at most
    `batch_rows` rows and `batch_bytes` bytes of keys and values (a single larger row comes
    alone), so a scan of any size streams through bounded memory.

    `first`: rows the iterator had taken already, handed out first; `load(last)`: the next
    batch after the key `last` (empty or None at the end)."""

    def __init__(
        self,
        first: list[tuple[bytes, bytes]],
        batch_rows: int,
        batch_bytes: int,
        load: Callable[[bytes | None], RecordBatch | None],
        last: bytes | None = None,
    ) -> None:
        self._first = first
        self._rows, self._bytes = batch_rows, batch_bytes
        self._load: Callable[[bytes | None], RecordBatch | None] | None = load
        self._last = last

    def __iter__(self) -> Iterator[RecordBatch]:
        return self

    def __next__(self) -> RecordBatch:
        b = self.next_batch()
        if b is None:
            raise StopIteration
        return b

    def next_batch(self) -> RecordBatch | None:
        """The next batch, or None once the scan is done."""
        if self._first:
            rows, self._first = split_rows(self._first, self._rows, self._bytes)
            self._last = rows[-1][0]
            return batch_of(rows)
        if self._load is None:
            return None
        b = self._load(self._last)
        if b is None or len(b) == 0:
            self._load = None
            return None
        self._last = b.row(-1)[0]
        return b

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The batches still to come as an Arrow C stream (read once, by one reader)."""
        return _native.arrow_stream(self.next_batch, requested_schema)
