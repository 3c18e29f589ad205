"""Compaction (FORMAT.md 6): size-tiered scheduling, a streaming native merge, and the
compactor's own fencing, embedded in an open `Db` or running as its own process.

- Scheduling: when L0 holds `min_sources` SSTs or more, the oldest of them (up to
  `max_sources`) become a new sorted run whose id is above every existing run; otherwise a
  window of `min_sources`..`max_sources` consecutive runs whose largest is at most
  `size_ratio` times the smallest merges into the oldest run of the window.
- The merge streams: inputs are SSTs opened from their tails, their blocks fetched a few MiB
  at a time as the native merge asks; outputs split at `max_sst_size`. Memory stays bounded
  whatever the input size. It keeps every version newer than the manifest's
  `recent_snapshot_min_seq` and the newest one at or below it, turns expired rows into
  tombstones, and drops tombstones when writing the bottom run.
- Fencing: a compactor claims `compactor_epoch + 1` in the manifest and records it in a new
  `compactions/<id>.compactions` version; its commits check the epoch, so an older compactor
  is fenced. Each compaction is listed there from before its first output until after its
  commit, which keeps collectors off outputs the manifest does not name yet
  (`compaction_state`). Writer and compactor edit the manifest through re-read-and-retry
  updates that each change only their own parts (L0 additions and WAL markers / runs and the
  last compacted L0), so neither loses the other's changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from slatedb_py import _native
from slatedb_py.clock import Clock
from slatedb_py.compaction_state import CompactorState
from slatedb_py.config import DbOptions
from slatedb_py.errors import ConflictError, DataError, FencedError, UnavailableError
from slatedb_py.ids import new_ulid
from slatedb_py.manifest.model import Manifest, SortedRun, SstHandle, SstTableInfo, SstView
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.sst import TableCache
from slatedb_py.store import Store


@dataclass(frozen=True)
class CompactionPlan:
    l0: tuple[SstView, ...]  # L0 views to compact (the oldest ones)
    runs: tuple[SortedRun, ...]  # sorted runs to compact
    destination: int  # id of the output run
    bottom: bool  # the output is the last run: tombstones can go

    def views(self) -> list[SstView]:
        out = list(self.l0)
        for r in self.runs:
            out.extend(r.views)
        return out


def _run_size(run: SortedRun) -> int:
    return sum(v.sst.info.estimated_size for v in run.views)


def plan_compaction(m: Manifest, options: DbOptions) -> CompactionPlan | None:
    """The next size-tiered compaction for manifest `m`, or None."""
    lo, hi, ratio = (
        options.compaction_min_sources,
        options.compaction_max_sources,
        options.compaction_size_ratio,
    )
    if any(v.visible_range is not None for v in m.all_views()) or m.segments:
        return None  # projected clone views and segments: not compacted here yet
    if len(m.l0) >= lo:
        take = m.l0[-hi:]  # the oldest; newer L0 SSTs stay in front of the new run
        dest = max((r.id for r in m.compacted), default=-1) + 1
        return CompactionPlan(tuple(take), (), dest, bottom=not m.compacted)
    runs = m.compacted  # newest (highest id) first
    for size in range(min(hi, len(runs)), lo - 1, -1):
        for start in range(len(runs) - size, -1, -1):  # prefer the oldest window
            window = runs[start : start + size]
            sizes = [max(1, _run_size(r)) for r in window]
            if max(sizes) <= ratio * min(sizes):
                return CompactionPlan(
                    (), tuple(window), min(r.id for r in window), bottom=start + size == len(runs)
                )
    return None


def full_plan(m: Manifest) -> CompactionPlan | None:
    """Everything into one run (`Db.compact()`)."""
    if (not m.l0 and not m.compacted) or m.segments:
        return None
    if any(v.visible_range is not None for v in m.all_views()):
        return None
    dest = max((r.id for r in m.compacted), default=-1) + 1
    return CompactionPlan(m.l0, m.compacted, dest, bottom=True)


# ---------------------------------------------------------------------------- fencing


class CompactorFence:
    """Holds a compactor epoch, in the manifest and in `compactions/` (`compaction_state`);
    commits check that no newer compactor took over."""

    def __init__(self, manifests: ManifestStore) -> None:
        self.manifests = manifests
        self.state = CompactorState(manifests.store, manifests.paths, manifests.clock)
        self.epoch = 0

    def claim(self) -> None:
        # Bumping twice after an unknown outcome is harmless: the epoch is ours either way.
        _, m = self.manifests.update(lambda m: replace(m, compactor_epoch=m.compactor_epoch + 1))
        self.epoch = m.compactor_epoch
        self.state.claim(self.epoch)

    def check(self, m: Manifest) -> None:
        if m.compactor_epoch > self.epoch:
            raise FencedError(
                f"a newer compactor (epoch {m.compactor_epoch}) runs on {self.manifests.paths.root!r}; "
                f"this one (epoch {self.epoch}) is fenced"
            )

    def update(self, mutate: Any) -> tuple[int, Manifest]:
        def guarded(m: Manifest) -> Manifest | None:
            self.check(m)
            return mutate(m)

        return self.manifests.update(guarded)


# ---------------------------------------------------------------------------- running one


def _sst_path(m: Manifest, paths: DbPaths, view: SstView) -> str:
    for ext in m.external_dbs:
        if view.sst.id in ext.sst_ids:
            return DbPaths.stored(ext.path).compacted(view.sst.id)
    return paths.compacted(view.sst.id)


def run_compaction(
    store: Store,
    paths: DbPaths,
    tables: TableCache,
    fence: CompactorFence | Any,
    clock: Clock,
    options: DbOptions,
    snapshot: Manifest,
    plan: CompactionPlan,
) -> tuple[int, Manifest]:
    """Merges the plan's inputs into new SSTs and commits them; returns the new manifest.

    The compaction is listed in the compactor state from before its first output until after
    its commit, so no collector deletes an output the manifest does not name yet."""
    with fence.state.listing(
        tuple(v.id for v in plan.l0), tuple(r.id for r in plan.runs), plan.destination
    ) as record:
        return _merge_and_commit(
            store,
            paths,
            tables,
            fence,
            clock,
            options,
            snapshot,
            plan,
            lambda outputs: fence.state.compacted(record, outputs),
        )


def _merge_and_commit(
    store: Store,
    paths: DbPaths,
    tables: TableCache,
    fence: Any,
    clock: Clock,
    options: DbOptions,
    snapshot: Manifest,
    plan: CompactionPlan,
    before_commit: Callable[[tuple[SstHandle, ...]], None],
) -> tuple[int, Manifest]:
    views = plan.views()
    job = _native.CompactionJob(
        tables.native,
        [_sst_path(snapshot, paths, v) for v in views],
        snapshot.recent_snapshot_min_seq or snapshot.last_l0_seq,
        clock.now_ms(),
        plan.bottom,
        options.max_sst_size,
        options.block_size,
        options.compression,
        options.bloom_bits_per_key,
        options.min_filter_keys,
    )
    outputs: list[SstView] = []
    while (data := tables.drive(job.step())) is not None:
        ulid = new_ulid(clock.now_ms())
        key = paths.compacted(ulid)
        store.put(key, data)
        info = _native.decode_sst(data, key).info()
        outputs.append(SstView(ulid, SstHandle(ulid, SstTableInfo.from_native(info), 2)))
        del data  # stored: let it go before the next output is built

    done_l0 = {v.id for v in plan.l0}
    done_runs = {r.id for r in plan.runs}

    output_ids = {v.id for v in outputs}
    tried = False

    def commit(m: Manifest) -> Manifest | None:
        nonlocal tried
        in_runs = {v.id for r in m.compacted for v in r.views}
        gone_runs = done_runs - ({plan.destination} if outputs else set())
        if (
            tried
            and output_ids <= in_runs
            and not done_l0 & {v.id for v in m.l0}
            and not gone_runs & {r.id for r in m.compacted}
        ):
            return None  # committed already (re-applied after an unknown outcome)
        present = {v.id for v in m.l0}
        # Runs by content, not id: a restore can bring back a run id with other SSTs in it.
        current_runs = {r.id: r for r in m.compacted}
        if not done_l0 <= present or any(current_runs.get(r.id) != r for r in plan.runs):
            raise ConflictError(
                f"the tree of {paths.root!r} changed under a compaction of {len(views)} SSTs "
                "(a restore, or another compactor): nothing was committed"
            )
        tried = True
        runs = [r for r in m.compacted if r.id not in done_runs]
        if outputs:
            runs.append(SortedRun(plan.destination, tuple(outputs)))
        newest_done = next((v.id for v in m.l0 if v.id in done_l0), None)
        return replace(
            m,
            l0=tuple(v for v in m.l0 if v.id not in done_l0),
            compacted=tuple(sorted(runs, key=lambda r: -r.id)),
            last_compacted_l0_view_id=newest_done or m.last_compacted_l0_view_id,
        )

    before_commit(tuple(v.sst for v in outputs))
    result = fence.update(commit)
    for v in views:
        tables.forget(_sst_path(snapshot, paths, v))
    return result


class Compactor:
    """The compaction loop: embedded in a `Db` (a thread) or standalone (its own process)."""

    def __init__(
        self,
        store: Store,
        paths: DbPaths,
        options: DbOptions,
        clock: Clock,
        tables: TableCache | None = None,
    ) -> None:
        self.store, self.paths, self.options, self.clock = store, paths, options, clock
        self.manifests = ManifestStore(store, paths, clock)
        self.fence = CompactorFence(self.manifests)
        self.tables = tables or TableCache(store, 16 * 1024 * 1024)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.on_commit: Any = None
        self.compactions = 0

        self.lock = threading.Lock()  # one compaction at a time
        self.claimed = False

    def _ensure_claimed(self) -> None:
        if not self.claimed:
            self.fence.claim()
            self.claimed = True

    def run_once(self, *, full: bool = False) -> bool:
        """One scheduling round (or a full compaction); True if it compacted anything."""
        with self.lock:
            self._ensure_claimed()
            _, m = self.manifests.require_latest()
            self.fence.check(m)
            plan = full_plan(m) if full else plan_compaction(m, self.options)
            if plan is None:
                return False
            result = run_compaction(
                self.store, self.paths, self.tables, self.fence, self.clock, self.options, m, plan
            )
            self.compactions += 1
        if self.on_commit is not None:
            self.on_commit(result)
        return True

    def run_forever(self) -> None:
        interval = self.options.compactor_poll_interval.total_seconds()
        while not self.stop.is_set():
            try:
                while self.run_once() and not self.stop.is_set():
                    pass
            except FencedError:
                return
            except (UnavailableError, DataError, ConflictError):
                pass  # retried (re-planned) next round
            self.wake.wait(interval)
            self.wake.clear()
