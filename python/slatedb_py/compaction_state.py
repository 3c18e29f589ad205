"""The compactor's state, `compactions/<id>.compactions` (FORMAT.md 6): its epoch and the
compactions it runs, versioned like the manifest (`manifest.versioned`).

What matters to the collector: an output SST is uploaded before the manifest names it, so a
compaction is listed, with an id ULID minted before its first output, from before its first
upload until after its commit. The collector never deletes an unreferenced SST newer than the
oldest listed compaction, and nothing at all while none is listed. It is Running while it merges
and Compacted from its last upload to its commit (so a compactor killed after committing leaves
an entry SlateDB 0.17 settles against the manifest); after the commit the state keeps it, now
Completed, as the one finished entry, as SlateDB does, so the collector's mark moves forward. SlateDB 0.17's collector reads the same list the same way.

Layout: a u16 big-endian version prefix (2), then `CompactionsV1 { 0 compactor_epoch u64,
1 recent_compactions [Compaction] }`, `Compaction { 0 id Ulid, 1 spec_type u8 (1: tiered),
2 spec TieredCompactionSpec, 3 status i8, 4 output_ssts [CompactedSsTable] }`, `TieredCompactionSpec { 1 sorted_runs [u32],
2 l0_view_ids [Ulid], 4 destination u32 }`. Fields this module does not write (workers,
subcompactions) are not carried over from other writers' states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from slatedb_py.clock import Clock
from slatedb_py.errors import DataError, FencedError, SlateDBError, UnsupportedFormatError
from slatedb_py.ids import new_ulid, ulid_timestamp_ms
from slatedb_py.manifest.codec import FbWriter, sst_v1_of, ulid_of
from slatedb_py.manifest.fb import FlatBufferError, Table
from slatedb_py.manifest.model import SstHandle
from slatedb_py.manifest.versioned import VersionedFolder
from slatedb_py.paths import DbPaths
from slatedb_py.store import ObjectMeta, Store

SUBMITTED, RUNNING, COMPLETED, FAILED, COMPACTED, SCHEDULED = range(6)
FINISHED = (COMPLETED, FAILED)
TIERED = 1


@dataclass(frozen=True)
class CompactionRecord:
    id: str  # ULID, minted before the compaction's first output
    status: int
    l0_view_ids: tuple[str, ...] = ()
    sorted_runs: tuple[int, ...] = ()
    destination: int = 0
    # Its output SSTs, once uploaded (status Compacted): SlateDB settles a Compacted entry it
    # finds by committing exactly these, so they must be listed, all of them.
    outputs: tuple[SstHandle, ...] = ()


@dataclass(frozen=True)
class CompactionsState:
    compactor_epoch: int
    compactions: tuple[CompactionRecord, ...] = ()

    def last_finished(self) -> tuple[CompactionRecord, ...]:
        done = [c for c in self.compactions if c.status in FINISHED]
        return (max(done, key=lambda c: c.id),) if done else ()


def encode_state(state: CompactionsState) -> bytes:
    w = FbWriter()
    b = w.b
    offs = []
    for c in state.compactions:
        l0 = w.vector([w.ulid(v) for v in c.l0_view_ids])
        b.StartVector(4, len(c.sorted_runs), 4)
        for r in reversed(c.sorted_runs):
            b.PrependUint32(r)
        runs = b.EndVector()
        b.StartObject(5)
        b.PrependUint32Slot(4, c.destination, 0)
        b.PrependUOffsetTRelativeSlot(2, l0, 0)
        b.PrependUOffsetTRelativeSlot(1, runs, 0)
        spec = b.EndObject()
        outs = w.vector([w.sst(h, v1=True) for h in c.outputs]) if c.outputs else None
        cid = w.ulid(c.id)
        b.StartObject(5)
        if outs is not None:
            b.PrependUOffsetTRelativeSlot(4, outs, 0)
        b.PrependUOffsetTRelativeSlot(2, spec, 0)
        b.PrependUOffsetTRelativeSlot(0, cid, 0)
        b.PrependInt8Slot(3, c.status, 0)
        b.PrependUint8Slot(1, TIERED, 0)
        offs.append(b.EndObject())
    recent = w.vector(offs)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, recent, 0)
    b.PrependUint64Slot(0, state.compactor_epoch, 0)
    b.Finish(b.EndObject())
    return b"\x00\x02" + bytes(b.Output())


def decode_state(data: bytes, *, name: str | None = None) -> CompactionsState:
    where = f"{name}: " if name else ""
    data = bytes(data)
    if len(data) < 2 or int.from_bytes(data[:2], "big") != 2:
        raise UnsupportedFormatError(
            f"{where}not a version-2 compactor state", object=name, offset=0
        )
    try:
        root = Table.root(data[2:])
        records = []
        for t in root.required(root.tables(1), "CompactionsV1.recent_compactions"):
            cid = t.required(ulid_of(t.table(0)), "Compaction.id")
            spec = t.table(2) if t.scalar(1, "u8") == TIERED else None
            records.append(
                CompactionRecord(
                    cid,
                    t.scalar(3, "u8"),
                    tuple(ulid_of(v) or "" for v in (spec.tables(2) or [])) if spec else (),
                    tuple(spec.scalars(1, "u32")) if spec else (),
                    spec.scalar(4, "u32") if spec else 0,
                    tuple(sst_v1_of(o) for o in (t.tables(4) or [])),
                )
            )
        return CompactionsState(root.scalar(0, "u64"), tuple(records))
    except FlatBufferError as e:
        raise DataError(
            f"{where}corrupt compactor state at offset {e.offset + 2}: {e}",
            object=name,
            offset=e.offset + 2,
        ) from None


class CompactionsStore:
    """The versions of `compactions/`, updated like the manifest: read the latest, apply an
    idempotent change, create the next id, retry on conflict."""

    def __init__(self, store: Store, paths: DbPaths, clock: Clock) -> None:
        self.paths = paths
        self.versions = VersionedFolder(
            store, paths.compactions_dir, paths.compactions, "compactions", clock
        )

    def latest(self, listed: list[ObjectMeta] | None = None) -> CompactionsState | None:
        """The newest state (`listed`: a listing of `compactions/` the caller already made)."""
        got = self.versions.latest(listed)
        return None if got is None else self._decode(*got)

    def _decode(self, vid: int, data: bytes) -> CompactionsState:
        return decode_state(data, name=self.paths.compactions(vid))

    def update(self, change: Callable[[CompactionsState | None], CompactionsState]) -> None:
        self.versions.update(self._decode, encode_state, lambda _vid, cur: change(cur))


class CompactorState:
    """One compactor's view of `compactions/`: it claims an epoch there, lists each compaction
    from before its first output until its commit, and is fenced by a newer epoch."""

    def __init__(self, store: Store, paths: DbPaths, clock: Clock) -> None:
        self.compactions = CompactionsStore(store, paths, clock)
        self.clock = clock
        self.epoch = 0

    def _mine(self, current: CompactionsState | None) -> CompactionsState:
        if current is not None and current.compactor_epoch > self.epoch:
            raise FencedError(
                f"a newer compactor (epoch {current.compactor_epoch}) runs on "
                f"{self.compactions.paths.root!r}; this one (epoch {self.epoch}) is fenced"
            )
        return current or CompactionsState(self.epoch)

    def claim(self, epoch: int) -> None:
        """Records `epoch` (already claimed in the manifest); compactions older compactors
        left running are dropped, the last finished one kept."""
        self.epoch = epoch
        self.compactions.update(
            lambda cur: CompactionsState(epoch, self._mine(cur).last_finished())
        )

    def start(
        self, l0_view_ids: tuple[str, ...], sorted_runs: tuple[int, ...], destination: int
    ) -> CompactionRecord:
        record = CompactionRecord(
            new_ulid(self.clock.now_ms()), RUNNING, l0_view_ids, sorted_runs, destination
        )
        self.compactions.update(
            lambda cur: CompactionsState(self.epoch, (record, *self._mine(cur).last_finished()))
        )
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
        done = replace(record, status=COMPACTED, outputs=outputs)
        self.compactions.update(
            lambda cur: CompactionsState(self.epoch, (done, *self._mine(cur).last_finished()))
        )

    def finish(self, record: CompactionRecord, *, committed: bool) -> None:
        """Committed: the compaction becomes the one finished entry. Not committed: it is
        dropped (its outputs are garbage, collected once a later compaction finishes)."""
        done = replace(record, status=COMPLETED)

        def change(cur: CompactionsState | None) -> CompactionsState:
            kept = self._mine(cur).last_finished()
            return CompactionsState(self.epoch, (done,) if committed else kept)

        self.compactions.update(change)


def oldest_listed_ms(state: CompactionsState | None) -> int | None:
    """The collector's compaction mark: the oldest listed compaction's ULID time, or None
    (no state, or nothing listed: delete no unreferenced SST)."""
    if state is None or not state.compactions:
        return None
    return min(ulid_timestamp_ms(c.id) for c in state.compactions)
