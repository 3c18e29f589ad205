"""Manifest files: `u16 BE version | FlatBuffer` (FORMAT.md 2.1-2.6).

Reads ManifestV1 and ManifestV2; writes ManifestV2, as SlateDB 0.17.0 does. Table fields are
added in the order flatc's generated code adds them (size descending, then field id
descending), so the tables match SlateDB's layout; any valid layout would interoperate.
"""

from __future__ import annotations

import uuid
from typing import Any

from slatedb_py.errors import DataError, UnsupportedFormatError
from slatedb_py.ids import ulid_from_int
from slatedb_py.manifest.fb import COMPRESSION, SST_TYPES, FlatBufferError, Table
from slatedb_py.manifest.fb_writer import FbWriter
from slatedb_py.manifest.model import (
    BytesBound,
    CheckpointEntry,
    ExternalDb,
    Manifest,
    Segment,
    SortedRun,
    SstHandle,
    SstTableInfo,
    SstView,
)

# ---------------------------------------------------------------------------- decoding


def _id128(t: Table | None) -> int | None:
    if t is None:
        return None
    high: int = t.scalar(0, "u64")
    low: int = t.scalar(1, "u64")
    return (high << 64) | low


def ulid_of(t: Table | None) -> str | None:
    v = _id128(t)
    return None if v is None else ulid_from_int(v)


def _uuid(t: Table | None) -> uuid.UUID | None:
    v = _id128(t)
    return None if v is None else uuid.UUID(int=v)


def decode_sst_info(t: Table) -> SstTableInfo:
    comp = t.scalar(5, "u8")
    kind = t.scalar(6, "u8")
    if comp >= len(COMPRESSION):
        raise FlatBufferError(t.pos, f"unknown compression codec {comp}")
    if kind >= len(SST_TYPES):
        raise FlatBufferError(t.pos, f"unknown SST type {kind}")
    return SstTableInfo(
        first_entry=t.bytes(0),
        last_entry=t.bytes(7),
        index_offset=t.scalar(1, "u64"),
        index_len=t.scalar(2, "u64"),
        filter_offset=t.scalar(3, "u64"),
        filter_len=t.scalar(4, "u64"),
        compression=COMPRESSION[comp],
        sst_type=SST_TYPES[kind],
        stats_offset=t.scalar(8, "u64"),
        stats_len=t.scalar(9, "u64"),
        filter_format=t.scalar(10, "u8"),
    )


def range_of(t: Table | None) -> tuple[BytesBound, BytesBound] | None:
    if t is None:
        return None

    def bound(b: Table) -> BytesBound:
        return BytesBound(b.scalar(1, "u8"), b.bytes(0))

    return (
        bound(t.required(t.table(0), "start_bound")),
        bound(t.required(t.table(1), "end_bound")),
    )


def _v1_sst(t: Table) -> SstView:
    sst_id = t.required(ulid_of(t.table(0)), "CompactedSsTable.id")
    info = decode_sst_info(t.required(t.table(1), "CompactedSsTable.info"))
    version = t.scalar(3, "u16", None)
    handle = SstHandle(sst_id, info, 1 if version is None else version)
    return SstView(sst_id, handle, range_of(t.table(2)))


def sst_v1_of(t: Table) -> SstHandle:
    """The SST of a `CompactedSsTable` (V1) table."""
    return _v1_sst(t).sst


def _v2_view(t: Table, ssts: dict[str, SstHandle]) -> SstView:
    view_id = t.required(ulid_of(t.table(0)), "CompactedSsTableView.id")
    sst_id = t.required(ulid_of(t.table(1)), "CompactedSsTableView.sst_id")
    handle = ssts.get(sst_id)
    if handle is None:
        raise FlatBufferError(t.pos, f"view {view_id} names SST {sst_id}, which `ssts` lacks")
    return SstView(view_id, handle, range_of(t.table(2)))


