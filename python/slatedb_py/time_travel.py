"""Time travel: the database exactly as it was at a point in time (docs/architecture.md,
"Time travel").

The state at `when` is every durable write whose write time (`create_ts`, the writer's
clock, which never goes backwards, so it rises with the seq) is at or before `when`: the
writes up to the *cut*, the last seq written at or before `when`. It is rebuilt as

- the tree of the newest manifest version whose `last_l0_clock_tick` (the write time of the
  newest write in its L0 SSTs and sorted runs) is at or before `when`: its tree holds only
  writes up to its `last_l0_seq`, all at or before `when` (a compaction adds no write);
- plus the WAL objects after its `replay_after_wal_id`, rows with seq above `last_l0_seq`,
  read in id (and so seq) order up to the first row written after `when`: the last row taken
  is the cut. The WAL gives each write's exact time; the sequence tracker (minute-grained)
  is not needed.

TTLs are evaluated at the time of the read, as in every read, not at `when`: flushes and
compactions drop rows expired at their own time, so a row live at `when` but expired since
may be gone from the very version chosen; evaluated now, the answer does not depend on when
they ran.

Manifest versions carry no time of their own in the format; `last_l0_clock_tick` is the time
of their tree's data, which is what the choice needs. Objects' `last_modified` is not used:
it is the store's clock, not the writer's. An in-place restore stamps its own time as the
tick of the version it writes (`restore.py`), so time travel across a restore shows each side
as it was.

The collector keeps, with `history_retention=d`, the newest version whose tick is at or
before `now - d` (the one a read at the window's start chooses) and every newer one, the
SSTs they name and the WAL from the oldest replay point of those on (`garbage_collector`).

The retention is recorded in the database, `<root>/history_retention.json`, by a writer
opened with `DbOptions(history_retention=d)` (`timedelta(0)` removes the record), so that
every collector of the database keeps the history the writer promised: the embedded one, a
standalone `admin.run_gc_once` or `slatedb-py gc`, a later writer opened without the option.
Their own `history_retention`, when set, overrides it; readers give the recorded window in
their errors. SlateDB's collectors do not know the record (it is ours; they ignore it) and
keep no history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from slatedb_py.checkpoint import remove_checkpoint
from slatedb_py.clock import Clock
from slatedb_py.errors import (
    CheckpointNotFoundError,
    DataError,
    InvalidTypeError,
    MissingObjectError,
    OutsideRetentionError,
)
from slatedb_py.ids import new_uuid
from slatedb_py.manifest.model import CheckpointEntry, Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.store import Store
from slatedb_py.wal import FENCE_MAX_BYTES, list_wal_objects

# The life of the checkpoint a clone or a restore at a time holds while it works.
PIN_LIFETIME = timedelta(minutes=5)


def _retention_key(paths: DbPaths) -> str:
    return f"{paths.root}/history_retention.json"


def recorded_retention(store: Store, paths: DbPaths) -> timedelta | None:
    """The retention a writer recorded (module docstring), or None."""
    key = _retention_key(paths)
    data = store.get(key)
    if data is None:
        return None
    try:
        ms = json.loads(data)["history_retention_ms"]
        if type(ms) is not int or ms < 0:
            raise ValueError(ms)
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{key!r} is not a history retention record: {e}", object=key) from e
    return timedelta(milliseconds=ms) if ms else None


def record_retention(store: Store, paths: DbPaths, retention: timedelta) -> None:
    """Records the writer's `retention` unless it is recorded already (zero: no record)."""
    ms = retention // timedelta(milliseconds=1)
    now = recorded_retention(store, paths)
    if (now or timedelta(0)) == timedelta(milliseconds=ms):
        return
    if ms:
        store.put(_retention_key(paths), json.dumps({"history_retention_ms": ms}).encode())
    else:
        store.delete(_retention_key(paths))


def effective_retention(option: timedelta | None, store: Store, paths: DbPaths) -> timedelta | None:
    """The caller's own retention when set, else the recorded one."""
    return option if option is not None else recorded_retention(store, paths)


def when_ms(when: object) -> int:
    """`when` (an aware datetime) in Unix ms; InvalidTypeError otherwise, before any I/O."""
    if not isinstance(when, datetime):
        raise InvalidTypeError(
            f"a point in time must be a datetime, not {type(when).__name__} {when!r:.60}"
        )
    if when.tzinfo is None or when.utcoffset() is None:
        raise OutsideRetentionError(
            f"a point in time must be an aware datetime (with a tzinfo), not naive {when}",
            when=when,
            oldest=None,
            newest=None,
        )
    return int(when.timestamp() * 1000)


def as_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def outside(
    root: str, when: datetime, oldest_ms: int | None, now_ms: int, why: str
) -> OutsideRetentionError:
    oldest = None if oldest_ms is None else as_datetime(oldest_ms)
    newest = as_datetime(now_ms)
    window = f"[{oldest.isoformat() if oldest else 'nothing'}, {newest.isoformat()}]"
    return OutsideRetentionError(
        f"{when.isoformat()} is outside the retained history of {root!r}: {why}; "
        f"the window is {window}",
        when=when,
        oldest=oldest,
        newest=newest,
    )


@dataclass(frozen=True)
class Point:
    """Where the state at a time comes from: a manifest version (its id and contents)."""

    manifest_id: int
    manifest: Manifest
    newer_tick: int | None = None  # the tick of the next newer version, if any


