"""A transaction's scan (`DbTransaction.scan`): the snapshot's rows with the transaction's
own writes merged in.

The snapshot's rows come from a `DbIterator` a page at a time; the transaction's writes in the
range are taken (sorted, merge operands already folded) when the scan starts, as SlateDB takes
its write batch's iterator then, so writes made after that do not show. With no own write in
the range every call goes straight to the `DbIterator` (no Python step per row).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from slatedb_py.batch import check_key
from slatedb_py.columnar import (
    BATCH_BYTES,
    BATCH_ROWS,
    ArrowBatches,
    RecordBatch,
    batch_of,
    check_batch_size,
)
from slatedb_py.errors import ClosedError, InvalidArgumentError
from slatedb_py.read_path import SCAN_PAGE, DbIterator, check_seek
from slatedb_py.txn_conflicts import Range


class TxnIterator:
    """A transaction's scan: the snapshot's rows (a `DbIterator`) with the transaction's own
    writes (`own`: (key, value or None for a delete), in scan order) merged in, an own write
    replacing the snapshot's row of its key. Iterate it, or take `next_batch(n)`; `seek`
    forward as `DbIterator.seek`; `close` (or leaving a `with` block) ends it."""

    def __init__(
        self,
        base: DbIterator,
        own: list[tuple[bytes, bytes | None]],
        reverse: bool,
        bounds: Range = (None, None),
    ) -> None:
        self._base = base
        self._bounds = bounds
        self._own = own
        self._at = 0  # next row of `own`
        self._rows: deque[tuple[bytes, bytes]] = deque()  # base rows taken, not yet returned
        self._base_done = False
        self._reverse = reverse
        self._last: bytes | None = None
        self._closed = False

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return self if self._own else iter(self._base)

    def __next__(self) -> tuple[bytes, bytes]:
        if not self._own:
            return next(self._base)
        row = self._next()
        if row is None:
            raise StopIteration
        return row

    def _first(self, a: bytes, b: bytes) -> bool:
        return a > b if self._reverse else a < b

    def _next(self) -> tuple[bytes, bytes] | None:
        if self._closed:
            raise ClosedError("this iterator is closed")
        while True:
            if not self._rows and not self._base_done:
                page = self._base.next_batch(SCAN_PAGE)
                self._rows.extend(page)
                self._base_done = not page
            base = self._rows[0] if self._rows else None
            own = self._own[self._at] if self._at < len(self._own) else None
            if own is None:
                if base is None:
                    return None
                row = self._rows.popleft()
            elif base is None or not self._first(base[0], own[0]):
                self._at += 1
                if base is not None and base[0] == own[0]:
                    self._rows.popleft()
                if own[1] is None:
                    continue  # deleted in this transaction
                row = (own[0], own[1])
            else:
                row = self._rows.popleft()
            self._last = row[0]
            return row

    def next_batch(self, n: int) -> list[tuple[bytes, bytes]]:
        """Up to `n` pairs (fewer at the end); an empty list once finished."""
        if not self._own:
            return self._base.next_batch(n)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidArgumentError(f"next_batch needs a positive int, not {n!r:.40}")
        out: list[tuple[bytes, bytes]] = []
        while len(out) < n and (row := self._next()) is not None:
            out.append(row)
        return out

    def to_arrow(
        self, batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES
    ) -> ArrowBatches:
        """The rest of the scan as Arrow record batches, as `DbIterator.to_arrow`; with own
        writes in the range, batches are made from the merged rows (`batch_rows` each)."""
        if not self._own:
            return self._base.to_arrow(batch_rows, batch_bytes)
        check_batch_size(batch_rows, batch_bytes)

        def load(_last: bytes | None) -> RecordBatch | None:
            rows = self.next_batch(batch_rows)
            return batch_of(rows) if rows else None

        return ArrowBatches([], batch_rows, batch_bytes, load)

    def seek(self, key: bytes) -> None:
        """Moves forward to the first key >= `key`, inside the range and past the last key
        returned (InvalidArgumentError otherwise); ascending iterators only."""
        if not self._own:
            return self._base.seek(key)
        k = check_key(key)
        if self._closed:
            raise ClosedError("this iterator is closed")
        if self._reverse:
            raise InvalidArgumentError("a descending iterator cannot seek")
        check_seek(k, self._bounds, self._last)
        while self._rows and self._rows[0][0] < k:
            self._rows.popleft()
        while self._at < len(self._own) and self._own[self._at][0] < k:
            self._at += 1
        if not self._rows and not self._base_done:
            self._base.seek(k)  # every base row it handed out is below `k`
        return None

    def close(self) -> None:
        """Ends the iterator; later use raises ClosedError."""
        self._closed = True
        self._rows.clear()
        self._base.close()

    def __enter__(self) -> TxnIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
