"""Writing the format's FlatBuffers: one builder with the tables manifests and compactor
states share (ids, SST infos, views, runs, checkpoints, external databases, segments).
Field numbers: docs/format.md."""

from __future__ import annotations

import uuid

import flatbuffers

from slatedb_py.ids import halves, ulid_to_int
from slatedb_py.manifest.fb import COMPRESSION, SST_TYPES
from slatedb_py.manifest.model import (
    BytesBound,
    CheckpointEntry,
    ExternalDb,
    Segment,
    SortedRun,
    SstHandle,
    SstTableInfo,
    SstView,
)


class FbWriter:
    """A FlatBuffers builder with the shared tables of the format (ids, SST infos, views)."""

    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1024)

    def id128(self, value: int) -> int:
        high, low = halves(value)
        b = self.b
        b.StartObject(2)
        b.PrependUint64Slot(1, low, 0)
        b.PrependUint64Slot(0, high, 0)
        return int(b.EndObject())

    def ulid(self, text: str) -> int:
        return self.id128(ulid_to_int(text))

    def uuid(self, value: uuid.UUID) -> int:
        return self.id128(value.int)

    def vector(self, offsets: list[int]) -> int:
        b = self.b
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return int(b.EndVector())

    def info(self, i: SstTableInfo) -> int:
        b = self.b
        first = b.CreateByteVector(i.first_entry) if i.first_entry is not None else None
        last = b.CreateByteVector(i.last_entry) if i.last_entry is not None else None
        b.StartObject(11)
        b.PrependUint64Slot(9, i.stats_len, 0)
        b.PrependUint64Slot(8, i.stats_offset, 0)
        b.PrependUint64Slot(4, i.filter_len, 0)
        b.PrependUint64Slot(3, i.filter_offset, 0)
        b.PrependUint64Slot(2, i.index_len, 0)
        b.PrependUint64Slot(1, i.index_offset, 0)
        if last is not None:
            b.PrependUOffsetTRelativeSlot(7, last, 0)
        if first is not None:
            b.PrependUOffsetTRelativeSlot(0, first, 0)
        b.PrependUint8Slot(10, i.filter_format, 0)
        b.PrependUint8Slot(6, SST_TYPES.index(i.sst_type), 0)
        b.PrependUint8Slot(5, COMPRESSION.index(i.compression), 0)
        return int(b.EndObject())

    def bytes_range(self, r: tuple[BytesBound, BytesBound]) -> int:
        b = self.b
        bounds = []
        for bound in r:
            key = b.CreateByteVector(bound.key) if bound.key is not None else None
            b.StartObject(2)
            if key is not None:
                b.PrependUOffsetTRelativeSlot(0, key, 0)
            b.PrependUint8Slot(1, bound.kind, 0)
            bounds.append(b.EndObject())
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(1, bounds[1], 0)
        b.PrependUOffsetTRelativeSlot(0, bounds[0], 0)
        return int(b.EndObject())

    def sst(self, h: SstHandle, *, v1: bool = False) -> int:
        """A `CompactedSsTableV2` (the manifest's `ssts`), or with `v1` the V1 `CompactedSsTable`
        that `.compactions` outputs still use: there the format version sits in slot 3 (slot 2
        is a visible range) and absent means SST format 1, so it is always written."""
        info = self.info(h.info)
        sst_id = self.ulid(h.id)
        b = self.b
        b.StartObject(4 if v1 else 3)
        b.PrependUOffsetTRelativeSlot(1, info, 0)
        b.PrependUOffsetTRelativeSlot(0, sst_id, 0)
        if v1:
            b.PrependUint16Slot(3, h.format_version or 1, 0xFFFF)
        elif h.format_version is not None:
            b.PrependUint16Slot(2, h.format_version, 0)
        return int(b.EndObject())

    def view(self, v: SstView) -> int:
        rng = self.bytes_range(v.visible_range) if v.visible_range is not None else None
        sst_id = self.ulid(v.sst.id)
        view_id = self.ulid(v.id)
        b = self.b
        b.StartObject(3)
        if rng is not None:
            b.PrependUOffsetTRelativeSlot(2, rng, 0)
        b.PrependUOffsetTRelativeSlot(1, sst_id, 0)
        b.PrependUOffsetTRelativeSlot(0, view_id, 0)
        return int(b.EndObject())

    def views(self, views: tuple[SstView, ...]) -> int:
        return self.vector([self.view(v) for v in views])

    def runs(self, runs: tuple[SortedRun, ...]) -> int:
        offs = []
        for r in runs:
            ssts = self.views(r.views)
            b = self.b
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(1, ssts, 0)
            b.PrependUint32Slot(0, r.id, 0)
            offs.append(b.EndObject())
        return self.vector(offs)

    def checkpoint(self, c: CheckpointEntry) -> int:
        b = self.b
        name = b.CreateString(c.name) if c.name is not None else None
        meta = None
        if c.writer_epoch is not None:
            b.StartObject(1)
            b.PrependUint64Slot(0, c.writer_epoch, 0)
            meta = b.EndObject()
        cid = self.uuid(c.id)
        b.StartObject(7)
        b.PrependUint64Slot(1, c.manifest_id, 0)
        if name is not None:
            b.PrependUOffsetTRelativeSlot(6, name, 0)
        if meta is not None:
            b.PrependUOffsetTRelativeSlot(5, meta, 0)
        b.PrependUint32Slot(3, c.create_time_s, 0)
        b.PrependUint32Slot(2, c.expire_time_s, 0)
        b.PrependUOffsetTRelativeSlot(0, cid, 0)
        if meta is not None:
            b.PrependUint8Slot(4, 1, 0)
        return int(b.EndObject())

    def external(self, e: ExternalDb) -> int:
        b = self.b
        sst_ids = self.vector([self.ulid(s) for s in e.sst_ids])
        final = self.uuid(e.final_checkpoint_id) if e.final_checkpoint_id is not None else None
        source = self.uuid(e.source_checkpoint_id)
        path = b.CreateString(e.path)
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(3, sst_ids, 0)
        if final is not None:
            b.PrependUOffsetTRelativeSlot(2, final, 0)
        b.PrependUOffsetTRelativeSlot(1, source, 0)
        b.PrependUOffsetTRelativeSlot(0, path, 0)
        return int(b.EndObject())

    def segment(self, s: Segment) -> int:
        compacted = self.runs(s.compacted)
        l0 = self.views(s.l0)
        last = self.ulid(s.last_compacted_l0_view_id) if s.last_compacted_l0_view_id else None
        prefix = self.b.CreateByteVector(s.prefix)
        b = self.b
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(3, compacted, 0)
        b.PrependUOffsetTRelativeSlot(2, l0, 0)
        if last is not None:
            b.PrependUOffsetTRelativeSlot(1, last, 0)
        b.PrependUOffsetTRelativeSlot(0, prefix, 0)
        return int(b.EndObject())
