"""The manifest codec on its own: `encode_manifest`/`decode_manifest` round trips, SlateDB
0.17.0's own manifests (tests/data/golden), and broken bytes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.errors import DataError, UnsupportedFormatError
from slatedb_py.ids import ulid_from_int
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.compactions_codec import CompactionsState, encode_state
from slatedb_py.manifest.fb import COMPRESSION
from slatedb_py.manifest.model import (
    EXCLUDED,
    INCLUDED,
    UNBOUNDED,
    BytesBound,
    CheckpointEntry,
    ExternalDb,
    Manifest,
    Segment,
    SortedRun,
    SstHandle,
    SstTableInfo,
    SstView,
)
from tests.interop.golden import GOLDEN, NAMES, Fixture
from tests.unit.builders import sst_infos, u64s, ulids, uuids

U8, U16, U32, U64 = 2**8 - 1, 2**16 - 1, 2**32 - 1, 2**64 - 1

# ---------------------------------------------------------------------------- strategies

# SST format versions as written (1 and 2 exist; absent reads as 1, so 0 is not one).
format_versions = st.integers(1, U16)


def bound(kind: int) -> st.SearchStrategy[BytesBound]:
    return st.builds(
        BytesBound, st.just(kind), st.none() if kind == UNBOUNDED else st.binary(max_size=8)
    )


bounds = st.sampled_from([UNBOUNDED, INCLUDED, EXCLUDED]).flatmap(bound)
ranges = st.none() | st.tuples(bounds, bounds)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    # One handle per SST id (the file lists each SST once; views refer to it by id).
    sst_ids = draw(st.lists(ulids, max_size=6, unique=True))
    handles = [SstHandle(i, draw(sst_infos), draw(format_versions)) for i in sst_ids]

    def views(max_size: int) -> tuple[SstView, ...]:
        if not handles:
            return ()
        out = []
        for _ in range(draw(st.integers(0, max_size))):
            h = draw(st.sampled_from(handles))
            view_id = draw(st.just(h.id) | ulids)  # 0.17 writes view id == SST id
            out.append(SstView(view_id, h, draw(ranges)))
        return tuple(out)

    def runs() -> tuple[SortedRun, ...]:
        ids = draw(st.lists(st.integers(0, U32), max_size=3, unique=True))
        return tuple(SortedRun(i, views(3)) for i in sorted(ids, reverse=True))

    checkpoints = draw(
        st.lists(
            st.builds(
                CheckpointEntry,
                id=uuids,
                manifest_id=u64s,
                expire_time_s=st.just(0) | st.integers(1, U32),  # 0: never expires
                create_time_s=st.integers(0, U32),
                writer_epoch=st.none() | u64s,
                name=st.none() | st.text(max_size=10),
            ),
            max_size=3,
        )
    )
    externals = draw(
        st.lists(
            st.builds(
                ExternalDb,
                path=st.text(min_size=1, max_size=12),
                source_checkpoint_id=uuids,
                final_checkpoint_id=st.none() | uuids,
                sst_ids=st.lists(ulids, max_size=3).map(tuple),
            ),
            max_size=2,
        )
    )
    segments = tuple(
        Segment(draw(st.binary(max_size=4)), draw(st.none() | ulids), views(2), runs())
        for _ in range(draw(st.integers(0, 2)))
    )
    return Manifest(
        initialized=draw(st.booleans()),
        writer_epoch=draw(u64s),
        compactor_epoch=draw(u64s),
        replay_after_wal_id=draw(u64s),
        wal_id_last_seen=draw(u64s),
        last_compacted_l0_view_id=draw(st.none() | ulids),
        l0=views(4),
        compacted=runs(),
        last_l0_clock_tick=draw(st.integers(-(2**63), 2**63 - 1)),
        checkpoints=tuple(checkpoints),
        last_l0_seq=draw(u64s),
        recent_snapshot_min_seq=draw(u64s),
        sequence_tracker=draw(st.none() | st.binary(max_size=20)),
        external_dbs=tuple(externals),
        segments=segments,
        segment_extractor_name=draw(st.none() | st.text(max_size=8)),
    )


# ---------------------------------------------------------------------------- round trips


@given(manifests())
def test_round_trip(m: Manifest) -> None:
    data = encode_manifest(m)
    assert data[:2] == b"\x00\x02"  # always written as ManifestV2
    back = decode_manifest(data)
    assert back == m
    assert back.format_version == 2
    # Views that share an SST decode to one handle, as the file lists each SST once.
    by_id = {v.sst.id: v.sst for v in back.all_views()}
    assert all(v.sst is by_id[v.sst.id] for v in back.all_views())


def test_defaults_round_trip() -> None:
    assert decode_manifest(encode_manifest(Manifest())) == Manifest()


def test_every_field_matters_to_the_encoding() -> None:
    """A round trip that dropped a field would still pass on default values; each field set
    to something else must survive on its own."""
    base = Manifest()
    sid = ulid_from_int(7 << 80)
    view = SstView(
        sid, SstHandle(sid, SstTableInfo(b"a", b"b", 1, 2, 3, 4, "zstd", "compacted", 5, 6, 1))
    )
    cp = CheckpointEntry(uuid.UUID(int=9), 3, 100, 50, 2, "nightly")
    changed: dict[str, Any] = {
        "initialized": False,
        "writer_epoch": 2,
        "compactor_epoch": 3,
        "replay_after_wal_id": 4,
        "wal_id_last_seen": 5,
        "last_compacted_l0_view_id": sid,
        "l0": (view,),
        "compacted": (SortedRun(1, (view,)),),
        "last_l0_clock_tick": -5,
        "checkpoints": (cp,),
        "last_l0_seq": 6,
        "recent_snapshot_min_seq": 7,
        "sequence_tracker": None,
        "external_dbs": (ExternalDb("other/db", uuid.UUID(int=1), None, (sid,)),),
        "segments": (Segment(b"", None, (), ()),),
        "segment_extractor_name": "prefix",
    }
    for field, value in changed.items():
        m = Manifest(**{field: value})
        assert getattr(m, field) != getattr(base, field)
        assert getattr(decode_manifest(encode_manifest(m)), field) == value, field


# ---------------------------------------------------------------------------- SlateDB's own


def _manifest_files() -> list[Path]:
    return sorted(GOLDEN.glob("*/db/manifest/*.manifest"))


@pytest.mark.parametrize(
    "path", _manifest_files(), ids=lambda p: f"{p.parts[-4]}/{p.stem.lstrip('0')}"
)
def test_golden_manifests_decode_and_re_encode_equal(path: Path) -> None:
    m = decode_manifest(path.read_bytes(), name=str(path))
    assert m.format_version == 2  # 0.17.0 writes V2
    again = decode_manifest(encode_manifest(m))
    assert again == m


@pytest.mark.parametrize("name", NAMES)
def test_golden_final_manifest_matches_what_slatedb_read(name: str) -> None:
    """Against `Admin.read_manifest` of 0.17.0 (expected.json): ground truth."""
    fx = Fixture(name)
    e = fx.expected["manifest"]
    files = sorted((fx.root / "manifest").glob("*.manifest"))
    assert int(files[-1].stem) == e["id"]  # the final manifest is the one it read
    m = decode_manifest(files[-1].read_bytes())
    assert m.initialized == e["initialized"]
    assert m.writer_epoch == e["writer_epoch"]
    assert m.compactor_epoch == e["compactor_epoch"]
    assert m.replay_after_wal_id == e["replay_after_wal_id"]
    assert m.wal_id_last_seen + 1 == e["next_wal_sst_id"]
    assert m.last_l0_clock_tick == e["last_l0_clock_tick"]
    assert m.last_l0_seq == e["last_l0_seq"]
    assert m.recent_snapshot_min_seq == e["recent_snapshot_min_seq"]
    assert m.last_compacted_l0_view_id == e["last_compacted_l0_sst_view_id"]
    assert m.external_dbs == () and e["external_dbs"] == []
    assert m.segments == () and e["segments"] == []

    def check_view(v: SstView, ev: dict) -> None:  # type: ignore[type-arg]
        assert v.id == ev["id"]
        assert v.sst.id == ev["sst"]["id"]["value"]
        assert v.visible_range is None and ev["visible_range"] is None
        i, ei = v.sst.info, ev["sst"]["info"]
        assert i.first_entry == bytes.fromhex(ei["first_entry"])
        assert i.last_entry == bytes.fromhex(ei["last_entry"])
        for f in (
            "index_offset",
            "index_len",
            "filter_offset",
            "filter_len",
            "stats_offset",
            "stats_len",
        ):
            assert getattr(i, f) == ei[f], f
        assert i.compression == (
            ei["compression_codec"].lower() if ei["compression_codec"] else None
        )
        assert i.compression == fx.codec
        assert i.sst_type == ei["sst_type"].lower()
        assert i.filter_format == {"LEGACY": 0, "COMPOSITE": 1}[ei["filter_format"]]
        assert i.estimated_size == ev["sst"]["estimated_size_bytes"]

    assert len(m.l0) == len(e["l0"])
    for v, ev in zip(m.l0, e["l0"]):
        check_view(v, ev)
    assert [r.id for r in m.compacted] == [r["id"] for r in e["compacted"]]
    for r, er in zip(m.compacted, e["compacted"]):
        assert len(r.views) == len(er["sst_views"])
        for v, ev in zip(r.views, er["sst_views"]):
            check_view(v, ev)
    assert [
        (str(c.id), c.manifest_id, c.expire_time_s, c.create_time_s, c.name) for c in m.checkpoints
    ] == [
        (c["id"], c["manifest_id"], c["expire_time_secs"], c["create_time_secs"], c["name"])
        for c in e["checkpoints"]
    ]
    # Every compacted/ file named L0 or sorted_run is in the manifest; the rest are not.
    roles = {f["file"].split("/")[-1][:-4]: f["role"] for f in fx.expected["compacted_files"]}
    assert m.sst_ids() == {k for k, role in roles.items() if role in ("L0", "sorted_run")}


# ---------------------------------------------------------------------------- broken bytes

NAME = "db/manifest/00000000000000000003.manifest"


def _sample() -> bytes:
    sid = ulid_from_int(5 << 80)
    view = SstView(
        sid, SstHandle(sid, SstTableInfo(b"a", b"q", 10, 2, 10, 0, None, "compacted", 12, 4, 1))
    )
    cp = CheckpointEntry(uuid.UUID(int=1), 1, 0, 10, None, "cp")
    return encode_manifest(
        Manifest(l0=(view,), compacted=(SortedRun(0, (view,)),), checkpoints=(cp,))
    )


def _golden_sample() -> bytes:
    return (GOLDEN / "compacted" / "db" / "manifest" / "00000000000000000011.manifest").read_bytes()


@pytest.mark.parametrize("data", [b"", b"\x00"], ids=["empty", "one-byte"])
def test_too_short_is_a_data_error_naming_the_object(data: bytes) -> None:
    with pytest.raises(DataError) as e:
        decode_manifest(data, name=NAME)
    assert type(e.value) is DataError
    assert e.value.object == NAME and NAME in str(e.value)


@pytest.mark.parametrize("version", [0, 3, 0x0102, 0xFFFF])
def test_unknown_version_is_unsupported(version: int) -> None:
    body = _sample()[2:]
    with pytest.raises(UnsupportedFormatError) as e:
        decode_manifest(version.to_bytes(2, "big") + body, name=NAME)
    assert e.value.object == NAME and e.value.offset == 0
    assert NAME in str(e.value) and str(version) in str(e.value)


def test_without_a_name_the_error_names_nothing() -> None:
    with pytest.raises(DataError) as e:
        decode_manifest(_sample()[:-12])
    assert e.value.object is None


@pytest.mark.parametrize("sample", [_sample, _golden_sample], ids=["ours", "golden"])
def test_truncation_is_a_data_error_or_loses_only_padding(sample) -> None:  # type: ignore[no-untyped-def]
    """Each prefix of a manifest raises a DataError naming it, except that cutting the
    alignment padding the builder leaves after the last (first-written) vector loses nothing:
    a prefix never decodes to a different manifest."""
    data = sample()
    whole = decode_manifest(data)
    decoded_whole = []
    for n in range(len(data)):
        try:
            m = decode_manifest(data[:n], name=NAME)
        except DataError as e:
            assert e.object == NAME, n
            assert e.offset is not None and 0 <= e.offset <= n, n
        else:
            assert m == whole, n
            decoded_whole.append(n)
    assert all(n > len(data) - 8 for n in decoded_whole)


def test_a_compactions_file_is_not_a_manifest() -> None:
    """Same version prefix, another table: the missing required fields are caught."""
    data = encode_state(CompactionsState(3, ()))
    with pytest.raises(DataError, match="required") as e:
        decode_manifest(data, name=NAME)
    assert e.value.object == NAME


def test_a_wal_sst_is_not_a_manifest() -> None:
    fx = Fixture("codec_none")
    _, data = next((k, d) for k, d in fx.objects("wal") if d)
    with pytest.raises(DataError) as e:
        decode_manifest(data, name=NAME)
    assert e.value.object == NAME


def test_an_unknown_compression_codec_is_a_data_error() -> None:
    """A codec number beyond the known ones is refused, not mapped to one."""

    def encoded(codec: str) -> bytes:
        sid = ulid_from_int(5 << 80)
        info = SstTableInfo(b"a", b"q", 10, 2, 10, 0, codec, "compacted", 12, 4, 1)
        return encode_manifest(Manifest(l0=(SstView(sid, SstHandle(sid, info)),)))

    snappy, zstd = encoded("snappy"), encoded("zstd")
    # The same layout; the one byte that differs is the codec (1 vs 4).
    diffs = [i for i, (a, b) in enumerate(zip(snappy, zstd)) if a != b]
    assert len(snappy) == len(zstd) and len(diffs) == 1
    at = diffs[0]
    assert (
        (snappy[at], zstd[at]) == (COMPRESSION.index("snappy"), COMPRESSION.index("zstd")) == (1, 4)
    )
    broken = bytearray(zstd)
    broken[at] = len(COMPRESSION)
    with pytest.raises(DataError, match="compression") as e:
        decode_manifest(bytes(broken), name=NAME)
    assert e.value.object == NAME
    assert e.value.offset is not None


@given(st.data())
def test_flipped_bits_decode_or_raise_data_error(data: st.DataObject) -> None:
    """Whatever the damage, the decoder gives a manifest or a DataError naming the object,
    never another exception."""
    raw = bytearray(data.draw(st.sampled_from([_sample(), _golden_sample()])))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(2, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decode_manifest(bytes(raw), name=NAME)
    except DataError as e:
        assert e.object == NAME


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_data_error(raw: bytes) -> None:
    try:
        decode_manifest(b"\x00\x02" + raw, name=NAME)
    except DataError as e:
        assert e.object == NAME
