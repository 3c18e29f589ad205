"""The compactor's state file, `compactions/<id>.compactions` (docs/format.md): its epoch and
the compactions it runs. What the states mean to the collector: `compaction_state`.

Layout: a u16 big-endian version prefix (2), then `CompactionsV1 { 0 compactor_epoch u64,
1 recent_compactions [Compaction] }`, `Compaction { 0 id Ulid, 1 spec_type u8 (1: tiered,
2: drain segment), 2 spec, 3 status i8, 4 output_ssts [CompactedSsTable], 5 worker
WorkerSpec, 6 ctx_type u8 (1: tiered), 7 ctx TieredCompactionContext }`,
`TieredCompactionSpec { 0 ssts [Ulid] (legacy), 1 sorted_runs [u32], 2 l0_view_ids [Ulid],
3 segment [ubyte], 4 destination u32 }`, `DrainSegmentSpec { 0 segment, 1 l0_view_ids,
2 sorted_runs }`, `WorkerSpec { 0 worker_id string, 1 last_heartbeat_ms u64 }`,
`TieredCompactionContext { 0 subcompactions [Subcompaction], 1 retention_min_seq u64 }`,
`Subcompaction { 0 range BytesRange, 1 output_ssts, 2 status i8 (0.18: 0 in progress,
1 completed) }`.

Every field is decoded and written back, those this package never uses included: a compactor
state of SlateDB 0.18 rewritten here keeps its workers and its subcompaction progress, from
which a 0.18 compactor resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from slatedb_py.errors import UnsupportedFormatError
from slatedb_py.manifest.codec import range_of, sst_v1_of, ulid_of
from slatedb_py.manifest.fb import FlatBufferError, Table
from slatedb_py.manifest.fb_writer import FbWriter
from slatedb_py.manifest.model import BytesBound, SstHandle

SUBMITTED, RUNNING, COMPLETED, FAILED, COMPACTED, SCHEDULED = range(6)
FINISHED = (COMPLETED, FAILED)
TIERED, DRAIN_SEGMENT = 1, 2
TIERED_CONTEXT = 1
# Subcompaction.status (0.18)
SUB_IN_PROGRESS, SUB_COMPLETED = 0, 1


@dataclass(frozen=True)
class WorkerSpec:
    """The worker that claimed a compaction (0.18's distributed compaction)."""

    worker_id: str | None
    last_heartbeat_ms: int = 0


@dataclass(frozen=True)
class Subcompaction:
    """One key range of a compaction and its progress: a 0.18 worker resumes from here."""

    range: tuple[BytesBound, BytesBound]
    outputs: tuple[SstHandle, ...] = ()
    status: int = SUB_IN_PROGRESS


@dataclass(frozen=True)
class CompactionContext:
    subcompactions: tuple[Subcompaction, ...] = ()
    retention_min_seq: int = 0


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
    spec_type: int = TIERED
    # The target segment (absent: the root tree; a drain spec always names one).
    segment: bytes | None = None
    legacy_ssts: tuple[str, ...] = ()
    worker: WorkerSpec | None = None
    context: CompactionContext | None = None


@dataclass(frozen=True)
class CompactionsState:
    compactor_epoch: int
    compactions: tuple[CompactionRecord, ...] = ()

    def last_finished(self) -> tuple[CompactionRecord, ...]:
        done = [c for c in self.compactions if c.status in FINISHED]
        return (max(done, key=lambda c: c.id),) if done else ()


def _u32s(w: FbWriter, values: tuple[int, ...]) -> int:
    b = w.b
    b.StartVector(4, len(values), 4)
    for r in reversed(values):
        b.PrependUint32(r)
    return int(b.EndVector())


def _refs(w: FbWriter, *slots: tuple[int, int | None]) -> None:
    """Adds the references present, in the order given (flatc's: descending field id)."""
    for slot, off in slots:
        if off is not None:
            w.b.PrependUOffsetTRelativeSlot(slot, off, 0)


def _spec(w: FbWriter, c: CompactionRecord) -> int:
    b = w.b
    seg = b"" if c.segment is None and c.spec_type == DRAIN_SEGMENT else c.segment
    segment = b.CreateByteVector(seg) if seg is not None else None
    l0 = w.vector([w.ulid(v) for v in c.l0_view_ids])
    runs = _u32s(w, c.sorted_runs)
    if c.spec_type == DRAIN_SEGMENT:
        b.StartObject(3)
        _refs(w, (2, runs), (1, l0), (0, segment))
        return int(b.EndObject())
    legacy = w.vector([w.ulid(v) for v in c.legacy_ssts]) if c.legacy_ssts else None
    b.StartObject(5)
    b.PrependUint32Slot(4, c.destination, 0)
    _refs(w, (3, segment), (2, l0), (1, runs), (0, legacy))
    return int(b.EndObject())


def _context(w: FbWriter, ctx: CompactionContext) -> int:
    subs = []
    for s in ctx.subcompactions:
        rng = w.bytes_range(s.range)
        outs = w.vector([w.sst(h, v1=True) for h in s.outputs]) if s.outputs else None
        b = w.b
        b.StartObject(3)
        _refs(w, (1, outs), (0, rng))
        b.PrependInt8Slot(2, s.status, 0)
        subs.append(b.EndObject())
    vec = w.vector(subs) if subs else None
    b = w.b
    b.StartObject(2)
    b.PrependUint64Slot(1, ctx.retention_min_seq, 0)
    _refs(w, (0, vec))
    return int(b.EndObject())


def _worker(w: FbWriter, spec: WorkerSpec) -> int:
    b = w.b
    wid = b.CreateString(spec.worker_id) if spec.worker_id is not None else None
    b.StartObject(2)
    b.PrependUint64Slot(1, spec.last_heartbeat_ms, 0)
    _refs(w, (0, wid))
    return int(b.EndObject())


def encode_state(state: CompactionsState) -> bytes:
    w = FbWriter()
    b = w.b
    offs = []
    for c in state.compactions:
        spec = _spec(w, c)
        ctx = _context(w, c.context) if c.context is not None else None
        worker = _worker(w, c.worker) if c.worker is not None else None
        outs = w.vector([w.sst(h, v1=True) for h in c.outputs]) if c.outputs else None
        cid = w.ulid(c.id)
        b.StartObject(8)
        _refs(w, (7, ctx), (5, worker), (4, outs), (2, spec), (0, cid))
        if ctx is not None:
            b.PrependUint8Slot(6, TIERED_CONTEXT, 0)
        b.PrependInt8Slot(3, c.status, 0)
        b.PrependUint8Slot(1, c.spec_type, 0)
        offs.append(b.EndObject())
    recent = w.vector(offs)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, recent, 0)
    b.PrependUint64Slot(0, state.compactor_epoch, 0)
    b.Finish(b.EndObject())
    return b"\x00\x02" + bytes(b.Output())


