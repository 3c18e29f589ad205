"""Stores for tests: every store-parametrized test runs on each kind, including S3 against a
local S3-compatible server (moto's server mode, its own process, bound to 127.0.0.1) that the
test session starts on first use and stops at the end."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from obstore.store import LocalStore, MemoryStore, S3Store

from slatedb_py.store import Store

# The store kinds every store-parametrized test runs on. The slow RADOS Gateway job of the
# test command runs the integration suite with SLATEDB_PY_STORES=rgw.
STORE_KINDS = os.environ.get("SLATEDB_PY_STORES", "memory,local,s3").split(",")


class S3Server:
    """A moto S3 server in a child process on a free loopback port."""

    _instance: S3Server | None = None

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = tempfile.TemporaryFile()
        # moto's server, logging each request before it answers (tests/moto_logged.py).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.moto_logged", str(self.port)],
            stdout=self.log,
            stderr=self.log,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    raise RuntimeError(
                        f"moto server did not start: {self.log.read()[-2000:]!r}"
                    ) from None
                time.sleep(0.1)
        self._buckets = itertools.count()
        atexit.register(self.stop)

    @classmethod
    def get(cls) -> S3Server:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def new_bucket(self) -> str:
        name = f"test-{next(self._buckets)}"
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(req, timeout=10)
        return name

    def store(self, bucket: str) -> Any:
        return local_s3_store(self.endpoint, bucket)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Requests:
    """The requests a local S3 server (moto, or the RADOS Gateway) logged for one bucket, by
    kind: GET, PUT, LIST, HEAD, DELETE, POST. What object storage bills, and deterministic, so
    tests hold them to budgets. `take()` counts those since the last take: it first sends a
    marker request and reads the log up to it, so every request made before is in."""

    LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+)')

    def __init__(self, server: Any, bucket: str) -> None:
        self.server, self.bucket = server, bucket
        self.pos = 0
        self._markers = itertools.count()
        self.by_folder: Counter[str] = Counter()

    def _log(self) -> Any:
        if hasattr(self.server, "log"):  # moto: its stdout
            return self.server.log
        return open(self.server.dir / "log" / "client.rgw.a.log", "rb")  # the gateway's log

    def take(self) -> Counter[str]:
        # Two markers, one after the other, for the RADOS Gateway: it writes a request's
        # line after it answers, so under load the line of the last request before a
        # marker can come after the marker's; by the time the second marker is in the log,
        # that line has long been written. (moto, here, logs each request before it answers
        # it: tests/moto_logged.py.)
        log = self._log()
        data = ""
        for _ in range(2):
            marker = f"/{self.bucket}/request-marker-{next(self._markers)}"
            try:
                urllib.request.urlopen(self.server.endpoint + marker, timeout=10)
            except OSError:
                pass  # a 404 (or 403): the request is logged all the same
            for _ in range(500):
                log.seek(self.pos)
                data += log.read().decode(errors="replace")
                self.pos = log.tell()
                if marker in data:
                    break
                time.sleep(0.01)  # the server writes its line just after it answers
        out: Counter[str] = Counter()
        self.by_folder = Counter[str]()  # the same requests as "KIND folder", e.g. "LIST wal"
        for method, path in self.LINE.findall(data):
            if f"/{self.bucket}" not in path or "request-marker-" in path:
                continue
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            listing = method == "GET" and ("list-type" in query or "prefix" in query)
            kind = "LIST" if listing else method
            key = query["prefix"][0] if listing and "prefix" in query else path.split("?")[0]
            parts = [p for p in urllib.parse.unquote(key).split("/") if p]
            # /bucket/db/wal/x.sst or the prefix db/wal/: the folder below the database's.
            folder = parts[-2] if not listing and len(parts) >= 2 else parts[-1] if parts else ""
            out[kind] += 1
            self.by_folder[f"{kind} {folder}"] += 1
        return out


@contextmanager
def make_store(kind: str) -> Iterator[Any]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "local":
        with tempfile.TemporaryDirectory() as d:
            yield LocalStore(d)
    elif kind == "s3":
        server = S3Server.get()
        yield server.store(server.new_bucket())
    elif kind == "rgw":
        from tests.ceph_rgw import RadosGateway

        rgw = RadosGateway.get()
        yield rgw.store(rgw.new_bucket())
    else:
        raise ValueError(kind)


class FaultyStore:
    """Wraps the engine's `Store` to inject faults: latency per request, transient errors on
    a fraction of requests (half before the request reaches the store, half after it
    succeeded, as a lost response), and a gate that holds matching requests until opened."""

    def __new__(
        cls, inner: Any, *, latency_s: float = 0.0, error_rate: float = 0.0, seed: int = 0
    ) -> Any:
        class _Faulty(Store):
            def _call(self, what: str, path: str, fn: Any) -> Any:
                def faulty() -> Any:
                    predicate = self.gate_when
                    if predicate is not None and predicate(what, path):
                        self.gate.wait()
                    if self.latency_s:
                        time.sleep(self.latency_s)
                    roll = self.rng.random()
                    if roll < self.error_rate / 2:
                        self.injected += 1
                        raise ConnectionError(f"injected fault before {what} {path}")
                    result = fn()
                    if roll < self.error_rate:
                        self.injected += 1
                        raise ConnectionError(f"injected lost response after {what} {path}")
                    return result

                return super()._call(what, path, faulty)

        store = _Faulty(inner, max_retries=12, base_delay_s=0.002)
        store.latency_s = latency_s
        store.error_rate = error_rate
        store.rng = random.Random(seed)
        store.injected = 0
        store.gate = threading.Event()
        store.gate.set()
        store.gate_when = None
        return store


def pass_time(root: Path, ms: int, *clocks: Any) -> None:
    """Makes `ms` pass for a database in a local folder: every object there gets that much
    older (its mtime, the store's `last_modified`), and each manual clock moves on as much.
    The collector measures its safety floor on the store's clock, so only this can age
    objects in a test; what is written afterwards is new."""
    for f in root.rglob("*"):
        if f.is_file():
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns - ms * 1_000_000, st.st_mtime_ns - ms * 1_000_000))
    for clock in clocks:
        clock.advance(ms)


def plain(mutate: Any) -> Any:
    """A one-argument manifest mutation as the change `VersionedStore.update` takes."""
    return lambda _mid, m: (mutate(m), None)


class CountingSstReads(Store):
    """Counts the SST requests (ranged reads and tail reads of `compacted/`) that reach the
    store; a subclass, so every read goes through Python."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.requests = 0
        self._lock = threading.Lock()

    def get_ranges(self, path: str, ranges: Any) -> list[Any]:
        self._count(path)
        return super().get_ranges(path, ranges)

    def get_tail(self, path: str, length: int) -> Any:
        self._count(path)
        return super().get_tail(path, length)

    def _count(self, path: str) -> None:
        if "/compacted/" in path:
            with self._lock:
                self.requests += 1


def gate(
    store: Any, thread: str | None, what: str | tuple[str, ...] | None, folder: str
) -> threading.Event:
    """Holds `thread`'s (None: any thread's) requests of kind `what` (one, several, or None:
    any) under `folder` at the store's gate (closed here); returns an event set when the
    first one arrives."""
    reached = threading.Event()
    kinds = (what,) if isinstance(what, str) else what

    def held(w: str, path: str) -> bool:
        if (
            (kinds is None or w in kinds)
            and f"/{folder}/" in "/" + path
            and thread in (None, threading.current_thread().name)
        ):
            reached.set()
            return True
        return False

    store.gate_when = held
    store.gate.clear()
    return reached


def local_s3_store(endpoint: str, bucket: str) -> Any:
    """An obstore S3 store on a local test server (moto or the RADOS Gateway)."""
    return S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id="test",
        secret_access_key="test",
        region="us-east-1",
        client_options={"allow_http": True},
    )


