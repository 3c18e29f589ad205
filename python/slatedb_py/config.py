"""Options of the public API (plain, validated dataclasses; durations are `timedelta`)."""

from __future__ import annotations

import enum
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from slatedb_py.batch import ttl_ms
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError
from slatedb_py.merge import check_operator

COMPRESSIONS = (None, "snappy", "zlib", "lz4", "zstd")

# Floors of the background timers. A zero or tiny interval made an idle database spin a core
# (and, for the store-polling timers, send the store requests nonstop).
# - MIN_FLUSH_INTERVAL (1 ms): `flush_interval`, the WAL ticker; an idle tick touches no store.
# - MIN_POLL_INTERVAL (5 ms): timers that read the object store on every tick
#   (`compactor_poll_interval`, `manifest_poll_interval`, `GcOptions.interval`): each round
#   LISTs and GETs, so it costs several times a WAL tick. With every timer at its floor an
#   idle Db uses 0.1-0.2 of a core (tests/regressions/test_zero_intervals.py); a 1 ms floor
#   for these too would let it reach half a core on a LocalStore.
# Values this small are for tests; production intervals are 100 ms to minutes.
MIN_FLUSH_INTERVAL = timedelta(milliseconds=1)
MIN_POLL_INTERVAL = timedelta(milliseconds=5)

T = TypeVar("T")


def check_options(options: Any, cls: type[T], name: str = "options") -> T:
    """The one check of a public function's `options` argument: None means the defaults,
    `cls()`; anything that is not a `cls` (a falsy 0 or "" included) is an InvalidTypeError
    naming the value. Called before the function touches the store."""
    if options is None:
        return cls()
    if not isinstance(options, cls):
        raise InvalidTypeError(
            f"{name} must be {cls.__name__} or None, not {type(options).__name__} {options!r:.60}"
        )
    return options


def _positive(name: str, value: Any, *, zero_ok: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidArgumentError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, not {value}")


def _flag(name: str, value: Any) -> None:
    # A string like "false" is truthy: only a real bool says what it means.
    if not isinstance(value, bool):
        raise InvalidTypeError(f"{name} must be a bool, not {type(value).__name__} {value!r:.60}")


def _disk_cache(directory: Any, max_bytes: Any) -> None:
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise InvalidTypeError(
            "disk_cache_dir must be a path (str or os.PathLike) or None, "
            f"not {type(directory).__name__}"
        )
    _positive("disk_cache_bytes", max_bytes)


def _poll_interval(name: str, value: Any, *, allow_none: bool) -> None:
    """A timer that reads the store on every tick: at least `MIN_POLL_INTERVAL`."""
    _duration(name, value, allow_none=allow_none, minimum=MIN_POLL_INTERVAL)


def _duration(
    name: str, value: Any, *, allow_none: bool, minimum: timedelta = timedelta(0)
) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, timedelta):
        orn = " or None" if allow_none else ""
        raise InvalidTypeError(
            f"{name} must be a datetime.timedelta{orn}, not {type(value).__name__} {value!r:.60}"
        )
    if value < minimum:
        if not minimum:
            raise InvalidArgumentError(f"{name} must not be negative, not {value}")
        off = " (None turns the timer off)" if allow_none else ""
        raise InvalidArgumentError(
            f"{name} must be at least {minimum // timedelta(milliseconds=1)} ms{off}, not {value}: "
            "a shorter interval makes an idle database spin"
        )


