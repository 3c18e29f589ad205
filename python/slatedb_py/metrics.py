"""Metrics of a database handle: `Db.metrics()`, `DbReader.metrics()`, `Compactor.metrics()`.

Names (one scheme, Prometheus' conventions, so the exporter maps them one to one):
`<area>_<what>_<unit>`, snake case; a counter ends in `_total` (`_bytes_total` when it counts
bytes), a gauge has no suffix. Areas: `writes`, `reads`, `scans`, `wal`, `l0`,
`compaction`, `block_cache`, `store` (object-store requests, by kind:
`store_<kind>_requests_total`, kinds `get`, `get_ranges`, `put`, `put_if_absent`, `list`,
`delete`, and for multipart uploads `put_part` (each part) and `multipart` (each upload's
create, and its complete or abort); the same by the folder of the database they went to:
`store_requests_<folder>_<kind>_total`, folders `manifest`, `wal`, `compacted`, `compactions`
and `other`; `store_retries_total` counts retried attempts, `store_failures_total` requests
that failed after their retries) and `durable_wait` (the time a durable write waited for
its WAL upload: `durable_wait_seconds_count`, `_sum`, cumulative `_bucket_le_<bound>`
counts, and `durable_wait_seconds_p50` / `_p99` estimated from the buckets).

Counters live in one native array of atomics (`_native.Counters`): any thread adds without
a lock, and nothing is lost between threads. The writer's counts (`writes_total`,
`writes_keys_total`, `writes_bytes_total`) are plain ints kept inside its write lock, where
every write is anyway, and reported as gauges of the snapshot. A snapshot reads them one by
one; it is not one instant, which no monitoring needs.
"""

from __future__ import annotations

from bisect import bisect_left

from slatedb_py import _native

STORE_KINDS = (
    "get", "get_ranges", "put", "put_if_absent", "list", "delete", "put_part", "multipart"
)  # fmt: skip
STORE_FOLDERS = ("manifest", "wal", "compacted", "compactions", "other")
# Durable-wait buckets, upper bounds in seconds (the last catches the rest).
WAIT_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

COUNTERS = (
    "reads_total",  # keys looked up (get: 1, get_many: each key)
    "reads_bytes_total",  # value bytes returned
    "scans_total",
    "scans_rows_total",
    "wal_uploads_total",
    "wal_upload_bytes_total",
    "l0_flushes_total",
    "l0_flush_bytes_total",
    "compaction_runs_total",
    "compaction_output_bytes_total",
    *(f"store_{k}_requests_total" for k in STORE_KINDS),
    *(f"store_requests_{f}_{k}_total" for f in STORE_FOLDERS for k in STORE_KINDS),
    "store_retries_total",
    "store_failures_total",
    "store_read_bytes_total",
    "store_written_bytes_total",
    "durable_wait_seconds_count",
    "durable_wait_micros_sum",  # exported as durable_wait_seconds_sum
    *(f"durable_wait_bucket_{i}" for i in range(len(WAIT_BOUNDS) + 1)),
)
INDEX = {name: i for i, name in enumerate(COUNTERS)}
_STORE = {k: INDEX[f"store_{k}_requests_total"] for k in STORE_KINDS}
_WAIT_COUNT = INDEX["durable_wait_seconds_count"]
_WAIT_SUM = INDEX["durable_wait_micros_sum"]
_WAIT_BUCKET0 = INDEX["durable_wait_bucket_0"]


def folder_of(path: str) -> str:
    """The database folder a request went to: the one a key sits in (`db/wal/1.sst`), or
    the one a listing covers (`db/wal/`); `other` for the rest (`backups/LEASE`)."""
    parts = path.split("/")
    name = parts[-2] if len(parts) >= 2 else ""
    return name if name in _FOLDERS else "other"


_FOLDERS = frozenset(STORE_FOLDERS)


class Metrics:
    """The counters of one handle (its `Store` holds them); the handle adds its gauges."""

    def __init__(self) -> None:
        self._c = _native.Counters(len(COUNTERS))
        self.add = self._c.add  # add(INDEX[name], n): the hot paths bind this once
        self.add2 = self._c.add2  # add2(i, a, j, b): a count and its bytes at once

    def request(self, kind: str) -> None:
        i = _STORE.get(kind)
        if i is not None:
            self.add(i, 1)

    def durable_wait(self, seconds: float) -> None:
        add = self.add
        add(_WAIT_COUNT, 1)
        add(_WAIT_SUM, int(seconds * 1e6))
        add(_WAIT_BUCKET0 + bisect_left(WAIT_BOUNDS, seconds), 1)

    def snapshot(self) -> dict[str, int | float]:
        values = self._c.values()
        out: dict[str, int | float] = {}
        for name, v in zip(COUNTERS, values):
            if not name.startswith(("durable_wait_bucket_", "durable_wait_micros")):
                out[name] = v
        out["durable_wait_seconds_sum"] = values[_WAIT_SUM] / 1e6
        buckets = values[_WAIT_BUCKET0 : _WAIT_BUCKET0 + len(WAIT_BOUNDS) + 1]
        running = 0
        for bound, n in zip((*WAIT_BOUNDS, float("inf")), buckets):
            running += n
            out[f"durable_wait_seconds_bucket_le_{bound:g}"] = running
        count = values[_WAIT_COUNT]
        out["durable_wait_seconds_p50"] = _quantile(buckets, count, 0.5)
        out["durable_wait_seconds_p99"] = _quantile(buckets, count, 0.99)
        return out


def _quantile(buckets: list[int], count: int, q: float) -> float:
    """The upper bound of the bucket holding the `q` quantile (0.0 with no samples; the
    last finite bound when it falls in the overflow bucket)."""
    if not count:
        return 0.0
    want, running = q * count, 0
    for bound, n in zip(WAIT_BOUNDS, buckets):
        running += n
        if running >= want:
            return bound
    return WAIT_BOUNDS[-1]
