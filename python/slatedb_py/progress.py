"""Progress of long operations (backups, restores): objects and bytes, for a progress bar.

The engine reports to a `Progress`; the base class ignores everything, so callers that do
not ask for progress pay one method call per object or chunk. The CLI passes a bar
(`cli_progress`). Reports may come from several threads at once (copies run in parallel):
an implementation that keeps state locks it.
"""

from __future__ import annotations


class Progress:
    """Receives what a long operation does; subclass it to show or record progress."""

    def total(self, objects: int, nbytes: int) -> None:
        """Adds `objects` objects of `nbytes` bytes to the work planned (may come more than
        once, as an operation discovers more work)."""

    def advance(self, objects: int = 0, nbytes: int = 0) -> None:
        """`objects` objects and `nbytes` bytes of the planned work are done (copied,
        checked, or found already there)."""


SILENT = Progress()