def _checkpoint(t: Table) -> CheckpointEntry:
    epoch = None
    if t.scalar(4, "u8") == 1:
        meta = t.table(5)
        epoch = meta.scalar(0, "u64") if meta is not None else None
    return CheckpointEntry(
        id=t.required(_uuid(t.table(0)), "Checkpoint.id"),
        manifest_id=t.scalar(1, "u64"),
        expire_time_s=t.scalar(2, "u32"),
        create_time_s=t.scalar(3, "u32"),
        writer_epoch=epoch,
        name=t.string(6),
    )


def _external(t: Table) -> ExternalDb:
    return ExternalDb(
        path=t.required(t.string(0), "ExternalDb.path"),
        source_checkpoint_id=t.required(_uuid(t.table(1)), "ExternalDb.source_checkpoint_id"),
        final_checkpoint_id=_uuid(t.table(2)),
        sst_ids=tuple(ulid_of(x) or "" for x in (t.tables(3) or [])),
    )


def _header(root: Table) -> dict[str, Any]:
    """Fields 1-7, the same in both manifest versions."""
    return {
        "external_dbs": tuple(_external(e) for e in root.tables(1) or []),
        "initialized": root.scalar(2, "bool", False),
        "writer_epoch": root.scalar(3, "u64"),
        "compactor_epoch": root.scalar(4, "u64"),
        "replay_after_wal_id": root.scalar(5, "u64"),
        "wal_id_last_seen": root.scalar(6, "u64"),
        "last_compacted_l0_view_id": ulid_of(root.table(7)),
    }


def _decode_v2(root: Table) -> Manifest:
    ssts: dict[str, SstHandle] = {}
    for s in root.required(root.tables(8), "ssts"):
        sst_id = s.required(ulid_of(s.table(0)), "CompactedSsTableV2.id")
        version = s.scalar(2, "u16", None)
        info = decode_sst_info(s.required(s.table(1), "CompactedSsTableV2.info"))
        ssts[sst_id] = SstHandle(sst_id, info, 1 if version is None else version)

    def views(ts: list[Table] | None) -> tuple[SstView, ...]:
        return tuple(_v2_view(v, ssts) for v in ts or [])

    def runs(ts: list[Table] | None) -> tuple[SortedRun, ...]:
        return tuple(
            SortedRun(r.scalar(0, "u32"), views(r.required(r.tables(1), "SortedRunV2.ssts")))
            for r in ts or []
        )

    segments = tuple(
        Segment(
            prefix=s.required(s.bytes(0), "Segment.prefix"),
            last_compacted_l0_view_id=ulid_of(s.table(1)),
            l0=views(s.tables(2)),
            compacted=runs(s.tables(3)),
        )
        for s in root.tables(16) or []
    )
    return Manifest(
        **_header(root),
        l0=views(root.required(root.tables(9), "l0")),
        compacted=runs(root.required(root.tables(10), "compacted")),
        last_l0_clock_tick=root.scalar(11, "i64"),
        checkpoints=tuple(_checkpoint(c) for c in root.tables(12) or []),
        last_l0_seq=root.scalar(13, "u64"),
        recent_snapshot_min_seq=root.scalar(14, "u64"),
        sequence_tracker=root.bytes(15),
        segments=segments,
        segment_extractor_name=root.string(17),
        format_version=2,
    )


def _decode_v1(root: Table) -> Manifest:
    def runs(ts: list[Table]) -> tuple[SortedRun, ...]:
        return tuple(
            SortedRun(
                r.scalar(0, "u32"),
                tuple(_v1_sst(s) for s in r.required(r.tables(1), "SortedRun.ssts")),
            )
            for r in ts
        )

    return Manifest(
        **_header(root),
        l0=tuple(_v1_sst(s) for s in root.required(root.tables(8), "l0")),
        compacted=runs(root.required(root.tables(9), "compacted")),
        last_l0_clock_tick=root.scalar(10, "i64"),
        checkpoints=tuple(_checkpoint(c) for c in root.tables(11) or []),
        last_l0_seq=root.scalar(12, "u64"),
        recent_snapshot_min_seq=root.scalar(14, "u64"),
        sequence_tracker=root.bytes(15),
        format_version=1,
    )


