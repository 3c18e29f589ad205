"""Request budgets of cold scans on S3 (moto's server): a scan reads SST data ahead in
coalesced ranged GETs of about 1 MiB (`rust/src/fetch.rs` READAHEAD_BYTES), so a full scan of
an SST costs its open (the 64 KiB tail, plus one ranged read when index and filter do not fit
it) and one GET per MiB of its data blocks, rounded up; a narrow scan opens only the SSTs whose
key range it overlaps and reads a block or two of each.

Requests are counted twice: by a `Store` subclass (every ranged read and tail read of an SST,
with its ranges; a subclass is never read natively, `Store.local_root`) and by the moto server's
own request log, which shows whether one `get_ranges` call became one HTTP GET.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import threading
import time
from collections import Counter
from typing import Any

import pytest

from slatedb_py import Db
from slatedb_py.config import DbOptions
from slatedb_py.manifest.model import Manifest
from slatedb_py.store import Store
from tests.support import S3Server

MiB = 1024 * 1024
TAIL = 64 * 1024
ROWS = 240_000
VALUE = 100
KEY = b"key%08d"

OPTS = DbOptions(
    flush_interval=None,
    l0_sst_size_bytes=4 * MiB,
    max_sst_size=8 * MiB,  # ~30 MB compacts into a sorted run of four SSTs
    compactor_enabled=False,
    gc_enabled=False,
)


class CountingStore(Store):
    """Counts the reads of SST objects (`compacted/`), per object."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.tails: Counter[str] = Counter()
            self.range_calls: dict[str, list[list[tuple[int, int]]]] = {}
            self.whole: Counter[str] = Counter()

    def get_tail(self, path: str, length: int) -> Any:
        with self._lock:
            self.tails[path] += 1
        return super().get_tail(path, length)

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        with self._lock:
            self.range_calls.setdefault(path, []).append([(int(s), int(e)) for s, e in ranges])
        return super().get_ranges(path, ranges)

    def get(self, path: str) -> bytes | None:
        if "/compacted/" in path:
            with self._lock:
                self.whole[path] += 1
        return super().get(path)

    def requests(self) -> int:
        return (
            sum(self.tails.values())
            + sum(len(c) for c in self.range_calls.values())
            + sum(self.whole.values())
        )


class MotoLog:
    """The GET requests the moto server logged for SST objects since `mark()`. Read with
    `pread`: the log file's offset is shared with the server process, which writes to it."""

    # tests/moto_logged.py's lines: the request line, quoted; moto's own log added a status.
    LINE = re.compile(rb'"GET /[^/ ]+/(\S*/compacted/\S+\.sst) HTTP/[\d.]+"')

    def __init__(self, server: S3Server) -> None:
        self.fd = server.log.fileno()
        self.at = 0

    def mark(self) -> None:
        self.at = os.fstat(self.fd).st_size

    def sst_gets(self, expected: int) -> Counter[str] | None:
        """The logged GETs once they reach `expected` (the server logs a request after
        answering it, through a buffered stream); None when the server logged no SST GET at
        all within a few seconds (its log is not line by line here: the cross-check is
        skipped, the store-side count stands)."""
        deadline = time.monotonic() + 5
        while True:
            size = os.fstat(self.fd).st_size
            text = os.pread(self.fd, size - self.at, self.at)
            got = Counter(m.group(1).decode() for m in self.LINE.finditer(text))
            if sum(got.values()) >= expected or time.monotonic() > deadline:
                return got if got else None
            time.sleep(0.1)


def _sst_paths(m: Manifest) -> dict[str, Any]:
    """Object path -> SstTableInfo of every SST of the tree."""
    return {f"db/compacted/{v.sst.id}.sst": v.sst.info for v in m.all_views()}


def _overlapping(m: Manifest, start: bytes, end: bytes) -> set[str]:
    """SSTs whose key range meets [start, end): L0 SSTs by their first and last keys, SSTs of
    a sorted run up to the next one's first key."""
    out = set()
    for v in m.l0:
        i = v.sst.info
        if i.first_entry < end and (i.last_entry is None or i.last_entry >= start):
            out.add(f"db/compacted/{v.sst.id}.sst")
    for run in m.compacted:
        views = list(run.views)
        for j, v in enumerate(views):
            upper = views[j + 1].sst.info.first_entry if j + 1 < len(views) else None
            if v.sst.info.first_entry < end and (upper is None or upper > start):
                out.add(f"db/compacted/{v.sst.id}.sst")
    return out


@pytest.fixture(scope="module")
def loaded() -> Any:
    """A ~30 MB database on moto S3: a sorted run of several SSTs plus an L0 of overwrites
    spread over the whole key range. Returns (store, moto log, model digest, overwritten)."""
    server = S3Server.get()
    store = CountingStore(server.store(server.new_bucket()))
    rng = random.Random(20240917)
    values = rng.randbytes(ROWS * VALUE)  # incompressible
    with Db.open("db", store, OPTS) as db:
        for i in range(ROWS):
            db.put(KEY % i, values[i * VALUE : (i + 1) * VALUE], await_durable=False)
        db.compact()
        for i in range(0, ROWS, 97):
            db.put(KEY % i, b"overwritten %d" % i, await_durable=False)
        db.flush_memtable()
        _, m = db.manifest()
    assert len(m.l0) >= 1 and len(m.compacted) == 1 and len(m.compacted[0].views) >= 3, (
        len(m.l0),
        [len(r.views) for r in m.compacted],
    )
    digest = hashlib.sha256()
    for i in range(ROWS):
        digest.update(KEY % i)
        digest.update(b"overwritten %d" % i if i % 97 == 0 else values[i * VALUE : (i + 1) * VALUE])
    return store, MotoLog(server), digest.hexdigest()


