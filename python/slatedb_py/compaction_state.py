"""The compactor's state in `compactions/` (codec: `manifest.compactions_codec`), versioned
like the manifest (`manifest.versioned`) and fenced by the compactor epoch (`manifest.fence`).

What matters to the collector: an output SST is uploaded before the manifest names it, so a
compaction is listed, with an id ULID minted before its first output, from before its first
upload until after its commit. The collector never deletes an unreferenced SST newer than the
oldest listed compaction, and nothing at all while none is listed. It is Running while it
merges and Compacted from its last upload to its commit (so a compactor killed after
committing leaves an entry SlateDB 0.17 settles against the manifest); after the commit the
state keeps it, now Completed, as the one finished entry, as SlateDB does, so the collector's
mark moves forward. SlateDB 0.17's collector reads the same list the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from slatedb_py.clock import Clock
from slatedb_py.errors import SlateDBError
from slatedb_py.ids import new_ulid, ulid_timestamp_ms
from slatedb_py.manifest.compactions_codec import (
    COMPACTED,
    COMPLETED,
    FINISHED,
    RUNNING,
    CompactionRecord,
    CompactionsState,
    decode_state,
    encode_state,
)
from slatedb_py.manifest.fence import Fence
from slatedb_py.manifest.model import SstHandle
from slatedb_py.manifest.versioned import VersionedStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store


def _decode(data: bytes, name: str) -> CompactionsState:
    return decode_state(data, name=name)


class CompactionsStore(VersionedStore[CompactionsState]):
    """The versions of `compactions/`."""

    def __init__(self, store: Store, paths: DbPaths, clock: Clock) -> None:
        super().__init__(
            store,
            paths.compactions_dir,
            paths.compactions,
            "compactions",
            clock,
            _decode,
            encode_state,
        )
        self.paths = paths


class CompactorState:
    """One compactor's view of `compactions/`: it claims an epoch there, lists each compaction
    from before its first output until its commit, and is fenced by a newer epoch."""

    def __init__(self, store: Store, paths: DbPaths, clock: Clock) -> None:
        self.compactions = CompactionsStore(store, paths, clock)
        self.fence = Fence(self.compactions, _epoch, "compactor", paths.root)
        self.clock = clock

    @property
    def epoch(self) -> int:
        return self.fence.epoch

    def _write(
        self,
        records: tuple[CompactionRecord, ...],
        *,
        keep_finished: bool,
        starting: CompactionRecord | None = None,
    ) -> None:
        """Writes this epoch's state: `records`, the `resumable` ones (less those `starting`
        clashes with), then (if `keep_finished`) the one finished compaction it holds."""

        def change(_vid: int, cur: CompactionsState) -> tuple[CompactionsState, None]:
            kept = cur.last_finished() if keep_finished else ()
            others = tuple(c for c in resumable(cur) if starting is None or not clash(c, starting))
            return CompactionsState(self.epoch, (*records, *others, *kept)), None

        self.fence.update(change, initial=CompactionsState(0))

    def claim(self, epoch: int) -> None:
        """Records `epoch` (already claimed in the manifest); compactions older compactors
        left running are dropped (except `resumable` ones), the last finished one kept."""
        self.fence.epoch = epoch
        self._write((), keep_finished=True)

    def start(
        self, l0_view_ids: tuple[str, ...], sorted_runs: tuple[int, ...], destination: int
    ) -> CompactionRecord:
        record = CompactionRecord(
            new_ulid(self.clock.now_ms()), RUNNING, l0_view_ids, sorted_runs, destination
        )
        self._write((record,), keep_finished=True, starting=record)
        return record

    @contextmanager
    def listing(
        self, l0_view_ids: tuple[str, ...], sorted_runs: tuple[int, ...], destination: int
    ) -> Iterator[CompactionRecord]:
        """Lists a compaction for as long as the block runs (it uploads the outputs and
        commits): finished as committed when the block returns, dropped when it raises."""
        record = self.start(l0_view_ids, sorted_runs, destination)
        committed = False
        try:
            yield record
            committed = True
        finally:
            try:
                self.finish(record, committed=committed)
            except SlateDBError:
                # A running entry left behind only keeps more SSTs (until the next compaction
                # finishes); the compaction itself stands or fell already.
                pass

    def compacted(self, record: CompactionRecord, outputs: tuple[SstHandle, ...]) -> None:
        """The outputs are uploaded and the commit comes next (SlateDB's Compacted). A
        compactor that dies after its commit leaves this, not Running: SlateDB 0.17 settles a
        Compacted entry against the manifest, while a Running one whose inputs are gone stalls
        its compactor for good."""
        self._write((replace(record, status=COMPACTED, outputs=outputs),), keep_finished=True)

    def finish(self, record: CompactionRecord, *, committed: bool) -> None:
        """Committed: the compaction becomes the one finished entry. Not committed: it is
        dropped (its outputs are garbage, collected once a later compaction finishes)."""
        if committed:
            self._write((replace(record, status=COMPLETED),), keep_finished=False)
        else:
            self._write((), keep_finished=True)


def resumable(state: CompactionsState) -> tuple[CompactionRecord, ...]:
    """Unfinished compactions that carry SlateDB 0.18's progress (a compaction context: the
    subcompactions and what each finished). Every write keeps them, every field as read, so
    a 0.18 compactor that takes over again resumes them, until this package starts a
    compaction that `clash`es with one. This package writes no context, so these are never
    its own. While listed they hold the collector's mark back (`oldest_listed_ms`)."""
    return tuple(c for c in state.compactions if c.status not in FINISHED and c.context is not None)


def clash(kept: CompactionRecord, ours: CompactionRecord) -> bool:
    """Whether starting `ours` makes `kept` (another compactor's unfinished compaction) wrong
    to resume: `ours` takes some of its inputs, or builds its destination run. It is dropped
    before `ours` starts: 0.18.0, given such an entry after its inputs were gone, kept it
    Scheduled and rewrote its state ~20 times a second without end (docs/format.md); dropped
    this early, no crash between our commit and our state write can leave one behind."""
    return (
        bool(set(kept.l0_view_ids) & set(ours.l0_view_ids))
        or bool(set(kept.sorted_runs) & {*ours.sorted_runs, ours.destination})
        or kept.destination in {*ours.sorted_runs, ours.destination}
    )


def _epoch(state: CompactionsState) -> int:
    return state.compactor_epoch


def oldest_listed_ms(state: CompactionsState | None) -> int | None:
    """The collector's compaction mark: the oldest listed compaction's ULID time, or None
    (no state, or nothing listed: delete no unreferenced SST)."""
    if state is None or not state.compactions:
        return None
    return min(ulid_timestamp_ms(c.id) for c in state.compactions)