def decode_manifest(data: bytes, *, name: str | None = None) -> Manifest:
    """Decodes a manifest file (V1 or V2). Errors name the object and the byte offset."""
    where = f"{name}: " if name else ""
    data = bytes(data)
    if len(data) < 2:
        raise DataError(f"{where}empty manifest ({len(data)} bytes)", object=name, offset=0)
    version = int.from_bytes(data[:2], "big")
    if version not in (1, 2):
        raise UnsupportedFormatError(
            f"{where}unsupported manifest version {version} (supported: 1, 2)",
            object=name,
            offset=0,
        )
    body = data[2:]
    try:
        root = Table.root(body)
        return _decode_v2(root) if version == 2 else _decode_v1(root)
    except FlatBufferError as e:
        raise e.data_error("manifest", name) from None
    except (ValueError, OverflowError) as e:
        raise DataError(f"{where}corrupt manifest: {e}", object=name, offset=2) from None


# ---------------------------------------------------------------------------- encoding


def encode_manifest(m: Manifest) -> bytes:
    """Encodes `m` as a ManifestV2 file (with its 2-byte version prefix)."""
    w = FbWriter()
    b = w.b
    handles: dict[str, SstHandle] = {}
    for v in m.all_views():
        handles.setdefault(v.sst.id, v.sst)
    # `ssts` is sorted by ULID; ULID strings sort like the numbers they encode.
    ssts = w.vector([w.sst(handles[k]) for k in sorted(handles)])
    l0 = w.views(m.l0)
    compacted = w.runs(m.compacted)
    checkpoints = w.vector([w.checkpoint(c) for c in m.checkpoints])
    tracker = b.CreateByteVector(m.sequence_tracker) if m.sequence_tracker is not None else None
    segments = w.vector([w.segment(s) for s in m.segments])
    externals = w.vector([w.external(e) for e in m.external_dbs]) if m.external_dbs else None
    last_compacted = (
        w.ulid(m.last_compacted_l0_view_id) if m.last_compacted_l0_view_id is not None else None
    )
    extractor = (
        b.CreateString(m.segment_extractor_name) if m.segment_extractor_name is not None else None
    )
    b.StartObject(18)
    b.PrependUint64Slot(14, m.recent_snapshot_min_seq, 0)
    b.PrependUint64Slot(13, m.last_l0_seq, 0)
    b.PrependInt64Slot(11, m.last_l0_clock_tick, 0)
    b.PrependUint64Slot(6, m.wal_id_last_seen, 0)
    b.PrependUint64Slot(5, m.replay_after_wal_id, 0)
    b.PrependUint64Slot(4, m.compactor_epoch, 0)
    b.PrependUint64Slot(3, m.writer_epoch, 0)
    if extractor is not None:
        b.PrependUOffsetTRelativeSlot(17, extractor, 0)
    b.PrependUOffsetTRelativeSlot(16, segments, 0)
    if tracker is not None:
        b.PrependUOffsetTRelativeSlot(15, tracker, 0)
    b.PrependUOffsetTRelativeSlot(12, checkpoints, 0)
    b.PrependUOffsetTRelativeSlot(10, compacted, 0)
    b.PrependUOffsetTRelativeSlot(9, l0, 0)
    b.PrependUOffsetTRelativeSlot(8, ssts, 0)
    if last_compacted is not None:
        b.PrependUOffsetTRelativeSlot(7, last_compacted, 0)
    if externals is not None:
        b.PrependUOffsetTRelativeSlot(1, externals, 0)
    b.PrependBoolSlot(2, m.initialized, False)
    root = b.EndObject()
    b.Finish(root)
    return b"\x00\x02" + bytes(b.Output())
