"""SST format throughput: encode, decode+iterate, bloom probes, 8-way merge; beside a memory
copy of the same bytes and rocksdict on the same rows."""

from __future__ import annotations

import tempfile

import pytest

from benches.conftest import KEY_LEN, N_ROWS, VALUE_LEN
from slatedb_py.format import Row, decode_sst, encode_sst, merge_rows

PAYLOAD = N_ROWS * (KEY_LEN + VALUE_LEN)


def test_memcpy(record) -> None:
    buf = bytearray(PAYLOAD)
    record("memcpy", lambda: bytes(buf), PAYLOAD, "bytes", lambda b: len(b) == PAYLOAD)


@pytest.mark.parametrize("codec", [None, "lz4", "zstd"])
def test_encode_sst(record, rows, codec) -> None:
    row_objs = [Row(*r) for r in rows]
    out = record(
        f"encode_sst[{codec or 'none'}]",
        lambda: encode_sst(row_objs, compression=codec),
        PAYLOAD,
        "bytes",
        lambda d: decode_sst(d).info.last_key == rows[-1][0],
    )
    assert out


def test_decode_iterate(record, rows) -> None:
    data = encode_sst(rows)

    def run() -> int:
        n = 0
        for _ in decode_sst(data).rows():
            n += 1
        return n

    record("decode_iterate", run, N_ROWS, "rows", lambda n: n == N_ROWS)


def test_get_cached_block(record, rows) -> None:
    sst = decode_sst(encode_sst(rows))
    keys = [r[0] for r in rows[::10]]
    record(
        "get_cached_block",
        lambda: [sst.get(k) for k in keys],
        len(keys),
        "keys",
        lambda got: all(g is not None for g in got),
    )


def test_bloom_batch(record, rows) -> None:
    sst = decode_sst(encode_sst(rows))
    keys = [r[0] for r in rows]
    record("bloom_probe_batch", lambda: sst.might_contain_many(keys), N_ROWS, "keys", all)


def test_merge_8_native(record, rows) -> None:
    sources = [decode_sst(encode_sst(rows[i::8])) for i in range(8)]
    record(
        "merge_8_sources_native",
        lambda: merge_rows(sources).drain_count(),
        N_ROWS,
        "rows",
        lambda r: r[0] == N_ROWS,
    )


def test_merge_8_to_python(record, rows) -> None:
    sources = [decode_sst(encode_sst(rows[i::8])) for i in range(8)]

    def run() -> int:
        it = merge_rows(sources)
        n = 0
        while batch := it.next_batch(4096):
            n += len(batch)
        return n

    record("merge_8_sources_to_python", run, N_ROWS, "rows", lambda n: n == N_ROWS)


@pytest.fixture(scope="module")
def rocks(rows):  # type: ignore[no-untyped-def]
    rocksdict = pytest.importorskip("rocksdict")
    with tempfile.TemporaryDirectory() as d:
        db = rocksdict.Rdict(d + "/db", options=rocksdict.Options(raw_mode=True))
        wb = rocksdict.WriteBatch(raw_mode=True)
        for k, v, _ in rows:
            wb.put(k, v)
        db.write(wb)
        db.flush()
        yield db
        db.close()


def test_rocksdict_iterate(record, rocks) -> None:
    def run() -> int:
        n = 0
        for _ in rocks.items():
            n += 1
        return n

    record("rocksdict_iterate", run, N_ROWS, "rows", lambda n: n == N_ROWS)


def test_rocksdict_get(record, rocks, rows) -> None:
    keys = [r[0] for r in rows[::10]]
    record("rocksdict_get", lambda: [rocks[k] for k in keys], len(keys), "keys", all)
