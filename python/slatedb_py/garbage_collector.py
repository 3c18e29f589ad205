"""The garbage collector (FORMAT.md 5.4): deletes what neither the latest manifest nor any
live checkpoint needs, and removes expired checkpoints first.

Kept, always:
- the latest manifest, and every manifest a live checkpoint pins;
- WAL objects the latest manifest replays (ids after its replay point; the replay point
  itself too, as SlateDB does) and those each pinned manifest replays;
- compacted SSTs referenced by the latest or a pinned manifest; unreferenced ones only go when
  their ULID time is older than the minimum age, the newest L0 SST of the latest manifest (an
  SST uploaded by a flush that has not reached the manifest yet is newer than every L0 it will
  join) and the oldest compaction the compactor state lists (an output uploaded before its
  compaction commits is newer than that compaction's id; `compaction_state`). With no state,
  or none listed, no unreferenced SST goes. The state is read before the manifest: read after,
  it could already have dropped a compaction whose commit the manifest read does not show;
- the latest `compactions/` state of the compactor;
- anything younger than its kind's minimum age;
- the staging files of uploads a crash cut short in a local folder (`Store.leftovers`: never
  listed, never referenced) until they have not been written for their kind's minimum age;
  one under `compacted/` also until the SST it was to become could go by the rules above;
- manifests, compactor states and WAL fences less than `safety.COLLECTOR_FLOOR` older than the
  newest object listed (the store's clock, not ours), whatever the options, and WAL fences at
  all unless `GcOptions.delete_wal_fences`: they are what stops a stalled, fenced writer and a
  slow manifest update from landing on a collected id (`slatedb_py.safety`).
With `GcOptions.history_retention` (time travel, `slatedb_py.time_travel`), also kept: the
manifest versions a read at any point of the last `history_retention` chooses (the newest
whose `last_l0_clock_tick` is at or before the window's start, and every newer one), every SST
they name, and every WAL object from the oldest replay point among them on.
No boundary files are written: they need conditional overwrites that LocalStore (and some S3
services) cannot do, and the collector must keep working there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from slatedb_py.checkpoint import is_live
from slatedb_py.clock import Clock
from slatedb_py.compaction_state import CompactionsStore, oldest_listed_ms
from slatedb_py.config import GcOptions
from slatedb_py.errors import DataError
from slatedb_py.ids import ulid_timestamp_ms
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.manifest.versioned import version_id_of
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.safety import COLLECTOR_FLOOR
from slatedb_py.store import ObjectMeta, Store
from slatedb_py.time_travel import effective_retention

_log = logging.getLogger("slatedb_py.gc")


@dataclass
class GcResult:
    """What one collection deleted (object keys per kind) and which checkpoints expired."""

    manifests: list[str] = field(default_factory=list)
    wal: list[str] = field(default_factory=list)
    wal_fences: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
    compactions: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    expired_checkpoints: list[str] = field(default_factory=list)

    @property
    def deleted(self) -> list[str]:
        return [
            *self.manifests, *self.wal, *self.wal_fences, *self.compacted, *self.compactions,
            *self.leftovers,
        ]  # fmt: skip


class _Delete(Protocol):
    def __call__(self, meta: ObjectMeta, leftover: bool = False) -> None: ...


def _ms(meta: ObjectMeta) -> float:
    return meta.last_modified.timestamp() * 1000


def _old_enough(meta: ObjectMeta, now_ms: int, age: timedelta) -> bool:
    return _ms(meta) <= now_ms - age.total_seconds() * 1000


def _wal_needed(m: Manifest, wal_id: int, *, latest: bool) -> bool:
    if latest:
        return wal_id >= m.replay_after_wal_id
    return m.replay_after_wal_id < wal_id <= m.wal_id_last_seen


def _history(
    manifests: ManifestStore,
    listed: list[ObjectMeta],
    latest_id: int,
    latest: Manifest,
    options: GcOptions,
    now_ms: int,
) -> dict[int, Manifest]:
    """The versions time travel within `history_retention` may choose (module docstring),
    read newest first down to the first whose tree was written at or before the window's
    start; empty without a retention."""
    if options.history_retention is None:
        return {}
    start_ms = now_ms - options.history_retention.total_seconds() * 1000
    kept = {latest_id: latest}
    if latest.last_l0_clock_tick <= start_ms:
        return kept
    ids = sorted(
        {i for i in map(DbPaths.manifest_id_of, (m.path for m in listed)) if i}, reverse=True
    )
    for mid in ids:
        if mid >= latest_id:
            continue
        m = manifests.read(mid)
        if m is None:
            continue
        kept[mid] = m
        if m.last_l0_clock_tick <= start_ms:
            break
    return kept


def collect_garbage(
    store: Store,
    paths: DbPaths,
    options: GcOptions,
    clock: Clock,
    progress: Progress = SILENT,
) -> GcResult:
    """One collection (module docstring); `progress` hears of each object deleted."""

    def delete(meta: ObjectMeta, leftover: bool = False) -> None:
        (store.delete_leftover if leftover else store.delete)(meta.path)
        progress.advance(objects=1, nbytes=meta.size)

    result = _collect(store, paths, options, clock, delete)
    level = logging.INFO if result.deleted or result.expired_checkpoints else logging.DEBUG
    _log.log(
        level,
        "collected %r: %d manifests, %d WAL objects, %d WAL fences, %d SSTs, %d compaction "
        "states, %d upload leftovers deleted; %d checkpoints expired",
        paths.root, len(result.manifests), len(result.wal), len(result.wal_fences),
        len(result.compacted), len(result.compactions), len(result.leftovers),
        len(result.expired_checkpoints),
    )  # fmt: skip
    return result


def _collect(
    store: Store,
    paths: DbPaths,
    options: GcOptions,
    clock: Clock,
    delete: _Delete,
) -> GcResult:
    manifests = ManifestStore(store, paths, clock)
    result = GcResult()
    now_ms = clock.now_ms()
    # What the writer promised (`time_travel`, "recorded"), unless the caller says otherwise.
    keep = effective_retention(options.history_retention, store, paths)
    options = replace(options, history_retention=keep)

    dropped: list[str] = []

    def drop_expired(_mid: int, m: Manifest) -> tuple[Manifest | None, list[str]]:
        nonlocal dropped
        live = tuple(c for c in m.checkpoints if is_live(c, now_ms // 1000))
        if len(live) == len(m.checkpoints):
            # Nothing (left) to drop; after an unknown outcome, what the landed try dropped.
            return None, dropped
        dropped = [str(c.id) for c in m.checkpoints if c not in live]
        return replace(m, checkpoints=live), dropped

    # Before the manifest (module docstring): the compactions this state lists may be
    # committed by the time the manifest is read, never the other way round.
    listed_states = store.list(paths.compactions_dir)
    try:
        state = CompactionsStore(store, paths, clock).latest(listed_states)
        compaction_mark_ms = oldest_listed_ms(None if state is None else state[1])
    except DataError:
        compaction_mark_ms = None  # unreadable: delete no unreferenced SST
    latest_id, latest, result.expired_checkpoints = manifests.update(drop_expired)
    pinned: dict[int, Manifest] = {}
    for c in latest.checkpoints:
        if c.manifest_id == latest_id:
            pinned[latest_id] = latest
        elif c.manifest_id not in pinned:
            pm = manifests.read(c.manifest_id)
            if pm is not None:
                pinned[c.manifest_id] = pm

    listed_manifests = store.list(paths.manifest_dir)
    history = _history(manifests, listed_manifests, latest_id, latest, options, now_ms)
    listed_wal = store.list(paths.wal_dir)
    # The floor is measured on the store's clock, against the newest object seen here: a
    # collector whose own clock runs ahead cannot shorten it (slatedb_py.safety).
    store_now_ms = max(
        (_ms(m) for m in (*listed_manifests, *listed_wal, *listed_states)), default=0
    )

    def past_floor(meta: ObjectMeta) -> bool:
        return _ms(meta) <= store_now_ms - COLLECTOR_FLOOR.total_seconds() * 1000

    # Manifests.
    for meta in listed_manifests:
        mid = DbPaths.manifest_id_of(meta.path)
        if mid is None or mid >= latest_id or mid in pinned or mid in history:
            continue
        if past_floor(meta) and _old_enough(meta, now_ms, options.age("manifest")):
            delete(meta)
            result.manifests.append(meta.path)

    # WAL objects and fences.
    wal_floor = min((h.replay_after_wal_id for h in history.values()), default=None)
    for meta in listed_wal:
        wid = DbPaths.wal_id_of(meta.path)
        if wid is None or _wal_needed(latest, wid, latest=True):
            continue
        if wal_floor is not None and wid >= wal_floor:
            continue
        if any(_wal_needed(pm, wid, latest=False) for pm in pinned.values()):
            continue
        fence = meta.size == 0
        if fence and not options.delete_wal_fences:
            continue
        if fence and not past_floor(meta):
            continue
        if _old_enough(meta, now_ms, options.age("wal_fence" if fence else "wal")):
            delete(meta)
            (result.wal_fences if fence else result.wal).append(meta.path)

    # Compactor state files: every version but the latest (a version, like a manifest's).
    ids = [(version_id_of(m.path, "compactions"), m) for m in listed_states]
    states = [(i, m) for i, m in ids if i is not None]
    newest = max((i for i, _ in states), default=None)
    for i, meta in states:
        if i != newest and past_floor(meta) and _old_enough(meta, now_ms, options.age("manifest")):
            delete(meta)
            result.compactions.append(meta.path)

    # Leftovers of plain uploads (`Store.leftovers`): an upload in flight writes its staging
    # file until it ends, so one not written for the kind's minimum age is dead.
    ages = {paths.manifest_dir: "manifest", paths.wal_dir: "wal", paths.compactions_dir: "manifest"}
    for folder, kind in ages.items():
        for meta in store.leftovers(folder):
            if past_floor(meta) and _old_enough(meta, now_ms, options.age(kind)):
                delete(meta, leftover=True)
                result.leftovers.append(meta.path)

    # Compacted SSTs.
    referenced = set(latest.sst_ids())
    for pm in (*pinned.values(), *history.values()):
        referenced |= pm.sst_ids()
    if compaction_mark_ms is None:
        return result
    if latest.l0:
        watermark_ms = max(ulid_timestamp_ms(v.sst.id) for v in latest.l0)
    elif latest.last_compacted_l0_view_id is not None:
        watermark_ms = ulid_timestamp_ms(latest.last_compacted_l0_view_id)
    else:
        watermark_ms = 0  # nothing is known to be safe: delete no compacted SST
    age_ms = options.age("compacted").total_seconds() * 1000

    def unreferenced_goes(ulid: str | None) -> bool:
        if ulid is None or ulid in referenced:
            return False
        try:
            ts = ulid_timestamp_ms(ulid)
        except ValueError:
            return False  # not ours to judge
        # The last compacted L0 itself is known to be done with, though its time is the mark.
        below = ts < watermark_ms or ulid == latest.last_compacted_l0_view_id
        return below and ts < compaction_mark_ms and ts <= now_ms - age_ms

    for meta in store.list(paths.compacted_dir):
        if unreferenced_goes(DbPaths.ulid_of(meta.path)):
            delete(meta)
            result.compacted.append(meta.path)
    # An SST's upload cut short: it goes when the SST would (an output of a compaction still
    # listed, or an L0 newer than the manifest's, is in flight) and is no longer written to.
    for meta in store.leftovers(paths.compacted_dir):
        ulid = DbPaths.ulid_of(meta.path.rsplit("#", 1)[0])
        if unreferenced_goes(ulid) and _old_enough(meta, now_ms, options.age("compacted")):
            delete(meta, leftover=True)
            result.leftovers.append(meta.path)
    return result