def _s3_client(inner: S3Store) -> tuple[Any, str]:
    """A boto3 client (moto's dependency) for what obstore does not expose: the bucket's
    multipart uploads. Signed with the store's own keys: the RADOS Gateway wants them."""
    import boto3

    c = inner.config
    client = boto3.client(
        "s3",
        endpoint_url=c["endpoint"],
        aws_access_key_id=c.get("access_key_id"),
        aws_secret_access_key=c.get("secret_access_key"),
        region_name=c.get("region") or "us-east-1",
    )
    return client, c["bucket"]


def _multipart_uploads(inner: S3Store) -> list[dict[str, Any]]:
    client, bucket = _s3_client(inner)
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def hidden_uploads(inner: Any) -> list[str]:
    """The keys of uploads begun and not ended that no listing shows: a local folder's
    staging files (`<key>#<n>`, named by their key) and an S3 bucket's incomplete multipart
    uploads (ListMultipartUploads); none in memory."""
    if isinstance(inner, LocalStore):
        root = Path(str(inner.prefix))
        return sorted(
            str(f.relative_to(root)).rsplit("#", 1)[0]
            for f in root.rglob("*#*")
            if f.is_file() and f.name.rsplit("#", 1)[1].isdigit()
        )
    if isinstance(inner, S3Store):
        return sorted(u["Key"] for u in _multipart_uploads(inner))
    return []


def abort_hidden_upload(inner: S3Store, key: str) -> None:
    """Aborts the incomplete multipart uploads of `key`, as a bucket's lifecycle rule
    (AbortIncompleteMultipartUpload) does once they are old enough."""
    client, bucket = _s3_client(inner)
    for u in _multipart_uploads(inner):
        if u["Key"] == key:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=u["UploadId"])


def run_child(script: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Runs `script` in a new interpreter (its own process, so its memory is its own) from
    the repository's root, where it can import `tests.support`; returns the JSON object its
    last line of output printed."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB (VmHWM, Linux). Not `ru_maxrss`: the
    kernel starts a child's `ru_maxrss` at the peak of the process it was forked from (exec
    keeps the old memory's high-water mark), so a child of a test runner that once held
    400 MB reports at least that, whatever it used itself."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def shared_store(kind: str, folder: Path) -> tuple[Any, str, str]:
    """A store a child process can open too (`reopen_store`): `folder` as a local store, or a
    new bucket on the S3 server. Returns (store, where, bucket)."""
    if kind == "local":
        return LocalStore(folder), str(folder), "-"
    server = S3Server.get()
    bucket = server.new_bucket()
    return server.store(bucket), server.endpoint, bucket


def reopen_store(kind: str, where: str, bucket: str) -> Any:
    """In a child process, the store `shared_store` made."""
    return LocalStore(where) if kind == "local" else local_s3_store(where, bucket)