@dataclass(frozen=True)
class DbOptions:
    """Settings of a database writer (names and defaults follow SlateDB 0.17's `Settings`).

    Attributes:
        flush_interval: how often buffered writes become a WAL object, at least 1 ms
            (`MIN_FLUSH_INTERVAL`); None disables the timer (writes still become durable
            when a caller waits for them or on flush()).
        l0_sst_size_bytes: memtable size at which it is written out as an L0 SST.
        l0_max_ssts: L0 SSTs beyond which writes slow down (compaction drains L0).
        max_sst_size: compaction output SSTs are split at about this size (256 MiB, as
            SlateDB). An output is uploaded in parts as it is written, so a compaction holds
            a few parts in memory (`Store.part_size`), not the SST.
        compactor_enabled, compactor_poll_interval, compaction_min_sources,
        compaction_max_sources, compaction_size_ratio: the embedded size-tiered compactor;
            its poll interval is at least 5 ms (`MIN_POLL_INTERVAL`). An embedded round plans
            on the writer's own manifest, which sees every flush, and looks at the store (one
            short LIST) only once that is 30 s old; the compactor claims its epoch when it
            first has work. A standalone compactor (`admin.run_compactor`) looks every round.
        block_size: data block size of the SSTs this writer creates.
        compression: None, "snappy", "zlib", "lz4" or "zstd" for new SSTs and WAL objects.
        bloom_bits_per_key, min_filter_keys: bloom filter policy of new SSTs.
        sst_block_alignment: pad each data block of new L0 and compacted SSTs with zeros to
            a multiple of `block_size`, as SlateDB 0.18's `with_sst_block_alignment` does
            (reads of a block then fall on block-size boundaries). Not with `compression`;
            WAL objects are never padded. SlateDB before 0.18 cannot read padded SSTs.
        block_cache_bytes: memory for decoded data blocks. SSTs in a local folder are read
            natively with `pread`, so there the operating system's page cache backs it up.
        max_unflushed_bytes: memory budget of the memtables not yet written as L0 SSTs
            (the active one and those waiting for the flusher), measured as what they really
            hold. The active memtable is frozen at `l0_sst_size_bytes` of encoded rows or at
            half this budget of memory, whichever comes first; a write that finds the budget
            exceeded helps flush before it returns: the backpressure that keeps a bulk load's
            memory bounded (128 MiB by default: small rows cost about three times their bytes
            in memory, so their L0 SSTs come out smaller than `l0_sst_size_bytes`).
        disk_cache_dir, disk_cache_bytes: an optional on-disk cache of SST blocks and
            metadata for remote stores (`slatedb_py.disk_cache`): bounded, shared by restarts.
            None (the default) keeps no disk cache; it is never used for a local folder,
            whose files are read directly.
        default_ttl: expiry of rows written without an explicit ttl (None: never). The rule
            of every TTL (`slatedb_py.batch.ttl_ms`): whole milliseconds, finer parts
            truncated, at least 1 ms.
        gc, gc_enabled: the background garbage collector of an open database.
        history_retention: how far back time travel reaches (`DbReader.open(as_of=)`,
            `admin.restore_to_time`, `admin.create_clone(as_of=)`): the embedded collector
            keeps every manifest version, SST and WAL object a read at any time within the
            last `history_retention` needs (it overrides `gc.history_retention` when set).
            The writer records it in the database, so that every collector of it (a
            standalone `admin.run_gc_once`, a later writer opened without it) keeps the same
            history; `timedelta(0)` removes the record. None (the default): what is recorded
            (nothing unless set once; then no history is kept beyond what the collector
            keeps anyway).
        merge_operator: folds merge operands (`db.merge`) in reads and compactions: a
            callable `(key, existing | None, operand) -> bytes` or a built-in of
            `slatedb_py.merge`. None: writing a merge raises, and reading a key that holds
            operands raises `MergeOperatorError` naming it.
    """

    flush_interval: timedelta | None = timedelta(milliseconds=100)
    l0_sst_size_bytes: int = 64 * 1024 * 1024
    l0_max_ssts: int = 8
    max_sst_size: int = 256 * 1024 * 1024
    block_size: int = 4096
    compression: str | None = None
    bloom_bits_per_key: int = 10
    min_filter_keys: int = 1000
    sst_block_alignment: bool = False
    block_cache_bytes: int = 64 * 1024 * 1024
    max_unflushed_bytes: int = 128 * 1024 * 1024
    disk_cache_dir: str | os.PathLike[str] | None = None
    disk_cache_bytes: int = 1024 * 1024 * 1024
    default_ttl: timedelta | None = None
    gc: GcOptions | None = None  # None: the default GcOptions(); see also `gc_enabled`
    gc_enabled: bool = True
    history_retention: timedelta | None = None
    compactor_enabled: bool = True
    compactor_poll_interval: timedelta = timedelta(seconds=1)
    compaction_min_sources: int = 4
    compaction_max_sources: int = 8
    compaction_size_ratio: float = 4.0
    merge_operator: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge_operator", check_operator(self.merge_operator))
        _flag("gc_enabled", self.gc_enabled)
        _flag("compactor_enabled", self.compactor_enabled)
        if self.gc is not None and not isinstance(self.gc, GcOptions):
            raise InvalidTypeError(f"gc must be GcOptions, not {type(self.gc).__name__}")
        _duration(
            "flush_interval", self.flush_interval, allow_none=True, minimum=MIN_FLUSH_INTERVAL
        )
        ttl_ms(self.default_ttl, "default_ttl")
        _duration("history_retention", self.history_retention, allow_none=True)
        _positive("l0_sst_size_bytes", self.l0_sst_size_bytes)
        _positive("l0_max_ssts", self.l0_max_ssts)
        _positive("max_sst_size", self.max_sst_size)
        _poll_interval("compactor_poll_interval", self.compactor_poll_interval, allow_none=False)
        _positive("compaction_min_sources", self.compaction_min_sources)
        _positive("compaction_max_sources", self.compaction_max_sources)
        if (
            self.compaction_min_sources < 2
            or self.compaction_max_sources < self.compaction_min_sources
        ):
            raise InvalidArgumentError(
                "compaction needs 2 <= compaction_min_sources <= compaction_max_sources"
            )
        if not self.compaction_size_ratio >= 1:
            raise InvalidArgumentError(
                f"compaction_size_ratio must be >= 1, not {self.compaction_size_ratio}"
            )
        _positive("block_size", self.block_size)
        if self.block_size > 65536:
            raise InvalidArgumentError(f"block_size must be <= 65536, not {self.block_size}")
        _positive("bloom_bits_per_key", self.bloom_bits_per_key, zero_ok=True)
        _positive("min_filter_keys", self.min_filter_keys, zero_ok=True)
        _positive("block_cache_bytes", self.block_cache_bytes, zero_ok=True)
        _positive("max_unflushed_bytes", self.max_unflushed_bytes)
        _disk_cache(self.disk_cache_dir, self.disk_cache_bytes)
        if self.compression not in COMPRESSIONS:
            raise InvalidArgumentError(
                f"compression must be one of {COMPRESSIONS}, not {self.compression!r}"
            )
        _flag("sst_block_alignment", self.sst_block_alignment)
        if self.sst_block_alignment and self.compression is not None:
            # As 0.18: a padded block's size must not depend on how well it compresses.
            raise InvalidArgumentError("sst_block_alignment cannot be combined with compression")


