"""What Python sees for bad input: classes of slatedb_py.errors naming the offset."""

from __future__ import annotations

import pytest

from slatedb_py import errors
from slatedb_py.format import Row, decode_sst, encode_sst

ROWS = [Row(b"k%04d" % i, b"value-%d" % i, 10_000 - i) for i in range(300)]
GOOD = encode_sst(ROWS, compression="lz4", block_size=512, min_filter_keys=10)


def test_hierarchy_inherits_builtin_classes() -> None:
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.InvalidTypeError, TypeError)
    assert issubclass(errors.InvalidTypeError, errors.InvalidArgumentError)
    assert issubclass(errors.CheckpointNotFoundError, LookupError)
    assert issubclass(errors.FencedError, errors.ClosedError)
    assert issubclass(errors.UnsupportedFormatError, errors.DataError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SlateDBError)
    assert errors.FencedError("x").reason == "fenced"


def test_checksum_mismatch_names_block_object_and_offset() -> None:
    sst = decode_sst(GOOD)
    start, _, _ = sst.blocks()[3]
    bad = bytearray(GOOD)
    bad[start + 5] ^= 0xFF
    broken = decode_sst(bytes(bad), name="compacted/01TEST.sst")
    with pytest.raises(errors.DataError) as e:
        list(broken.rows())
    assert e.value.offset == start
    assert e.value.object == "compacted/01TEST.sst"
    assert "data block 3" in str(e.value) and "checksum" in str(e.value)
    assert "compacted/01TEST.sst" in str(e.value)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty SST"),
        (b"\x00" * 10, "empty SST"),
        (GOOD[:-1], None),
        (GOOD[: len(GOOD) // 2], None),
        (GOOD[:-2] + b"\x00\x07", "SST format version 7"),
        (b"\xff" * 64, None),
    ],
)
def test_truncated_or_garbage_input(data: bytes, match: str | None) -> None:
    with pytest.raises(errors.DataError, match=match) as e:
        decode_sst(data)
    assert e.value.offset is not None


def test_unknown_version_is_unsupported_format() -> None:
    with pytest.raises(errors.UnsupportedFormatError):
        decode_sst(GOOD[:-2] + b"\x00\x03")


@pytest.mark.parametrize(
    ("rows", "kwargs", "exc", "match"),
    [
        ([Row(b"b", b"", 1), Row(b"a", b"", 1)], {}, errors.InvalidArgumentError, "row 1"),
        ([Row(b"a", b"", 1), Row(b"a", b"", 1)], {}, errors.InvalidArgumentError, "sorted"),
        (
            [Row(b"a", b"", 2), Row(b"b", b"", 1)],
            {"kind": "wal"},
            errors.InvalidArgumentError,
            "seq order",
        ),
        ([], {}, errors.InvalidArgumentError, "at least one row"),
        ([("k", b"v", 1)], {}, errors.InvalidTypeError, "key must be bytes"),
        ([(b"k", 5, 1)], {}, errors.InvalidTypeError, "value must be bytes"),
        ([42], {}, errors.InvalidTypeError, "a row must be"),
        ([(b"", b"v", 1)], {}, errors.InvalidArgumentError, "empty"),
        ([(b"x" * 65536, b"v", 1)], {}, errors.InvalidArgumentError, "65535"),
        ([Row(b"a", b"", 1)], {"compression": "gzip"}, errors.InvalidArgumentError, "compression"),
        ([Row(b"a", b"", 1)], {"kind": "log"}, errors.InvalidArgumentError, "kind"),
        ([Row(b"a", b"", 1)], {"block_size": 0}, errors.InvalidArgumentError, "block_size"),
        ([Row(b"a", b"", 1)], {"block_size": 70000}, errors.InvalidArgumentError, "block_size"),
    ],
)
def test_encode_refuses_bad_rows_and_options(rows, kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        encode_sst(rows, **kwargs)


def test_row_constructor_checks() -> None:
    with pytest.raises(errors.InvalidTypeError):
        Row("k", b"v", 1)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="tombstone"):
        Row(b"k", b"v", 1, "tombstone")
    with pytest.raises(errors.InvalidArgumentError, match="needs a bytes value"):
        Row(b"k", None, 1)
    with pytest.raises(errors.InvalidArgumentError, match="kind"):
        Row(b"k", b"v", 1, "upsert")
    with pytest.raises(OverflowError):
        Row(b"k", b"v", -1)
    assert Row(b"k", None, 1, "tombstone").value is None
    assert Row(b"k", b"", 3) == Row(b"k", b"", 3)
    assert Row(b"k", b"", 3) != Row(b"k", b"", 4)


def test_lookup_with_wrong_key_type() -> None:
    sst = decode_sst(GOOD)
    with pytest.raises(errors.InvalidTypeError):
        sst.get("k0001")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidTypeError):
        sst.might_contain(1)  # type: ignore[arg-type]