def _ulids(t: Table, slot: int) -> tuple[str, ...]:
    return tuple(ulid_of(v) or "" for v in (t.tables(slot) or []))


class _UnknownVariant(Exception):
    """A union variant this codec does not know: it cannot be kept, so it is not read."""


def _decode_context(t: Table, ctx_type: int) -> CompactionContext:
    if ctx_type != TIERED_CONTEXT:
        raise _UnknownVariant(f"compaction context type {ctx_type}")
    subs = tuple(
        Subcompaction(
            s.required(range_of(s.table(0)), "Subcompaction.range"),
            tuple(sst_v1_of(o) for o in (s.tables(1) or [])),
            s.scalar(2, "i8"),
        )
        for s in (t.tables(0) or [])
    )
    return CompactionContext(subs, t.scalar(1, "u64"))


def _decode_record(t: Table) -> CompactionRecord:
    cid = t.required(ulid_of(t.table(0)), "Compaction.id")
    spec_type = t.scalar(1, "u8")
    spec = t.required(t.table(2), "Compaction.spec")
    destination = 0
    legacy: tuple[str, ...] = ()
    if spec_type == TIERED:
        segment, l0, runs = spec.bytes(3), _ulids(spec, 2), spec.scalars(1, "u32")
        destination, legacy = spec.scalar(4, "u32"), _ulids(spec, 0)
    elif spec_type == DRAIN_SEGMENT:
        segment = spec.required(spec.bytes(0), "DrainSegmentSpec.segment")
        l0, runs = _ulids(spec, 1), spec.scalars(2, "u32")
    else:
        raise _UnknownVariant(f"compaction spec type {spec_type}")
    w = t.table(5)
    c = t.table(7)
    return CompactionRecord(
        cid,
        t.scalar(3, "i8"),
        l0,
        tuple(runs),
        destination,
        tuple(sst_v1_of(o) for o in (t.tables(4) or [])),
        spec_type,
        segment,
        legacy,
        WorkerSpec(w.string(0), w.scalar(1, "u64")) if w is not None else None,
        _decode_context(c, t.scalar(6, "u8")) if c is not None else None,
    )


def decode_state(data: bytes, *, name: str | None = None) -> CompactionsState:
    where = f"{name}: " if name else ""
    data = bytes(data)
    if len(data) < 2 or int.from_bytes(data[:2], "big") != 2:
        raise UnsupportedFormatError(
            f"{where}not a version-2 compactor state", object=name, offset=0
        )
    try:
        root = Table.root(data[2:])
        records = [
            _decode_record(t)
            for t in root.required(root.tables(1), "CompactionsV1.recent_compactions")
        ]
        return CompactionsState(root.scalar(0, "u64"), tuple(records))
    except FlatBufferError as e:
        raise e.data_error("compactor state", name) from None
    except _UnknownVariant as e:
        raise UnsupportedFormatError(
            f"{where}compactor state has an unknown {e}", object=name, offset=None
        ) from None