@dataclass(frozen=True)
class GcOptions:
    """What the garbage collector may delete, and how often an open `Db` runs it.

    Objects younger than their kind's minimum age are kept (`min_age` unless a per-kind
    override is set): a reader or writer elsewhere may be about to use an object it just saw.

    Whatever the ages, some things are kept for the protocols' sake (`slatedb_py.safety`):
    manifest versions, compactor states and WAL fences less than 5 minutes older than the
    newest object in the database (the store's clock), and WAL fences at all unless
    `delete_wal_fences` (False by default, as in SlateDB: a fence is what stops a stalled
    older writer, and it is zero bytes).

    `interval`: how often an open `Db` collects, at least 5 ms (`MIN_POLL_INTERVAL`: every
    run LISTs the database's folders); None: never in the background.

    `history_retention`: keep what time travel to any point in the last `history_retention`
    needs (`DbOptions.history_retention`, `slatedb_py.time_travel`); None: the retention the
    database's writer recorded (none unless a writer was opened with one).
    """

    min_age: timedelta = timedelta(minutes=5)
    manifest_min_age: timedelta | None = None
    wal_min_age: timedelta | None = None
    wal_fence_min_age: timedelta | None = None
    compacted_min_age: timedelta | None = None
    delete_wal_fences: bool = False
    interval: timedelta | None = timedelta(minutes=10)
    history_retention: timedelta | None = None

    def __post_init__(self) -> None:
        _flag("delete_wal_fences", self.delete_wal_fences)
        _duration("history_retention", self.history_retention, allow_none=True)
        _duration("min_age", self.min_age, allow_none=False)
        for name in ("manifest_min_age", "wal_min_age", "wal_fence_min_age", "compacted_min_age"):
            _duration(name, getattr(self, name), allow_none=True)
        _poll_interval("interval", self.interval, allow_none=True)

    def age(self, kind: str) -> timedelta:
        override = getattr(self, f"{kind}_min_age")
        return self.min_age if override is None else override


