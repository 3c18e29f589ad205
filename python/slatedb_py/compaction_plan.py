"""Size-tiered scheduling (docs/architecture.md, "compaction"): which SSTs merge next.

- When L0 holds `min_sources` SSTs or more, the oldest of them (up to `max_sources`) become a
  new sorted run whose id is above every existing run.
- Otherwise a window of `min_sources`..`max_sources` consecutive runs whose largest is at most
  `size_ratio` times the smallest merges into the oldest run of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

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