def _budget(infos: dict[str, Any], store: CountingStore, where: str) -> tuple[int, int]:
    """Checks the per-SST budget of a full scan; returns (requests, budget)."""
    total = budget = 0
    assert not store.whole, f"{where}: whole-object GETs of SSTs: {dict(store.whole)}"
    assert set(store.tails) == set(infos), f"{where}: every SST opened"
    for path, info in infos.items():
        data_end = info.filter_offset  # data blocks end where the filter starts
        calls = store.range_calls.get(path, [])
        meta = [c for c in calls if all(s >= data_end for s, _ in c)]
        data = [c for c in calls if c not in meta]
        assert all(e <= data_end for c in data for _, e in c), (
            f"{where}: a read mixing data and metadata"
        )
        assert store.tails[path] == 1 and len(meta) <= 1, (
            f"{where}: {path} opened with {store.tails[path]} tail reads and {len(meta)} more"
        )
        data_budget = math.ceil(data_end / MiB)
        assert len(data) <= data_budget, (
            f"{where}: {path}: {len(data)} data GETs for {data_end} bytes of data blocks "
            f"(budget {data_budget}: one per MiB)"
        )
        fetched = sum(e - s for c in data for s, e in c)
        assert fetched == data_end, (
            f"{where}: {path}: {fetched} bytes of data read, {data_end} stored"
        )
        total += store.tails[path] + len(meta) + len(data)
        budget += 2 + data_budget
    return total, budget


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_cold_full_scan_costs_one_get_per_mib_plus_the_opens(loaded: Any, reverse: bool) -> None:
    store, log, digest = loaded
    with Db.open("db", store, OPTS) as db:
        _, m = db.manifest()
        infos = _sst_paths(m)
        store.reset()
        log.mark()
        started = time.monotonic()
        h = hashlib.sha256()
        n = 0
        rows = db.scan(reverse=reverse)
        got = list(rows)[::-1] if reverse else rows
        for k, v in got:
            h.update(k)
            h.update(v)
            n += 1
        elapsed = time.monotonic() - started
        assert n == ROWS and h.hexdigest() == digest, "the scan returns every row, newest versions"

        where = "reverse scan" if reverse else "full scan"
        requests, budget = _budget(infos, store, where)
        assert store.requests() == requests
        http = log.sst_gets(requests)
        assert http is None or sum(http.values()) == requests, (
            f"{where}: moto logged {sum(http.values())} SST GETs, the store made {requests} calls "
            "(one call must be one request)"
        )
        assert requests <= budget
        sizes = sum(i.filter_offset for i in infos.values())
        print(
            f"\n{where}: {len(infos)} SSTs, {sizes / MiB:.1f} MiB of data blocks, {requests} GETs "
            f"(budget {budget}), {elapsed:.2f} s"
        )


def test_cold_narrow_scan_opens_only_the_ssts_it_needs(loaded: Any) -> None:
    store, log, _ = loaded
    lo, hi = ROWS // 2 + 13, ROWS // 2 + 113
    start, end = KEY % lo, KEY % hi
    with Db.open("db", store, OPTS) as db:
        _, m = db.manifest()
        want_open = _overlapping(m, start, end)
        run_ssts = {f"db/compacted/{v.sst.id}.sst" for v in m.compacted[0].views}
        assert len(want_open & run_ssts) == 1, "the range lies inside one SST of the run"
        store.reset()
        log.mark()
        rows = list(db.scan(start, end))
        assert [k for k, _ in rows] == [KEY % i for i in range(lo, hi)]
        assert set(store.tails) == want_open, "opens only the SSTs whose key range it meets"
        infos = _sst_paths(m)
        data_bytes = sum(
            e - s
            for path, calls in store.range_calls.items()
            for c in calls
            for s, e in c
            if e <= infos[path].filter_offset
        )
        requests = store.requests()
        logged = log.sst_gets(requests)
        assert logged is None or sum(logged.values()) == requests
        # Per SST: its tail, maybe one more metadata read, one read of data blocks.
        assert requests <= 3 * len(want_open), store.range_calls
        # 100 rows of ~120 bytes: a few 4 KiB blocks per SST, no 1 MiB readahead past `end`.
        assert data_bytes <= 64 * 1024, store.range_calls
        print(
            f"\nnarrow scan of 100 rows: opened {len(want_open)} of {len(infos)} SSTs, "
            f"{requests} GETs, {data_bytes} bytes of data blocks"
        )

        # Seeking further inside it stays within the same SSTs.
        store.reset()
        it = db.scan(start)
        next(it)
        it.seek(KEY % (lo + 50))
        assert next(it)[0] == KEY % (lo + 50)
        assert store.requests() <= 2 and not store.tails, "the SSTs stay open; a block or two"
