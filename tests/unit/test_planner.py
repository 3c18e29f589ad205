"""The size-tiered planner on its own: `plan_compaction` and `full_plan` over hand-built
manifests (no store, no merge)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.compaction_plan import CompactionPlan, full_plan, plan_compaction
from slatedb_py.config import DbOptions
from slatedb_py.ids import ulid_timestamp_ms
from slatedb_py.manifest.model import (
    EXCLUDED,
    INCLUDED,
    BytesBound,
    Manifest,
    Segment,
    SortedRun,
    SstView,
)
from tests.unit.builders import T0_MS, sorted_run, sst_view


def opts(lo: int = 4, hi: int = 8, ratio: float = 4.0) -> DbOptions:
    return DbOptions(
        compaction_min_sources=lo, compaction_max_sources=hi, compaction_size_ratio=ratio
    )


def l0_newest_first(n: int) -> tuple[SstView, ...]:
    """`n` L0 views as the manifest keeps them: newest first (SST i is i seconds old)."""
    return tuple(sst_view(T0_MS - 1000 * i) for i in range(n))


def runs_newest_first(*sizes: int) -> tuple[SortedRun, ...]:
    """Sorted runs of one SST each, ids descending as in the manifest (highest = newest)."""
    n = len(sizes)
    return tuple(sorted_run(n - 1 - i, s) for i, s in enumerate(sizes))


def projected(v: SstView) -> SstView:
    return replace(v, visible_range=(BytesBound(INCLUDED, b"b"), BytesBound(EXCLUDED, b"m")))


# ---------------------------------------------------------------------------- L0


@pytest.mark.parametrize("lo", [2, 4])
def test_l0_below_the_threshold_plans_nothing(lo: int) -> None:
    assert plan_compaction(Manifest(l0=l0_newest_first(lo - 1)), opts(lo=lo)) is None
    plan = plan_compaction(Manifest(l0=l0_newest_first(lo)), opts(lo=lo))
    assert plan is not None and len(plan.l0) == lo


def test_l0_plan_takes_the_oldest_up_to_max_sources() -> None:
    l0 = l0_newest_first(7)
    plan = plan_compaction(Manifest(l0=l0), opts(lo=2, hi=3))
    assert plan is not None
    assert plan.runs == ()
    # The three oldest by ULID time, in manifest order; the four newer stay in L0, in front
    # of the run the plan makes.
    by_age = sorted(l0, key=lambda v: ulid_timestamp_ms(v.sst.id))
    assert set(plan.l0) == set(by_age[:3])
    assert plan.l0 == l0[4:]
    newest_taken = max(ulid_timestamp_ms(v.sst.id) for v in plan.l0)
    assert all(ulid_timestamp_ms(v.sst.id) > newest_taken for v in l0 if v not in plan.l0)
    assert plan.views() == list(plan.l0)


def test_l0_plan_into_an_empty_tree_is_the_bottom_run_0() -> None:
    l0 = l0_newest_first(4)
    assert plan_compaction(Manifest(l0=l0), opts()) == CompactionPlan(l0, (), 0, bottom=True)


@pytest.mark.parametrize("run_ids", [(0,), (3,), (9, 2), (5, 4, 1)])
def test_l0_plan_destination_is_above_every_run_and_not_bottom(run_ids: tuple[int, ...]) -> None:
    runs = tuple(sorted_run(i, 50) for i in run_ids)
    plan = plan_compaction(Manifest(l0=l0_newest_first(4), compacted=runs), opts())
    assert plan is not None
    assert plan.destination == max(run_ids) + 1
    assert plan.runs == ()  # the runs stay: only L0 moves
    assert plan.bottom is False  # older runs lie below: tombstones must stay


def test_l0_takes_precedence_over_a_mergeable_window_of_runs() -> None:
    m = Manifest(l0=l0_newest_first(4), compacted=runs_newest_first(10, 10, 10, 10))
    plan = plan_compaction(m, opts())
    assert plan is not None and plan.l0 and not plan.runs


# ---------------------------------------------------------------------------- sorted runs


def test_runs_fewer_than_min_sources_plan_nothing() -> None:
    assert plan_compaction(Manifest(compacted=runs_newest_first(10, 10, 10)), opts(lo=4)) is None


def test_runs_of_similar_size_merge_into_the_oldest_id() -> None:
    m = Manifest(l0=l0_newest_first(1), compacted=runs_newest_first(10, 12, 20, 30))
    plan = plan_compaction(m, opts(lo=2, hi=8, ratio=4))
    assert plan is not None
    assert plan.l0 == ()  # one L0 is below the threshold and stays
    assert plan.runs == m.compacted  # 30 <= 4 * 10: all four together
    assert plan.destination == 0
    assert plan.bottom is True
    assert plan.views() == [v for r in m.compacted for v in r.views]


def test_ratio_bound_is_inclusive() -> None:
    assert (
        plan_compaction(Manifest(compacted=runs_newest_first(10, 40)), opts(lo=2, ratio=4))
        is not None
    )
    assert (
        plan_compaction(Manifest(compacted=runs_newest_first(10, 41)), opts(lo=2, ratio=4)) is None
    )
    assert (
        plan_compaction(Manifest(compacted=runs_newest_first(10, 41)), opts(lo=2, ratio=4.1))
        is not None
    )


def test_the_oldest_qualifying_window_wins_among_equal_sizes() -> None:
    # newest .. oldest: [1, 1, 100, 100]; windows of 2: (1,1) newest and (100,100) oldest both
    # qualify, (1,100) does not; no window of 3 or 4 does.
    m = Manifest(compacted=runs_newest_first(1, 1, 100, 100))
    plan = plan_compaction(m, opts(lo=2, hi=4, ratio=4))
    assert plan is not None
    assert [r.id for r in plan.runs] == [1, 0]
    assert plan.destination == 0 and plan.bottom is True


def test_a_window_not_reaching_the_oldest_run_is_not_bottom() -> None:
    # newest .. oldest: [5, 5, 5, 1000]: only the three newest qualify.
    m = Manifest(compacted=runs_newest_first(5, 5, 5, 1000))
    plan = plan_compaction(m, opts(lo=2, hi=4, ratio=4))
    assert plan is not None
    assert [r.id for r in plan.runs] == [3, 2, 1]
    assert plan.destination == 1
    assert plan.bottom is False  # run 0 stays below


def test_a_longer_window_wins_over_an_older_shorter_one() -> None:
    # newest .. oldest: [10, 10, 10, 500, 500]: three newest beat the two oldest.
    m = Manifest(compacted=runs_newest_first(10, 10, 10, 500, 500))
    plan = plan_compaction(m, opts(lo=2, hi=5, ratio=4))
    assert plan is not None
    assert [r.id for r in plan.runs] == [4, 3, 2]


def test_windows_are_capped_at_max_sources() -> None:
    m = Manifest(compacted=runs_newest_first(*[10] * 6))
    plan = plan_compaction(m, opts(lo=2, hi=3))
    assert plan is not None
    assert [r.id for r in plan.runs] == [2, 1, 0]  # the oldest three of six


def test_empty_runs_count_as_size_one() -> None:
    m = Manifest(compacted=(SortedRun(1, ()), SortedRun(0, ())))
    plan = plan_compaction(m, opts(lo=2))
    assert plan is not None and [r.id for r in plan.runs] == [1, 0]


def test_run_size_is_the_sum_of_its_ssts() -> None:
    # Run 1 is two SSTs of 30 (60 in all), run 0 one of 10: 60 > 4 * 10.
    m = Manifest(compacted=(sorted_run(1, 30, 30), sorted_run(0, 10)))
    assert plan_compaction(m, opts(lo=2, ratio=4)) is None
    assert plan_compaction(m, opts(lo=2, ratio=6)) is not None


def _qualifies(sizes: list[int], ratio: float) -> bool:
    sizes = [max(1, s) for s in sizes]
    return max(sizes) <= ratio * min(sizes)


@given(
    sizes=st.lists(st.integers(0, 1000), max_size=9),
    lo=st.integers(2, 4),
    extra=st.integers(0, 4),
    ratio=st.sampled_from([1.0, 1.5, 2.0, 4.0, 10.0]),
    n_l0=st.integers(0, 1),
)
def test_run_windows_follow_the_size_tiered_rule(
    sizes: list[int], lo: int, extra: int, ratio: float, n_l0: int
) -> None:
    """The rule as a specification: the plan is a window of lo..hi consecutive runs whose
    largest is at most `ratio` times its smallest; no longer window qualifies, nor an older
    one of the same length; None only when no window qualifies."""
    hi = lo + extra
    runs = runs_newest_first(*sizes)
    m = Manifest(l0=l0_newest_first(n_l0), compacted=runs)
    plan = plan_compaction(m, opts(lo, hi, ratio))
    windows = [
        (start, size)
        for size in range(lo, min(hi, len(runs)) + 1)
        for start in range(len(runs) - size + 1)
        if _qualifies(sizes[start : start + size], ratio)
    ]
    if not windows:
        assert plan is None
        return
    assert plan is not None and plan.l0 == ()
    start = runs.index(plan.runs[0])
    size = len(plan.runs)
    assert plan.runs == runs[start : start + size]
    assert (start, size) in windows
    assert all(s < size or (s == size and st_ <= start) for st_, s in windows)
    assert plan.destination == min(r.id for r in plan.runs)
    assert plan.bottom == (start + size == len(runs))


# ---------------------------------------------------------------------------- not planned


def test_segments_are_never_planned() -> None:
    seg = Segment(b"p", None, l0_newest_first(1), ())
    m = Manifest(l0=l0_newest_first(8), compacted=runs_newest_first(10, 10), segments=(seg,))
    assert plan_compaction(m, opts(lo=2)) is None
    assert full_plan(m) is None
    assert plan_compaction(replace(m, segments=()), opts(lo=2)) is not None


@pytest.mark.parametrize("where", ["l0", "run"])
def test_projected_views_are_never_planned(where: str) -> None:
    l0 = l0_newest_first(5)
    runs = runs_newest_first(10, 10)
    if where == "l0":
        l0 = (*l0[:-1], projected(l0[-1]))
    else:
        runs = (runs[0], SortedRun(runs[1].id, (projected(runs[1].views[0]),)))
    m = Manifest(l0=l0, compacted=runs)
    assert plan_compaction(m, opts(lo=2)) is None
    assert full_plan(m) is None


# ---------------------------------------------------------------------------- full plan


def test_full_plan_of_an_empty_tree_is_none() -> None:
    assert full_plan(Manifest()) is None


def test_full_plan_of_l0_only_makes_run_0() -> None:
    l0 = l0_newest_first(2)
    assert full_plan(Manifest(l0=l0)) == CompactionPlan(l0, (), 0, bottom=True)


def test_full_plan_takes_everything_into_a_new_top_run() -> None:
    l0 = l0_newest_first(1)  # a single L0: below any threshold, still taken
    runs = (sorted_run(6, 10), sorted_run(2, 10_000))  # a size no tiering would merge
    plan = full_plan(Manifest(l0=l0, compacted=runs))
    assert plan == CompactionPlan(l0, runs, 7, bottom=True)
    assert plan.views() == [*l0, *runs[0].views, *runs[1].views]
