"""Size-tiered scheduling (docs/architecture.md, "compaction"): which SSTs merge next.

- When L0 holds `min_sources` SSTs or more, the oldest of them (up to `max_sources`) become a
  new sorted run whose id is above every existing run.
- Otherwise a window of `min_sources`..`max_sources` consecutive runs whose largest is at most
  `size_ratio` times the smallest merges into the oldest run of the window.

Inputs that cover disjoint key ranges (a sequential load's L0 SSTs and runs, time-ordered
keys) need no merge at all: `disjoint_order` lines their SSTs up as one run, and the
compaction only rewrites the manifest (`Compactor.compact`). No key has versions in two of
them, so nothing a merge would drop or fold is left behind wrongly: older versions,
tombstones and expired rows stay where they were, and reads decide them as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from slatedb_py.config import DbOptions
from slatedb_py.manifest.model import Manifest, SortedRun, SstView


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


def disjoint_order(
    plan: CompactionPlan, min_avg_bytes: int, max_bytes: int
) -> tuple[SstView, ...] | None:
    """The plan's SST views as one sorted run, in key order, when its inputs (each L0 SST,
    each run as a whole) cover pairwise disjoint key ranges; None when any two overlap or a
    range is unknown. Ranges are the SSTs' own first and last keys (`SstTableInfo`), which
    0.17.0 records too; a projected view (`visible_range`) is never moved. Small SSTs (on
    average under `min_avg_bytes`) are merged anyway: moved, they would stay small forever,
    and a run of many small SSTs costs every scan an open per SST. So is any SST over
    `max_bytes` (`max_sst_size`): a merge would cut it into the run's SST size."""
    every = plan.views()
    sizes = [v.sst.info.estimated_size for v in every]
    if not every or sum(sizes) < min_avg_bytes * len(every) or max(sizes) > max_bytes:
        return None
    units: list[tuple[bytes, bytes, tuple[SstView, ...]]] = []
    inputs: list[tuple[SstView, ...]] = [(v,) for v in plan.l0] + [r.views for r in plan.runs]
    for views in inputs:
        if not views:
            continue
        first, last = views[0].sst.info.first_entry, views[-1].sst.info.last_entry
        if first is None or last is None or any(v.visible_range is not None for v in views):
            return None
        units.append((first, last, views))
    units.sort(key=lambda u: u[0])
    # Strictly apart: a key at the edge of two inputs has versions in both, and needs a merge.
    if any(a[1] >= b[0] for a, b in pairwise(units)):
        return None
    return tuple(v for u in units for v in u[2])
