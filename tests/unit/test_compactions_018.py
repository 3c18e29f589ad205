"""The compactor state's SlateDB 0.18 fields (workers, compaction contexts with subcompaction
progress, segments, drain specs): every one survives a decode and an encode, and the state
this package writes keeps another compactor's resumable compaction until one of its own
takes that compaction's inputs or destination."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from obstore.store import LocalStore

from slatedb_py.clock import SystemClock
from slatedb_py.compaction_state import CompactionsStore, CompactorState, clash, resumable
from slatedb_py.errors import UnsupportedFormatError
from slatedb_py.manifest.compactions_codec import (
    COMPLETED,
    DRAIN_SEGMENT,
    RUNNING,
    SUB_COMPLETED,
    TIERED,
    CompactionContext,
    CompactionRecord,
    CompactionsState,
    Subcompaction,
    WorkerSpec,
    decode_state,
    encode_state,
)
from slatedb_py.manifest.fb import Table
from slatedb_py.manifest.model import BytesBound, SstHandle
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from tests.interop.golden018 import Fixture018
from tests.unit.builders import T0_MS, sst_infos, ulid_at, ulids

NAME = "db/compactions/00000000000000000009.compactions"
handles = st.builds(SstHandle, ulids, sst_infos, st.integers(1, 2**16 - 2))
bounds = st.builds(BytesBound, st.integers(1, 3), st.none() | st.binary(max_size=6))
subcompactions = st.builds(
    Subcompaction,
    st.tuples(bounds, bounds),
    st.lists(handles, max_size=2).map(tuple),
    st.integers(-128, 127),  # unknown values are kept too
)
contexts = st.builds(
    CompactionContext, st.lists(subcompactions, max_size=3).map(tuple), st.integers(0, 2**64 - 1)
)
workers = st.builds(WorkerSpec, st.none() | st.text(max_size=8), st.integers(0, 2**64 - 1))
u32s = st.integers(0, 2**32 - 1)


@st.composite
def records(draw: st.DrawFn) -> CompactionRecord:
    drain = draw(st.booleans())
    return CompactionRecord(
        id=draw(ulids),
        status=draw(st.integers(0, 5)),
        l0_view_ids=tuple(draw(st.lists(ulids, max_size=3))),
        sorted_runs=tuple(draw(st.lists(u32s, max_size=3))),
        destination=0 if drain else draw(u32s),
        outputs=tuple(draw(st.lists(handles, max_size=2))),
        spec_type=DRAIN_SEGMENT if drain else TIERED,
        segment=draw(st.binary(max_size=4)) if drain else draw(st.none() | st.binary(max_size=4)),
        legacy_ssts=() if drain else tuple(draw(st.lists(ulids, max_size=2))),
        worker=draw(st.none() | workers),
        context=draw(st.none() | contexts),
    )


@given(
    st.builds(
        CompactionsState, st.integers(0, 2**64 - 1), st.lists(records(), max_size=3).map(tuple)
    )
)
def test_every_0_18_field_round_trips(state: CompactionsState) -> None:
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize("slot,value", [(1, 3), (6, 2)], ids=["spec type", "context type"])
def test_an_unknown_union_variant_is_unsupported_not_dropped(slot: int, value: int) -> None:
    record = CompactionRecord(ulid_at(T0_MS), RUNNING, context=CompactionContext())
    data = bytearray(encode_state(CompactionsState(1, (record,))))
    data[_u8_field(bytes(data), slot)] = value
    with pytest.raises(UnsupportedFormatError, match="unknown compaction") as e:
        decode_state(bytes(data), name=NAME)
    assert e.value.object == NAME


def _u8_field(data: bytes, slot: int) -> int:
    """Offset in `data` (version prefix included) of u8 field `slot` of the first compaction:
    the vtable entry gives its offset in the table."""
    body = data[2:]
    (first,) = Table.root(body).tables(1) or []
    entry = first.vtable + 4 + 2 * slot
    return 2 + first.pos + int.from_bytes(body[entry : entry + 2], "little")


# ---------------------------------------------------------------------------- what is kept


def _partial() -> CompactionsState:
    """0.18's state caught half way through a compaction (golden018/compacting)."""
    files = Fixture018("compacting").files("compactions", "compactions")
    return decode_state(files[-1][1])


def test_the_half_done_0_18_compaction_is_resumable() -> None:
    state = _partial()
    (kept,) = resumable(state)
    assert kept.status == RUNNING and kept.context is not None
    assert SUB_COMPLETED in [s.status for s in kept.context.subcompactions]


def test_clash_is_a_shared_input_or_destination() -> None:
    kept = CompactionRecord("A", RUNNING, ("v1", "v2"), (3,), 7, context=CompactionContext())
    assert clash(kept, CompactionRecord("B", RUNNING, ("v2",), (), 9))
    assert clash(kept, CompactionRecord("B", RUNNING, (), (3,), 9))
    assert clash(kept, CompactionRecord("B", RUNNING, ("v9",), (), 7))  # builds run 7 too
    assert clash(kept, CompactionRecord("B", RUNNING, (), (7,), 8))  # merges run 7 away
    assert not clash(kept, CompactionRecord("B", RUNNING, ("v9",), (5,), 8))


def _state(tmp_path: Path, seed: CompactionsState) -> tuple[CompactorState, CompactionsStore]:
    store = Store.resolve(LocalStore(str(tmp_path)))
    paths = DbPaths.of("db")
    store.put(paths.compactions(1), encode_state(seed))
    return CompactorState(store, paths, SystemClock()), CompactionsStore(
        store, paths, SystemClock()
    )


def _latest(versions: CompactionsStore) -> CompactionsState:
    latest = versions.latest()
    assert latest is not None
    return latest[1]


def test_every_write_keeps_it_until_a_compaction_of_ours_clashes(tmp_path: Path) -> None:
    seed = _partial()
    (theirs,) = seed.compactions
    state, versions = _state(tmp_path, seed)
    state.claim(seed.compactor_epoch + 1)
    assert _latest(versions).compactions == (theirs,)
    # A compaction of sorted runs it does not touch, into a run it does not build.
    free = theirs.destination + 100
    with state.listing((), (free,), free) as ours:
        assert _latest(versions).compactions == (ours, theirs)
    after = _latest(versions)
    assert after.compactions == (replace(ours, status=COMPLETED), theirs)
    # One that takes its L0 inputs: it is dropped before that compaction starts.
    with state.listing(theirs.l0_view_ids[:1], (), free + 1) as clashing:
        assert _latest(versions).compactions == (clashing, replace(ours, status=COMPLETED))
    assert theirs not in _latest(versions).compactions
