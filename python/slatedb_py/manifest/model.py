"""The manifest: SlateDB's versioned description of a database (FORMAT.md section 2).

Immutable dataclasses; a change is a new value (`dataclasses.replace`) written as the next
manifest version. SST and view ids are ULID strings, checkpoint ids `uuid.UUID`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slatedb_py.format import SstInfo

I64_MIN = -(2**63)

# BytesBound.bound_type
UNBOUNDED, INCLUDED, EXCLUDED = 1, 2, 3


@dataclass(frozen=True)
class SstTableInfo:
    """`SsTableInfo`, as stored in an SST footer and copied into the manifest."""

    first_entry: bytes | None
    last_entry: bytes | None
    index_offset: int
    index_len: int
    filter_offset: int
    filter_len: int
    compression: str | None
    sst_type: str
    stats_offset: int
    stats_len: int
    filter_format: int

    @classmethod
    def from_native(cls, info: SstInfo) -> SstTableInfo:
        """From an SST's own metadata (`format.SstInfo`, what `SstFile.info()` returns)."""
        return cls(
            first_entry=info.first_key,
            last_entry=info.last_key,
            index_offset=info.index_offset,
            index_len=info.index_len,
            filter_offset=info.filter_offset,
            filter_len=info.filter_len,
            compression=info.compression,
            sst_type=info.sst_type,
            stats_offset=info.stats_offset,
            stats_len=info.stats_len,
            filter_format=1 if info.filter_format == "composite" else 0,
        )

    @property
    def estimated_size(self) -> int:
        """Bytes up to the stats block: what SlateDB reports as the SST's size."""
        return self.stats_offset if self.stats_len else self.index_offset + self.index_len


@dataclass(frozen=True)
class SstHandle:
    id: str
    info: SstTableInfo
    format_version: int | None = 2


@dataclass(frozen=True)
class BytesBound:
    kind: int
    key: bytes | None = None


@dataclass(frozen=True)
class SstView:
    """A (possibly key-range-restricted) view of an SST; 0.17.0 uses view id == SST id."""

    id: str
    sst: SstHandle
    visible_range: tuple[BytesBound, BytesBound] | None = None


@dataclass(frozen=True)
class SortedRun:
    id: int
    views: tuple[SstView, ...]


@dataclass(frozen=True)
class CheckpointEntry:
    id: uuid.UUID
    manifest_id: int
    expire_time_s: int  # 0 = never expires
    create_time_s: int
    writer_epoch: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class ExternalDb:
    path: str
    source_checkpoint_id: uuid.UUID
    final_checkpoint_id: uuid.UUID | None
    sst_ids: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    prefix: bytes
    last_compacted_l0_view_id: str | None
    l0: tuple[SstView, ...]
    compacted: tuple[SortedRun, ...]


# An empty sequence tracker: version 1, count 0, two empty Gorilla streams.
EMPTY_SEQUENCE_TRACKER = bytes([1]) + bytes(12)


@dataclass(frozen=True)
class Manifest:
    initialized: bool = True
    writer_epoch: int = 0
    compactor_epoch: int = 0
    replay_after_wal_id: int = 0
    wal_id_last_seen: int = 0
    last_compacted_l0_view_id: str | None = None
    l0: tuple[SstView, ...] = ()
    compacted: tuple[SortedRun, ...] = ()
    last_l0_clock_tick: int = I64_MIN
    checkpoints: tuple[CheckpointEntry, ...] = ()
    last_l0_seq: int = 0
    recent_snapshot_min_seq: int = 0
    sequence_tracker: bytes | None = EMPTY_SEQUENCE_TRACKER
    external_dbs: tuple[ExternalDb, ...] = ()
    segments: tuple[Segment, ...] = ()
    segment_extractor_name: str | None = None
    format_version: int = field(default=2, compare=False)

    def all_views(self) -> list[SstView]:
        views = list(self.l0)
        for run in self.compacted:
            views.extend(run.views)
        for seg in self.segments:
            views.extend(seg.l0)
            for run in seg.compacted:
                views.extend(run.views)
        return views

    def sst_ids(self) -> set[str]:
        return {v.sst.id for v in self.all_views()}

    def checkpoint(self, checkpoint_id: uuid.UUID) -> CheckpointEntry | None:
        return next((c for c in self.checkpoints if c.id == checkpoint_id), None)
