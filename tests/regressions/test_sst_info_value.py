"""Found by the review of the structure issue: `format.SstInfo` became the native frozen class
and compared by identity, where the dataclass it replaced compared by value. Two opens of
the same bytes give equal (and equally hashed) infos again."""

from __future__ import annotations

from slatedb_py.format import Row, decode_sst, encode_sst


def test_infos_of_the_same_bytes_are_equal_and_hash_alike() -> None:
    data = encode_sst([Row(b"a", b"1", 1), Row(b"b", b"2", 2)], compression="zstd")
    a, b = decode_sst(data).info, decode_sst(data).info
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    other = decode_sst(encode_sst([Row(b"a", b"1", 1)], compression="zstd")).info
    assert a != other
    assert repr(a) == (
        f"SstInfo(sst_type='compacted', size={len(data)}, compression='zstd', format_version=2)"
    )
    assert a != "not an info"
