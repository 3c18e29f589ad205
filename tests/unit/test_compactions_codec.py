"""The compactor state file (`compactions/<id>.compactions`) on its own: `encode_state` /
`decode_state` round trips, SlateDB 0.17.0's own states (tests/data/golden/compacted), broken
bytes, and the collector's mark `oldest_listed_ms`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.compaction_state import oldest_listed_ms
from slatedb_py.errors import DataError, UnsupportedFormatError
from slatedb_py.ids import ulid_timestamp_ms
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.compactions_codec import (
    COMPACTED,
    COMPLETED,
    RUNNING,
    SCHEDULED,
    SUBMITTED,
    CompactionRecord,
    CompactionsState,
    decode_state,
    encode_state,
)
from slatedb_py.manifest.model import Manifest, SstHandle
from tests.interop.golden import GOLDEN
from tests.unit.builders import T0_MS, info, sst_infos, ulid_at, ulids

NAME = "db/compactions/00000000000000000004.compactions"
GOLDEN_STATES = sorted((GOLDEN / "compacted" / "db" / "compactions").glob("*.compactions"))

handles = st.builds(SstHandle, ulids, sst_infos, st.integers(1, 2**16 - 2))
records = st.builds(
    CompactionRecord,
    id=ulids,
    status=st.integers(0, 5),
    l0_view_ids=st.lists(ulids, max_size=4).map(tuple),
    sorted_runs=st.lists(st.integers(0, 2**32 - 1), max_size=4).map(tuple),
    destination=st.integers(0, 2**32 - 1),
    outputs=st.lists(handles, max_size=3).map(tuple),
)
states = st.builds(
    CompactionsState, st.integers(0, 2**64 - 1), st.lists(records, max_size=4).map(tuple)
)


@given(states)
def test_round_trip(state: CompactionsState) -> None:
    data = encode_state(state)
    assert data[:2] == b"\x00\x02"
    assert decode_state(data) == state


def test_an_output_of_sst_format_1_stays_format_1() -> None:
    """The V1 SST table puts the format version where absent means 1: both versions must
    come back as written (a 2 read as 1 would make SlateDB misread the SST)."""
    for version in (1, 2):
        h = SstHandle(ulid_at(T0_MS), info(50), version)
        state = CompactionsState(1, (CompactionRecord(ulid_at(T0_MS), COMPACTED, outputs=(h,)),))
        assert decode_state(encode_state(state)).compactions[0].outputs[0].format_version == version


def test_the_golden_states_follow_one_compaction_through_its_lifecycle() -> None:
    """SlateDB 0.17.0's compactor (fixture `compacted`, session 1) claimed epoch 1 and ran one
    L0 compaction; its states are the ground truth for the status numbers and the layout."""
    decoded = [decode_state(p.read_bytes(), name=str(p)) for p in GOLDEN_STATES]
    assert [s.compactor_epoch for s in decoded] == [0] + [1] * (len(decoded) - 1)
    listed = [s.compactions for s in decoded if s.compactions]
    assert all(len(c) == 1 for c in listed)
    records = [c[0] for c in listed]
    assert len({r.id for r in records}) == 1  # one compaction, the same id throughout
    assert [r.status for r in records] == [SUBMITTED, SCHEDULED, RUNNING, COMPACTED, COMPLETED]
    # It compacted the two L0 SSTs the final manifest names as compacted away, into run 0,
    # whose SSTs are exactly the outputs the Compacted and Completed entries list.
    manifest = decode_manifest(
        (GOLDEN / "compacted" / "db" / "manifest" / "00000000000000000011.manifest").read_bytes()
    )
    done = records[-1]
    assert manifest.last_compacted_l0_view_id in done.l0_view_ids
    assert done.sorted_runs == () and done.destination == 0
    [run0] = [r for r in manifest.compacted if r.id == done.destination]
    assert done.outputs == tuple(v.sst for v in run0.views)
    assert records[-2].outputs == done.outputs  # listed from Compacted on
    assert all(not r.outputs for r in records[:-2])
    # The compaction's id was minted before its outputs.
    assert all(ulid_timestamp_ms(done.id) <= ulid_timestamp_ms(h.id) for h in done.outputs)


@pytest.mark.parametrize("path", GOLDEN_STATES, ids=lambda p: p.stem.lstrip("0"))
def test_golden_states_re_encode_equal(path: Path) -> None:
    state = decode_state(path.read_bytes(), name=str(path))
    assert decode_state(encode_state(state)) == state


# ---------------------------------------------------------------------------- broken bytes


@pytest.mark.parametrize("prefix", [b"", b"\x00", b"\x00\x01", b"\x00\x03", b"\x02\x00"])
def test_wrong_or_missing_version_is_unsupported(prefix: bytes) -> None:
    body = encode_state(CompactionsState(1))[2:] if len(prefix) == 2 else b""
    with pytest.raises(UnsupportedFormatError) as e:
        decode_state(prefix + body, name=NAME)
    assert e.value.object == NAME and NAME in str(e.value)


def test_every_truncation_is_a_data_error_or_loses_only_padding() -> None:
    state = CompactionsState(
        7,
        (
            CompactionRecord(ulid_at(T0_MS), RUNNING, (ulid_at(T0_MS - 5),), (3, 2), 2),
            CompactionRecord(
                ulid_at(T0_MS - 1), COMPLETED, outputs=(SstHandle(ulid_at(T0_MS), info(80)),)
            ),
        ),
    )
    data = encode_state(state)
    for n in range(2, len(data)):
        try:
            got = decode_state(data[:n], name=NAME)
        except DataError as e:
            assert e.object == NAME, n
        else:
            assert got == state and n > len(data) - 8, n


def test_a_manifest_is_not_a_compactor_state() -> None:
    with pytest.raises(DataError, match="recent_compactions") as e:
        decode_state(encode_manifest(Manifest()), name=NAME)
    assert e.value.object == NAME


@given(st.binary(max_size=160))
def test_random_bodies_decode_or_raise_data_error(raw: bytes) -> None:
    try:
        decode_state(b"\x00\x02" + raw, name=NAME)
    except DataError as e:
        assert e.object == NAME


# ---------------------------------------------------------------------------- the mark


def test_no_state_or_nothing_listed_has_no_mark() -> None:
    assert oldest_listed_ms(None) is None
    assert oldest_listed_ms(CompactionsState(3)) is None


@given(st.lists(st.tuples(st.integers(0, 2**48 - 1), st.integers(0, 5)), min_size=1, max_size=6))
def test_the_mark_is_the_oldest_listed_id_whatever_its_status(
    entries: list[tuple[int, int]],
) -> None:
    state = CompactionsState(
        1, tuple(CompactionRecord(ulid_at(ms), status) for ms, status in entries)
    )
    assert oldest_listed_ms(state) == min(ms for ms, _ in entries)
