"""The CLI's progress bar: a `Progress` drawn with tqdm on stderr, bytes as the bar and
objects beside it. Off (silent) when stderr is not a terminal or the output is --json, so
scripts and pipes see only the result."""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from slatedb_py.progress import SILENT, Progress


class Bar(Progress):
    def __init__(self, label: str, file: Any) -> None:
        from tqdm import tqdm  # only the CLI draws bars

        size = shutil.get_terminal_size()
        self._lock = threading.Lock()
        self._objects = self._planned = self._bytes = 0
        self._bar = tqdm(
            desc=label, total=0, unit="B", unit_scale=True, unit_divisor=1024, file=file,
            # Sized here: tqdm asks the terminal itself, and an unsized one (a fresh
            # pseudo-terminal) reads as 0 x 0, which hides every bar.
            ncols=size.columns or 80, nrows=size.lines or 24, leave=False,
        )  # fmt: skip

    def total(self, objects: int, nbytes: int) -> None:
        with self._lock:
            self._planned += objects
            self._bytes += nbytes
            self._bar.total = self._bytes
            self._show()

    def advance(self, objects: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self._objects += objects
            if nbytes:
                self._bar.update(nbytes)
            if objects:
                self._show()

    def _show(self) -> None:
        self._bar.set_postfix_str(f"{self._objects}/{self._planned} objects", refresh=True)

    def close(self) -> None:
        self._bar.close()


@contextmanager
def progress_bar(args: argparse.Namespace, label: str, file: Any = None) -> Iterator[Progress]:
    """A bar for one long command, or the silent `Progress` (see the module docstring)."""
    out = sys.stderr if file is None else file
    if getattr(args, "json", False) or not out.isatty():
        yield SILENT
        return
    bar = Bar(label, out)
    try:
        yield bar
    finally:
        bar.close()
