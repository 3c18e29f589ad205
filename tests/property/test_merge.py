"""The native merge iterator against a sorted, deduplicated model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.format import Row, decode_sst, encode_sst, merge_rows
from tests.strategies import rows, small_keys, sort_compacted

sources_strategy = st.lists(st.lists(rows(small_keys), max_size=40), min_size=0, max_size=6)


def unique_sources(sources: list[list[Row]]) -> list[list[Row]]:
    """A (key, seq) pair is written once: keep its first appearance (the newest source)."""
    seen: set[tuple[bytes, int]] = set()
    out = []
    for src in sources:
        kept = [r for r in src if (r.key, r.seq) not in seen]
        seen.update((r.key, r.seq) for r in kept)
        out.append(sort_compacted(kept))
    return out


def visible_model(all_rows: list[Row], snapshot: int | None, now: int | None) -> list[Row]:
    newest: dict[bytes, Row] = {}
    for r in sort_compacted(all_rows):
        if snapshot is None or r.seq <= snapshot:
            newest.setdefault(r.key, r)
    return [
        r
        for r in newest.values()
        if r.kind != "tombstone"
        and not (now is not None and r.expire_ts is not None and r.expire_ts <= now)
    ]


@given(
    sources_strategy,
    st.none() | st.integers(min_value=0, max_value=2**64 - 1),
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=1, max_value=7),
)
def test_merge_matches_model(sources, snapshot, now, batch) -> None:
    sources = unique_sources(sources)
    everything = [r for s in sources for r in s]
    merged = list(merge_rows(sources, all_versions=True))
    assert merged == sort_compacted(everything)

    it = merge_rows(sources, snapshot_seq=snapshot, now=now)
    got: list[Row] = []
    while chunk := it.next_batch(batch):
        got.extend(chunk)
    assert got == visible_model(everything, snapshot, now)


@given(sources_strategy, st.sampled_from([None, "lz4", "zstd"]))
def test_merge_over_ssts_equals_merge_over_lists(sources, codec) -> None:
    sources = [s for s in unique_sources(sources) if s]
    ssts = [decode_sst(encode_sst(s, compression=codec, block_size=128)) for s in sources]
    assert list(merge_rows(ssts, all_versions=True)) == list(merge_rows(sources, all_versions=True))
    assert list(merge_rows(ssts)) == list(merge_rows(sources))


def test_tombstone_hides_older_versions_and_snapshot_sees_past() -> None:
    new = [Row(b"a", None, 5, "tombstone"), Row(b"b", b"b2", 6)]
    old = [Row(b"a", b"a1", 1), Row(b"b", b"b1", 2), Row(b"c", b"c1", 3, expire_ts=100)]
    assert [(r.key, r.value) for r in merge_rows([new, old])] == [(b"b", b"b2"), (b"c", b"c1")]
    assert [(r.key, r.value) for r in merge_rows([new, old], snapshot_seq=4)] == [
        (b"a", b"a1"),
        (b"b", b"b1"),
        (b"c", b"c1"),
    ]
    assert [r.key for r in merge_rows([new, old], now=100)] == [b"b"]


def test_unsorted_source_is_refused() -> None:
    import pytest

    from slatedb_py.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="sorted"):
        list(merge_rows([[Row(b"b", b"", 1), Row(b"a", b"", 1)]]))
