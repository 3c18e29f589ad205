"""The compactor's state file, `compactions/<id>.compactions` (docs/format.md): its epoch and
the compactions it runs. What the states mean to the collector: `compaction_state`.

Layout: a u16 big-endian version prefix (2), then `CompactionsV1 { 0 compactor_epoch u64,
1 recent_compactions [Compaction] }`, `Compaction { 0 id Ulid, 1 spec_type u8 (1: tiered),
2 spec TieredCompactionSpec, 3 status i8, 4 output_ssts [CompactedSsTable] }`,
`TieredCompactionSpec { 1 sorted_runs [u32], 2 l0_view_ids [Ulid], 4 destination u32 }`.
Fields this module does not write (workers, subcompactions) are not carried over from other
writers' states.
"""

from __future__ import annotations

from dataclasses import dataclass

from slatedb_py.errors import UnsupportedFormatError
from slatedb_py.manifest.codec import sst_v1_of, ulid_of
from slatedb_py.manifest.fb import FlatBufferError, Table
from slatedb_py.manifest.fb_writer import FbWriter
from slatedb_py.manifest.model import SstHandle

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
        raise e.data_error("compactor state", name) from None
