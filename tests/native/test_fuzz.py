"""Decoders fuzzed through the Python surface: random bytes, truncations and single-byte
changes of valid SSTs. Each input must raise DataError or decode to exactly the original
rows. The fast suite runs a sample; `-m slow` runs 100k inputs (the Rust suite runs 120k
natively on every `cargo test`)."""

from __future__ import annotations

import random

import pytest

from slatedb_py.errors import DataError
from slatedb_py.format import Row, decode_sst, encode_sst

CODECS = [None, "snappy", "zlib", "lz4", "zstd"]


def corpus() -> list[tuple[bytes, list[Row]]]:
    rng = random.Random(7)
    out = []
    for codec in CODECS:
        for kind in ("compacted", "wal"):
            keys = sorted({b"key%05d" % rng.randrange(100_000) for _ in range(60)})
            rows = [
                Row(k, None, 500 - i, "tombstone")
                if i % 9 == 0
                else Row(k, bytes(rng.randrange(256) for _ in range(rng.randrange(30))), 500 - i)
                for i, k in enumerate(keys)
            ]
            if kind == "wal":
                rows = [Row(r.key, r.value, i + 1, r.kind) for i, r in enumerate(rows)]
            data = encode_sst(rows, kind=kind, compression=codec, block_size=200, min_filter_keys=5)
            out.append((data, rows))
    return out


def run(n: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    items = corpus()
    errors = exact = 0
    for _ in range(n):
        data, rows = rng.choice(items)
        mode = rng.randrange(4)
        if mode == 0:
            mutated = rng.randbytes(rng.randrange(400))
        elif mode == 1:
            mutated = data[: rng.randrange(len(data))]
        else:
            b = bytearray(data)
            b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
            mutated = bytes(b)
        try:
            sst = decode_sst(mutated)
            got = list(sst.rows())
            lookups = [sst.get(r.key) for r in rows[:5]]
        except DataError:
            errors += 1
            continue
        assert got == rows
        assert lookups == rows[:5] or sst.info.sst_type == "wal"
        exact += 1
    return errors, exact


def test_fuzz_sample() -> None:
    errors, exact = run(5_000, seed=1)
    assert errors + exact == 5_000


@pytest.mark.slow
def test_fuzz_100k() -> None:
    errors, exact = run(100_000, seed=2)
    print(f"fuzzed 100000 inputs: {errors} errors, {exact} exact, 0 crashes, 0 wrong answers")
    assert errors + exact == 100_000
