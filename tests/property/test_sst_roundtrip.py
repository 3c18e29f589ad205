"""encode_sst -> decode_sst gives back the same rows, for every codec and both flavours, and
with blocks padded to the block size (SlateDB 0.18)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.errors import InvalidArgumentError
from slatedb_py.format import Row, decode_sst, encode_sst
from tests.strategies import compacted_rows, wal_rows

CODECS = [None, "snappy", "zlib", "lz4", "zstd"]


@given(
    compacted_rows(),
    st.sampled_from(CODECS),
    st.integers(min_value=64, max_value=8192),
    st.integers(min_value=0, max_value=50),
)
def test_compacted_round_trip(rows: list[Row], codec, block_size: int, min_filter: int) -> None:
    data = encode_sst(rows, compression=codec, block_size=block_size, min_filter_keys=min_filter)
    sst = decode_sst(data)
    assert list(sst.rows()) == rows
    assert sst.info.sst_type == "compacted"
    assert sst.info.compression == codec
    assert sst.info.first_key == rows[0].key and sst.info.last_key == rows[-1].key
    assert sst.has_filter == (len(rows) >= min_filter)
    stats = sst.stats
    assert stats is not None
    assert stats["num_puts"] == sum(r.kind == "value" for r in rows)
    assert stats["num_deletes"] == sum(r.kind == "tombstone" for r in rows)
    assert stats["num_merges"] == sum(r.kind == "merge" for r in rows)
    assert stats["raw_key_size"] == sum(len(r.key) for r in rows)
    newest: dict[bytes, Row] = {}
    for r in rows:
        newest.setdefault(r.key, r)
    for key, row in newest.items():
        assert sst.might_contain(key)
        assert sst.get(key) == row
    # A key just past each present key is absent (or a real key).
    for key in list(newest)[:20]:
        probe = key + b"\x00"
        assert sst.get(probe) == newest.get(probe)


@given(wal_rows(), st.sampled_from(CODECS))
def test_wal_round_trip(rows: list[Row], codec) -> None:
    sst = decode_sst(encode_sst(rows, kind="wal", compression=codec))
    assert list(sst.rows()) == rows
    assert sst.info.sst_type == "wal"
    assert sst.info.first_seq == rows[0].seq
    assert sst.info.last_key is None
    assert not sst.has_filter and sst.stats is None
    last: dict[bytes, Row] = {}
    for r in rows:
        last[r.key] = r
    for key, row in last.items():
        assert sst.get(key) == row


@given(compacted_rows(min_size=2, max_size=200))
def test_block_boundaries_respect_size_and_separators(rows: list[Row]) -> None:
    sst = decode_sst(encode_sst(rows, block_size=256))
    blocks = sst.blocks()
    assert blocks[0][0] == 0 and blocks[0][2] == b""
    seen: list[Row] = []
    for i, (start, end, index_key) in enumerate(blocks):
        block = sst.block_rows(i)
        assert block, "no empty blocks"
        if i > 0:
            # The index key separates the previous block's last key from this block's first.
            assert seen[-1].key < index_key <= block[0].key or (
                seen[-1].key == block[0].key == index_key
            )
        if len(block) > 1:
            assert end - start - 4 <= 256
        seen.extend(block)
    assert seen == rows


@given(compacted_rows(min_size=1, max_size=200), st.sampled_from([64, 256, 1024, 4096]))
def test_padded_blocks_round_trip_and_fill_whole_units(rows: list[Row], block_size: int) -> None:
    """SlateDB 0.18's block alignment: every data block, with its zero padding, fills whole
    block-size units; a block's own bytes end where its index entry says, and reading gives
    back the rows, the lookups and the same layout as unpadded, only shifted."""
    data = encode_sst(rows, block_size=block_size, block_alignment=True)
    sst = decode_sst(data)
    assert list(sst.rows()) == rows
    pads = sst.block_paddings()
    offset = 0
    for (start, end, _), pad in zip(sst.blocks(), pads, strict=True):
        assert start == offset and (end - start + pad) % block_size == 0 and pad < block_size
        assert data[end : end + pad] == bytes(pad)
        offset = end + pad
    assert offset == sst.info.filter_offset
    newest: dict[bytes, Row] = {}
    for r in rows:
        newest.setdefault(r.key, r)
    assert all(sst.get(k) == r for k, r in newest.items())
    # Blocks hold the same rows as unpadded blocks of 4 bytes less (room for the CRC).
    plain = decode_sst(encode_sst(rows, block_size=block_size - 4))
    assert [sst.block_rows(i) for i in range(sst.num_blocks)] == [
        plain.block_rows(i) for i in range(plain.num_blocks)
    ]


def test_padding_is_refused_with_compression_or_for_the_wal() -> None:
    rows = [Row(b"k", b"v", 1)]
    for kw in ({"compression": "zstd"}, {"kind": "wal"}):
        with pytest.raises(InvalidArgumentError, match="block alignment"):
            encode_sst(rows, block_alignment=True, **kw)  # type: ignore[arg-type]