@dataclass(frozen=True)
class CheckpointOptions:
    """`lifetime` None: never expires; else positive, stored in whole seconds and rounded up
    (so a checkpoint is never expired when it is made). `source`: pin the same manifest as that
    checkpoint."""

    lifetime: timedelta | None = None
    source: uuid.UUID | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        _duration("lifetime", self.lifetime, allow_none=True)
        if self.lifetime is not None and self.lifetime <= timedelta(0):
            raise InvalidArgumentError(
                f"lifetime must be positive (None: never expires), not {self.lifetime}"
            )
        if self.source is not None and not isinstance(self.source, uuid.UUID):
            raise InvalidTypeError(f"source must be a uuid.UUID, not {type(self.source).__name__}")
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidTypeError(f"name must be a str, not {type(self.name).__name__}")


@dataclass(frozen=True)
class ReaderOptions:
    """Options of a `DbReader`.

    Attributes:
        manifest_poll_interval: how often a following reader refreshes itself, at least
            5 ms (`MIN_POLL_INTERVAL`: every refresh LISTs the store); None: only on
            `refresh()`.
        managed_checkpoint: a following reader holds a short-lived checkpoint of the version
            it reads, so the garbage collector keeps its files; False writes nothing at all.
        checkpoint_lifetime: that checkpoint's lifetime; it is refreshed at half-life.
        block_cache_bytes, disk_cache_dir, disk_cache_bytes, merge_operator: as in
            `DbOptions`.
    """

    manifest_poll_interval: timedelta | None = timedelta(seconds=1)
    block_cache_bytes: int = 64 * 1024 * 1024
    disk_cache_dir: str | os.PathLike[str] | None = None
    disk_cache_bytes: int = 1024 * 1024 * 1024
    managed_checkpoint: bool = True
    checkpoint_lifetime: timedelta = timedelta(minutes=10)
    merge_operator: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge_operator", check_operator(self.merge_operator))
        _flag("managed_checkpoint", self.managed_checkpoint)
        _poll_interval("manifest_poll_interval", self.manifest_poll_interval, allow_none=True)
        _duration("checkpoint_lifetime", self.checkpoint_lifetime, allow_none=False)
        if self.checkpoint_lifetime < timedelta(seconds=2):
            raise InvalidArgumentError("checkpoint_lifetime must be at least 2 seconds")
        _positive("block_cache_bytes", self.block_cache_bytes, zero_ok=True)
        _disk_cache(self.disk_cache_dir, self.disk_cache_bytes)


class IsolationLevel(enum.Enum):
    """How much a transaction's commit checks (`Db.begin`), as in SlateDB 0.17.0.

    Attributes:
        SNAPSHOT: reads see the database as of `begin` plus the transaction's own writes; the
            commit fails when a key it wrote was written by someone else after it began.
        SERIALIZABLE_SNAPSHOT: also fails when a key it read (`get`, `get_many`) or any key
            inside a range it scanned was written after it began (even a scan that yielded
            nothing, and even a transaction that wrote nothing).
    """

    SNAPSHOT = "snapshot"
    SERIALIZABLE_SNAPSHOT = "serializable_snapshot"
