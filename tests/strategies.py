"""Hypothesis strategies for rows and sorted sources."""

from __future__ import annotations

from hypothesis import strategies as st

from slatedb_py.format import Row

keys = st.binary(min_size=1, max_size=24)
small_keys = st.binary(min_size=1, max_size=3)
values = st.binary(max_size=300)
timestamps = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def rows(draw: st.DrawFn, key_strategy: st.SearchStrategy[bytes] = keys) -> Row:
    kind = draw(st.sampled_from(["value", "value", "tombstone", "merge"]))
    value = None if kind == "tombstone" else draw(values)
    return Row(
        draw(key_strategy),
        value,
        draw(st.integers(min_value=0, max_value=2**64 - 1)),
        kind,
        draw(timestamps),
        draw(timestamps),
    )


def sort_compacted(items: list[Row]) -> list[Row]:
    """Key ascending, seq descending, one row per (key, seq)."""
    out: dict[tuple[bytes, int], Row] = {}
    for r in items:
        out.setdefault((r.key, r.seq), r)
    return sorted(out.values(), key=lambda r: (r.key, -r.seq))


def compacted_rows(min_size: int = 1, max_size: int = 300) -> st.SearchStrategy[list[Row]]:
    return (
        st.lists(rows(), min_size=min_size, max_size=max_size)
        .map(sort_compacted)
        .filter(lambda rs: len(rs) >= min_size)
    )


def wal_rows(min_size: int = 1, max_size: int = 300) -> st.SearchStrategy[list[Row]]:
    return st.lists(rows(), min_size=min_size, max_size=max_size).map(
        lambda rs: sorted(rs, key=lambda r: r.seq)
    )
