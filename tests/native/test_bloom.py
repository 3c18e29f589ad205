"""Bloom filter: SlateDB's probe scheme, no false negatives, the expected false-positive rate."""

from __future__ import annotations

import math

from slatedb_py.format import BloomFilter, Row, decode_sst, encode_sst


def test_false_positive_rate_at_10_bits_per_key_on_1m_keys() -> None:
    n = 1_000_000
    keys = [b"key-%d" % i for i in range(n)]
    f = BloomFilter.build(keys, bits_per_key=10)
    assert f.num_probes == 6
    assert f.num_bits == math.ceil(n * 10 / 8) * 8
    assert f.count_matches(keys) == n  # no false negatives
    probes = [b"absent-%d" % i for i in range(n)]
    rate = f.count_matches(probes) / n
    # Theory for m/n = 10 and k = 6: (1 - e^(-k n / m))^k.
    theory = (1 - math.exp(-6 / 10)) ** 6
    assert abs(theory - 0.0084) < 0.0002
    assert rate <= 1.2 * theory, (rate, theory)
    assert rate >= 0.5 * theory, (rate, theory)  # a filter that is too good is a broken one


def test_filter_round_trips_and_matches_sst_filter() -> None:
    keys = [b"k%05d" % i for i in range(1500)]
    f = BloomFilter.build(keys)
    again = BloomFilter.from_bytes(f.to_bytes())
    sst = decode_sst(encode_sst([Row(k, b"v", 1) for k in keys]))
    probes = keys + [b"x%05d" % i for i in range(3000)]
    assert (again.might_contain_many(probes) == f.might_contain_many(probes)).all()
    assert (sst.might_contain_many(probes) == f.might_contain_many(probes)).all()
    assert all(f.might_contain_many(keys))