def find_version(
    manifests: ManifestStore,
    when: datetime,
    now_ms: int,
    retention: timedelta | None = None,
) -> Point:
    """The newest manifest version whose tree was written at or before `when` (module
    docstring); OutsideRetentionError (giving the window) for a future or naive `when`, one
    before `now - retention` (when given), or one older than every version left."""
    at = when_ms(when)
    root = manifests.paths.root
    floor = None if retention is None else now_ms - int(retention.total_seconds() * 1000)
    if at > now_ms:
        raise outside(root, when, floor, now_ms, "it is in the future")
    ids = sorted(manifests.ids(), reverse=True)
    if not ids:
        raise manifests.missing()
    oldest: int | None = None
    for mid in ids:
        m = manifests.read(mid)
        if m is None:
            continue  # collected while listed
        if m.last_l0_clock_tick <= at or m.last_l0_seq == 0:
            if floor is not None and at < floor:
                raise outside(root, when, floor, now_ms, "it is older than history_retention")
            return Point(mid, m, oldest)
        oldest = m.last_l0_clock_tick
    lo = oldest if floor is None else max(floor, oldest or floor)
    raise outside(root, when, lo, now_ms, "no manifest version that old is left")


def check_ssts(store: Store, paths: DbPaths, m: Manifest) -> None:
    """MissingObjectError unless every SST `m`'s tree names is still there (one LIST per
    folder): an old version may outlive the SSTs only it needed."""
    wanted = {paths.sst_in(m, v.sst.id) for v in m.all_views()}
    folders = {w.rsplit("/", 1)[0] + "/" for w in wanted}
    present = {meta.path for f in folders for meta in store.list(f)}
    for w in sorted(wanted - present):
        raise MissingObjectError(f"SST {w!r} is gone", object=w)


def replay_until(
    memtable: Any,
    store: Store,
    paths: DbPaths,
    m: Manifest,
    upto_ms: int,
    last_wal: int | None = None,
    progress: Progress = SILENT,
) -> int:
    """Replays the WAL after `m`'s replay point into `memtable`: the rows above its
    `last_l0_seq` written at or before `upto_ms`, stopping at the first one written after
    (ids up to `last_wal`, when given); a row without a write time counts as written at
    `upto_ms`. Each object is replayed natively (`Memtable.replay_wal`). Returns the cut: the
    last seq taken (or `last_l0_seq`). A WAL object missing in the range is a
    MissingObjectError."""
    cut = m.last_l0_seq
    expected = m.replay_after_wal_id + 1
    listed = list_wal_objects(store, paths, after=m.replay_after_wal_id)
    listed = [(w, n) for w, n in listed if last_wal is None or w <= last_wal]
    progress.total(len(listed), sum(n for _, n in listed))
    for wid, size in listed:
        if wid != expected:
            raise MissingObjectError(
                f"WAL {paths.wal(expected)!r} is gone: the history it held is not retained",
                object=paths.wal(expected),
            )
        expected = wid + 1
        progress.advance(1, size)
        if size <= FENCE_MAX_BYTES:
            continue
        key = paths.wal(wid)
        data = store.get(key)
        if data is None:
            raise MissingObjectError(f"WAL {key!r} is gone", object=key)
        _, seen, ended = memtable.replay_wal(data, m.last_l0_seq, key, upto_ms)
        cut = max(cut, seen)
        if ended:
            break
    return cut


def pin_version(
    manifests: ManifestStore, manifest_id: int, lifetime: timedelta, clock: Clock
) -> CheckpointEntry:
    """A checkpoint on the existing version `manifest_id` (it keeps that version and its SSTs
    from the collector). The caller checks after pinning that the version and its files are
    still there: a collector run that began before the pin may have taken them."""
    now_s = clock.now_ms() // 1000
    entry = CheckpointEntry(
        id=new_uuid(),
        manifest_id=manifest_id,
        expire_time_s=now_s + max(1, int(lifetime.total_seconds())),
        create_time_s=now_s,
    )

    def add(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
        if m.checkpoint(entry.id) is not None:
            return None, None
        return replace(m, checkpoints=(*m.checkpoints, entry)), None

    manifests.update(add)
    return entry


def open_at(
    manifests: ManifestStore,
    when: datetime,
    clock: Clock,
    memtable: Any,
    *,
    lifetime: timedelta | None,
    retention: timedelta | None = None,
    progress: Progress = SILENT,
) -> tuple[Point, CheckpointEntry | None, int]:
    """The version to read at `when`, pinned by a checkpoint of `lifetime` (None: not
    pinned), checked to be whole (its SSTs, the WAL after it), with the WAL rows up to the
    cut replayed into `memtable`; returns it, the checkpoint and the cut. What is gone is an
    OutsideRetentionError (the checkpoint is removed again)."""
    now_ms = clock.now_ms()
    store, paths = manifests.store, manifests.paths
    retention = effective_retention(retention, store, paths)
    point = find_version(manifests, when, now_ms, retention)
    pin = None if lifetime is None else pin_version(manifests, point.manifest_id, lifetime, clock)
    try:
        if manifests.read(point.manifest_id) is None:
            key = paths.manifest(point.manifest_id)
            raise MissingObjectError(f"manifest {key!r} is gone", object=key)
        check_ssts(store, paths, point.manifest)
        cut = replay_until(memtable, store, paths, point.manifest, when_ms(when), None, progress)
    except MissingObjectError as err:
        if pin is not None:
            try:
                remove_checkpoint(manifests, pin.id)
            except CheckpointNotFoundError:
                pass
        raise outside(
            paths.root, when, point.newer_tick, now_ms, f"what that point needs is gone ({err})"
        ) from err
    return point, pin, cut
