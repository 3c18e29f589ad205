"""An object being written in pieces (`Store.upload`), and the store requests that costs.

obstore buffers the pieces up to a part (`Store.part_size`): an object that stays smaller is
one PUT when the upload ends; the first part filled starts a multipart upload (one request),
each part filled is sent at once (one request each), and the end sends the short last part
and completes the upload (or aborts it: one request). Counted as they are handed to obstore
(`metrics.py`: `put`, `put_part`, `multipart`, by kind and by the object's folder), so an
aborted upload counts the parts it handed over, sent or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slatedb_py.metrics import INDEX, Metrics, folder_of

if TYPE_CHECKING:  # the native zero-copy buffers' type
    from typing_extensions import Buffer

_WRITTEN = INDEX["store_written_bytes_total"]


class Upload:
    """One object being written: `write` its bytes in order; the `Store.upload` block that
    made it completes or aborts it."""

    def __init__(self, out: Any, path: str, part_size: int, metrics: Metrics) -> None:
        self._out, self._part, self._add, self._add2 = out, part_size, metrics.add, metrics.add2
        at = folder_of(path)
        self._counters = {
            k: (INDEX[f"store_{k}_requests_total"], INDEX[f"store_requests_{at}_{k}_total"])
            for k in ("put", "put_part", "multipart")
        }
        self.size = 0

    def _count(self, kind: str, n: int) -> None:
        total, by_folder = self._counters[kind]
        self._add2(total, n, by_folder, n)

    def write(self, data: Buffer) -> None:
        """Sends the object's next bytes; the store holds on to them until they are uploaded,
        so they must not change."""
        self._out.write(data)
        n = memoryview(data).nbytes
        before, self.size = self.size, self.size + n
        part = self._part
        self._add(_WRITTEN, n)
        if before < part <= self.size:
            self._count("multipart", 1)  # the multipart upload starts
        if self.size >= part:
            self._count("put_part", self.size // part - before // part)

    def ended(self, *, aborted: bool) -> None:
        """Counts the requests that ended the upload."""
        if self.size < self._part:  # nothing was sent before the end: one PUT, or nothing
            if not aborted:
                self._count("put", 1)
            return
        if not aborted and self.size % self._part:
            self._count("put_part", 1)  # the last, short part
        self._count("multipart", 1)  # complete, or abort
