"""Benchmark fixtures and the side-by-side report.

Every benchmark records `extra_info["units"]` (rows, keys or bytes per round) and
`extra_info["unit"]`; at the end of the session a table prints each figure as a rate, as a
fraction of a plain memory copy of the same bytes (the physical limit), and as a ratio to
rocksdict where rocksdict does the same job. Run with `make bench` (release build).
"""

from __future__ import annotations

import pytest

N_ROWS = 100_000
KEY_LEN = 16
VALUE_LEN = 100


def make_rows() -> list[tuple[bytes, bytes, int]]:
    # 16-byte keys, 100-byte values, distinct and in key order.
    return [
        (b"user:%011d" % i, (b"%08d" % (i * 7919 % 100_000_000)) * 12 + b"abcd", i + 1)
        for i in range(N_ROWS)
    ]


@pytest.fixture(scope="session")
def rows() -> list[tuple[bytes, bytes, int]]:
    return make_rows()


_RESULTS: dict[str, tuple[float, str]] = {}


@pytest.fixture
def record(benchmark):  # type: ignore[no-untyped-def]
    """Runs `fn` under pytest-benchmark and records its rate in units per second."""

    def run(name: str, fn, units: int, unit: str, check=None):  # type: ignore[no-untyped-def]
        result = benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
        correct = True if check is None else bool(check(result))
        benchmark.extra_info.update(units=units, unit=unit, correct=correct)
        assert correct, f"{name} returned a wrong result"
        stats = getattr(benchmark, "stats", None)
        if stats is not None and stats.stats.min > 0:
            _RESULTS[name] = (units / stats.stats.min, unit)
        return result

    return run


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _RESULTS:
        return
    memcpy = _RESULTS.get("memcpy", (None, ""))[0]
    w = terminalreporter
    w.section("slatedb_py format benchmarks (best of 7 rounds)")
    from slatedb_py import _native

    if _native.DEBUG_BUILD:
        w.write_line("WARNING: debug build of the extension; run `make bench` for real figures")
    pairs = {
        "decode_iterate": "rocksdict_iterate",
        "get_cached_block": "rocksdict_get",
    }
    for name, (rate, unit) in sorted(_RESULTS.items()):
        line = f"{name:28} {rate / 1e6:10.2f} M {unit}/s"
        if memcpy and unit == "bytes":
            line += f"   {rate / memcpy:6.3f} of memcpy"
        elif memcpy and unit == "rows":
            line += f"   {rate * (KEY_LEN + VALUE_LEN) / memcpy:6.3f} of memcpy (as bytes)"
        if name in pairs and pairs[name] in _RESULTS:
            line += f"   {rate / _RESULTS[pairs[name]][0]:5.2f}x rocksdict"
        w.write_line(line)
