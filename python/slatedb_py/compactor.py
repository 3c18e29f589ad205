"""The compactor: runs the plans of `compaction_plan` with a streaming native merge, fenced by
its own epoch, embedded in an open `Db` (a thread) or as its own process.

- The merge streams: inputs are SSTs opened from their tails, their blocks fetched a few MiB
  at a time as the native job asks; outputs split at `max_sst_size`, each uploaded in pieces
  as it is written (`sst.store_ssts`). Memory stays bounded whatever the input and output
  sizes. It keeps every version newer than the manifest's
  `recent_snapshot_min_seq` and the newest one at or below it, turns expired rows into
  tombstones, and drops tombstones when writing the bottom run.
- Fencing: a compactor claims `compactor_epoch + 1` in the manifest (`CompactorFence`) and
  records it in a new `compactions/` version (`CompactorState`); its commits check the epoch,
  so an older compactor is fenced. Each compaction is listed there from before its first
  output until after its commit, which keeps collectors off outputs the manifest does not
  name yet. Writer and compactor edit the manifest through re-read-and-retry updates that each
  change only their own parts (L0 additions and WAL markers / runs and the last compacted
  L0), so neither loses the other's changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

from slatedb_py import _native
from slatedb_py.clock import Clock, monotonic_s
from slatedb_py.compaction_plan import CompactionPlan, disjoint_order, full_plan, plan_compaction
from slatedb_py.compaction_state import CompactorState
from slatedb_py.config import DbOptions
from slatedb_py.errors import (
    ConflictError,
    DataError,
    FencedError,
    MergeOperatorError,
    UnavailableError,
)
from slatedb_py.manifest.fence import CompactorFence
from slatedb_py.manifest.model import Manifest, SortedRun, SstView
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.merge import engine_operator
from slatedb_py.metrics import INDEX
from slatedb_py.paths import DbPaths
from slatedb_py.progress import SILENT, Progress
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.sst import Piece, TableCache, store_ssts
from slatedb_py.store import Store

_log = logging.getLogger("slatedb_py.compactor")

# What a commit hands to whoever embeds the compactor: the new manifest id and contents.
OnCommit = Callable[[tuple[int, Manifest]], None]

_RUNS, _OUT_BYTES = INDEX["compaction_runs_total"], INDEX["compaction_output_bytes_total"]


class Compactor:
    """The compaction loop: embedded in a `Db` (a thread) or standalone (its own process)."""

    def __init__(
        self,
        store: Store,
        paths: DbPaths,
        options: DbOptions,
        clock: Clock,
        tables: TableCache | None = None,
        manifests: ManifestStore | None = None,
    ) -> None:
        self.store, self.paths, self.options, self.clock = store, paths, options, clock
        # Embedded, it shares its writer's handle: every change of the writer and of this
        # compactor goes through it, so the version it holds is current and a round plans
        # on it without a request (idle, the database polls nothing). Standalone, each round
        # looks at the store: the writer is another process.
        self.manifests = manifests or ManifestStore(store, paths, clock)
        self.plan_age = 0.0 if manifests is None else CLIENT_WINDOW_S
        self.fence = CompactorFence(self.manifests)
        self.state = CompactorState(store, paths, clock)
        self.tables = tables or TableCache(store, 16 * 1024 * 1024)
        self.operator = engine_operator(options.merge_operator)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.on_commit: OnCommit | None = None
        self.progress: Progress = SILENT  # hears of each compaction's outputs (the CLI's bar)
        self.compactions = 0
        self.lock = threading.Lock()  # one compaction at a time
        self.claimed = False

    def claim(self) -> None:
        """Takes the next compactor epoch, in the manifest and then in `compactions/`."""
        self.state.claim(self.fence.claim())
        self.claimed = True

    def run_once(self, *, full: bool = False) -> bool:
        """One scheduling round (or a full compaction); True if it compacted anything.
        The compactor claims its epoch when it first has work: an open database that never
        needs a compaction spends no requests on it."""
        with self.lock:
            plan = self._plan(full)
            if plan is not None and not self.claimed:
                self.claim()
                plan = self._plan(full)  # on the version that holds the claim
            if plan is None:
                return False
            result = self.compact(*plan)
            self.compactions += 1
        if self.on_commit is not None:
            self.on_commit(result)
        return True

    def _plan(self, full: bool) -> tuple[Manifest, CompactionPlan] | None:
        _, m = self.manifests.require_latest(max_age=self.plan_age)
        if self.claimed:
            self.fence.check(m)
        plan = full_plan(m) if full else plan_compaction(m, self.options)
        return None if plan is None else (m, plan)

    def run_forever(self) -> None:
        interval = self.options.compactor_poll_interval.total_seconds()
        while not self.stop.is_set():
            try:
                while self.run_once() and not self.stop.is_set():
                    pass
            except FencedError:
                return
            except (UnavailableError, DataError, ConflictError, MergeOperatorError):
                # Retried (re-planned) next round. A merge operator that fails keeps failing
                # on the same rows, and the reads of those keys fail the same way.
                pass
            self.wake.wait(interval)
            self.wake.clear()

    def metrics(self) -> dict[str, int | float]:
        """A snapshot of the compactor's metrics: compaction runs and output bytes, store
        requests by kind (shared with its database's, when embedded)."""
        out = self.store.metrics.snapshot()
        out.update(self.tables.block_cache_gauges())
        return out

    def compact(self, snapshot: Manifest, plan: CompactionPlan) -> tuple[int, Manifest]:
        """Merges the plan's inputs into new SSTs and commits them; returns the new manifest.

        The compaction is listed in the compactor state from before its first output until
        after its commit, so no collector deletes an output the manifest does not name yet."""
        l0_ids = tuple(v.id for v in plan.l0)
        started = monotonic_s(self.clock)
        o = self.options
        moved = disjoint_order(plan, o.l0_sst_size_bytes // 2, o.max_sst_size)
        if moved is not None:
            # Disjoint inputs: the same SSTs become the destination run, nothing is written
            # but the manifest (`compaction_plan.disjoint_order`).
            result = self._commit(plan, list(moved))
            self.store.metrics.add2(_RUNS, 1, _OUT_BYTES, 0)
            _log.info(
                "moved %d L0 SSTs and %d sorted runs of %r into run %d without a merge: "
                "their keys are disjoint", len(plan.l0), len(plan.runs), self.paths.root,
                plan.destination,
            )  # fmt: skip
            return result
        with self.state.listing(l0_ids, tuple(r.id for r in plan.runs), plan.destination) as rec:
            outputs = self._merge(snapshot, plan)
            self.state.compacted(rec, tuple(v.sst for v in outputs))
            result = self._commit(plan, outputs)
            written = sum(v.sst.info.estimated_size for v in outputs)
            self.store.metrics.add2(_RUNS, 1, _OUT_BYTES, written)
        self.progress.advance(objects=len(outputs), nbytes=written)
        _log.info(
            "compacted %d L0 SSTs and %d sorted runs of %r into run %d: %d SSTs, %d bytes, "
            "%.2f s", len(plan.l0), len(plan.runs), self.paths.root, plan.destination,
            len(outputs), written, monotonic_s(self.clock) - started,
        )  # fmt: skip
        for v in plan.views():
            self.tables.forget(self.paths.sst_in(snapshot, v.sst.id))
        return result

    def _merge(self, snapshot: Manifest, plan: CompactionPlan) -> list[SstView]:
        o = self.options
        job = _native.CompactionJob(
            self.tables.native,
            [self.paths.sst_in(snapshot, v.sst.id) for v in plan.views()],
            # Every version above it and the newest at or below it are kept; 0 keeps them all.
            snapshot.recent_snapshot_min_seq,
            self.clock.now_ms(),
            plan.bottom,
            o.max_sst_size,
            self.store.part_size,  # an output leaves in parts, uploaded as they come
            o.block_size,
            o.compression,
            o.bloom_bits_per_key,
            o.min_filter_keys,
            # Folds operands below the retained seq (as 0.17.0); without one they all stay.
            self.operator,
            o.sst_block_alignment,
        )

        def pieces() -> Iterator[Piece]:
            while (piece := self.tables.drive(job.step())) is not None:
                yield piece

        return store_ssts(self.store, self.paths, pieces(), self.clock)

    def _commit(self, plan: CompactionPlan, outputs: list[SstView]) -> tuple[int, Manifest]:
        done_l0 = {v.id for v in plan.l0}
        done_runs = {r.id for r in plan.runs}
        output_ids = {v.id for v in outputs}
        tried = False

        def commit(_mid: int, m: Manifest) -> tuple[Manifest | None, None]:
            nonlocal tried
            in_runs = {v.id for r in m.compacted for v in r.views}
            gone_runs = done_runs - ({plan.destination} if outputs else set())
            if (
                tried
                and output_ids <= in_runs
                and not done_l0 & {v.id for v in m.l0}
                and not gone_runs & {r.id for r in m.compacted}
            ):
                return None, None  # committed already (re-applied after an unknown outcome)
            present = {v.id for v in m.l0}
            # Runs by content, not id: a restore can bring back a run id with other SSTs.
            current_runs = {r.id: r for r in m.compacted}
            if not done_l0 <= present or any(current_runs.get(r.id) != r for r in plan.runs):
                raise ConflictError(
                    f"the tree of {self.paths.root!r} changed under a compaction of "
                    f"{len(plan.views())} SSTs (a restore, or another compactor): "
                    "nothing was committed"
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
            ), None

        mid, m, _ = self.fence.update(commit)
        return mid, m
