"""Epoch fences (docs/protocols.md, "fencing"): a writer or a compactor claims the next epoch
in the manifest, and every later update it makes first checks that no newer one took over.

`Fence` guards any `VersionedStore` whose versions carry the epoch; `WriterFence` and
`CompactorFence` only say which epoch and how it is claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

from slatedb_py.errors import DataError, FencedError
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.manifest.versioned import Change, R, VersionedStore

T = TypeVar("T")


class Fence(Generic[T]):
    """Holds one epoch of `role` over `versions`; `epoch_of` reads the epoch a version holds.

    `confirmed_at` is when (monotonic seconds) a look at the latest version last found this
    epoch current; a writer uses it to decide whether a WAL upload may be acknowledged as is
    (`slatedb_py.safety`)."""

    def __init__(
        self, versions: VersionedStore[T], epoch_of: Callable[[T], int], role: str, root: str
    ) -> None:
        self.versions = versions
        self.epoch_of = epoch_of
        self.role = role
        self.root = root
        self.epoch = 0
        self.confirmed_at = float("-inf")

    def check(self, value: T) -> None:
        newer = self.epoch_of(value)
        if newer > self.epoch:
            raise FencedError(
                f"a newer {self.role} (epoch {newer}) took over {self.root!r}; "
                f"this {self.role} (epoch {self.epoch}) is fenced"
            )

    def confirm(self) -> None:
        """Reads the latest version; raises FencedError if a newer epoch took over."""
        started = self.versions.now()
        latest = self.versions.latest()
        if latest is None:
            raise self.versions.missing()
        self.check(latest[1])
        self.confirmed_at = started

    def update(self, change: Change[T, R], *, initial: T | None = None) -> tuple[int, T, R]:
        """`versions.update`, refused with FencedError once a newer epoch holds the folder."""

        def guarded(vid: int, current: T) -> tuple[T | None, R]:
            self.check(current)
            return change(vid, current)

        started = self.versions.now()
        out = self.versions.update(guarded, initial=initial)
        self.confirmed_at = max(self.confirmed_at, started)
        return out


class WriterFence(Fence[Manifest]):
    def __init__(self, manifests: ManifestStore) -> None:
        super().__init__(manifests, _writer_epoch, "writer", manifests.paths.root)

    def claim(self) -> tuple[int, Manifest]:
        """Takes the next writer epoch; returns the manifest that holds it."""

        def bump(_mid: int, m: Manifest) -> tuple[Manifest, None]:
            if not m.initialized:
                raise DataError(
                    f"the database at {self.root!r} is not initialized (a clone being created)"
                )
            # Not idempotent, and need not be: bumping twice after an unknown outcome only
            # leaves this writer with a higher epoch, still the newest.
            return replace(m, writer_epoch=m.writer_epoch + 1), None

        started = self.versions.now()
        mid, m, _ = self.versions.update(bump)
        self.epoch = m.writer_epoch
        self.confirmed_at = started
        return mid, m


class CompactorFence(Fence[Manifest]):
    """The compactor's epoch in the manifest; `compaction_state.CompactorState` fences the
    same epoch in `compactions/`."""

    def __init__(self, manifests: ManifestStore) -> None:
        super().__init__(manifests, _compactor_epoch, "compactor", manifests.paths.root)

    def claim(self) -> int:
        # Bumping twice after an unknown outcome is harmless: the epoch is ours either way.
        _, m, _ = self.versions.update(
            lambda _mid, m: (replace(m, compactor_epoch=m.compactor_epoch + 1), None)
        )
        self.epoch = m.compactor_epoch
        return self.epoch


def _writer_epoch(m: Manifest) -> int:
    return m.writer_epoch


def _compactor_epoch(m: Manifest) -> int:
    return m.compactor_epoch
