"""Options of the public API (plain, validated dataclasses; durations are `timedelta`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

COMPRESSIONS = (None, "snappy", "zlib", "lz4", "zstd")


def _positive(name: str, value: Any, *, zero_ok: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidArgumentError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, not {value}")


def _duration(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, timedelta):
        raise InvalidTypeError(f"{name} must be a datetime.timedelta, not {type(value).__name__}")
    if value < timedelta(0):
        raise InvalidArgumentError(f"{name} must not be negative, not {value}")


@dataclass(frozen=True)
class DbOptions:
    """Settings of a database writer (names and defaults follow SlateDB 0.17's `Settings`).

    Attributes:
        flush_interval: how often buffered writes become a WAL object; None disables the
            timer (writes still become durable when a caller waits for them or on flush()).
        l0_sst_size_bytes: memtable size at which it is written out as an L0 SST.
        l0_max_ssts: L0 SSTs beyond which writes slow down (compaction drains L0).
        max_sst_size: compaction output SSTs are split at about this size (32 MiB; SlateDB
            uses 256 MiB, but an output SST is what a compaction holds in memory, about
            twice over while it is uploaded).
        compactor_enabled, compactor_poll_interval, compaction_min_sources,
        compaction_max_sources, compaction_size_ratio: the embedded size-tiered compactor.
        block_size: data block size of the SSTs this writer creates.
        compression: None, "snappy", "zlib", "lz4" or "zstd" for new SSTs and WAL objects.
        bloom_bits_per_key, min_filter_keys: bloom filter policy of new SSTs.
        block_cache_bytes: memory for decoded data blocks.
        default_ttl: expiry of rows written without an explicit ttl (None: never).
        manifest_poll_interval: how often readers look for a new manifest.
        gc, gc_enabled: the background garbage collector of an open database.
    """

    flush_interval: timedelta | None = timedelta(milliseconds=100)
    l0_sst_size_bytes: int = 64 * 1024 * 1024
    l0_max_ssts: int = 8
    max_sst_size: int = 32 * 1024 * 1024
    block_size: int = 4096
    compression: str | None = None
    bloom_bits_per_key: int = 10
    min_filter_keys: int = 1000
    block_cache_bytes: int = 64 * 1024 * 1024
    default_ttl: timedelta | None = None
    manifest_poll_interval: timedelta = timedelta(seconds=1)
    gc: GcOptions | None = None  # None: the default GcOptions(); see also `gc_enabled`
    gc_enabled: bool = True
    compactor_enabled: bool = True
    compactor_poll_interval: timedelta = timedelta(seconds=1)
    compaction_min_sources: int = 4
    compaction_max_sources: int = 8
    compaction_size_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.gc is not None and not isinstance(self.gc, GcOptions):
            raise InvalidTypeError(f"gc must be GcOptions, not {type(self.gc).__name__}")
        _duration("flush_interval", self.flush_interval, allow_none=True)
        _duration("default_ttl", self.default_ttl, allow_none=True)
        _duration("manifest_poll_interval", self.manifest_poll_interval, allow_none=False)
        _positive("l0_sst_size_bytes", self.l0_sst_size_bytes)
        _positive("l0_max_ssts", self.l0_max_ssts)
        _positive("max_sst_size", self.max_sst_size)
        _duration("compactor_poll_interval", self.compactor_poll_interval, allow_none=False)
        _positive("compaction_min_sources", self.compaction_min_sources)
        _positive("compaction_max_sources", self.compaction_max_sources)
        if self.compaction_min_sources < 2 or self.compaction_max_sources < self.compaction_min_sources:
            raise InvalidArgumentError("compaction needs 2 <= compaction_min_sources <= compaction_max_sources")
        if not self.compaction_size_ratio >= 1:
            raise InvalidArgumentError(f"compaction_size_ratio must be >= 1, not {self.compaction_size_ratio}")
        _positive("block_size", self.block_size)
        if self.block_size > 65536:
            raise InvalidArgumentError(f"block_size must be <= 65536, not {self.block_size}")
        _positive("bloom_bits_per_key", self.bloom_bits_per_key, zero_ok=True)
        _positive("min_filter_keys", self.min_filter_keys, zero_ok=True)
        _positive("block_cache_bytes", self.block_cache_bytes, zero_ok=True)
        if self.compression not in COMPRESSIONS:
            raise InvalidArgumentError(
                f"compression must be one of {COMPRESSIONS}, not {self.compression!r}"
            )


@dataclass(frozen=True)
class GcOptions:
    """What the garbage collector may delete, and how often an open `Db` runs it.

    Objects younger than their kind's minimum age are kept (`min_age` unless a per-kind
    override is set): a reader or writer elsewhere may be about to use an object it just saw.
    """

    min_age: timedelta = timedelta(minutes=5)
    manifest_min_age: timedelta | None = None
    wal_min_age: timedelta | None = None
    wal_fence_min_age: timedelta | None = None
    compacted_min_age: timedelta | None = None
    delete_wal_fences: bool = True
    interval: timedelta | None = timedelta(minutes=10)

    def __post_init__(self) -> None:
        _duration("min_age", self.min_age, allow_none=False)
        for name in ("manifest_min_age", "wal_min_age", "wal_fence_min_age", "compacted_min_age", "interval"):
            _duration(name, getattr(self, name), allow_none=True)

    def age(self, kind: str) -> timedelta:
        override = getattr(self, f"{kind}_min_age")
        return self.min_age if override is None else override


@dataclass(frozen=True)
class CheckpointOptions:
    """`lifetime` None: never expires. `source`: pin the same manifest as that checkpoint."""

    lifetime: timedelta | None = None
    source: uuid.UUID | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        _duration("lifetime", self.lifetime, allow_none=True)
        if self.source is not None and not isinstance(self.source, uuid.UUID):
            raise InvalidTypeError(f"source must be a uuid.UUID, not {type(self.source).__name__}")
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidTypeError(f"name must be a str, not {type(self.name).__name__}")


@dataclass(frozen=True)
class ReaderOptions:
    """Options of a `DbReader`.

    Attributes:
        manifest_poll_interval: how often a following reader refreshes itself (None: only
            on `refresh()`).
        managed_checkpoint: a following reader holds a short-lived checkpoint of the version
            it reads, so the garbage collector keeps its files; False writes nothing at all.
        checkpoint_lifetime: that checkpoint's lifetime; it is refreshed at half-life.
    """

    manifest_poll_interval: timedelta | None = timedelta(seconds=1)
    block_cache_bytes: int = 64 * 1024 * 1024
    managed_checkpoint: bool = True
    checkpoint_lifetime: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        _duration("manifest_poll_interval", self.manifest_poll_interval, allow_none=True)
        _duration("checkpoint_lifetime", self.checkpoint_lifetime, allow_none=False)
        if self.checkpoint_lifetime < timedelta(seconds=2):
            raise InvalidArgumentError("checkpoint_lifetime must be at least 2 seconds")
        _positive("block_cache_bytes", self.block_cache_bytes, zero_ok=True)
