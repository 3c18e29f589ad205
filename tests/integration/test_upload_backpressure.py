"""Uploads slower than the SST being written keep memory bounded: an SST's writer is asked
for its next piece only once fewer than two parts are in flight, so however slow the store is,
a few parts are held, not the SST.

The store here is the S3 server behind a proxy that holds each part as long as the writer
could run ahead of it: part n is answered only once the writer has been asked for piece
n + 2 (the most the bound lets it make before part n is done) or has finished. The writer's
pieces are counted while alive (sent or not), at each request for the next one: a writer that
ran ahead of its uploads would be asked for pieces while earlier ones still wait at the proxy
(with twelve parts allowed in flight instead of two, the count went up to 11). The bounds are
counts, not times."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from slatedb_py import _native
from slatedb_py.clock import SystemClock
from slatedb_py.format import encode_sst
from slatedb_py.paths import DbPaths
from slatedb_py.sst import Piece, store_ssts
from slatedb_py.store import Store
from tests.support import S3Server, local_s3_store

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part
PIECES = 12
# The store's two parts in flight. The piece `store_ssts`'s loop still names is one of them,
# and a part's buffer is let go before the store counts the part done.
MAX_ALIVE = 2
# A generous stop for a held part, so a store that waits for its parts one by one (a
# bound of one in flight, which the proxy's rule would otherwise deadlock) fails the test
# instead of hanging it; never reached with the bound of two.
PATIENCE_S = 60.0


class HoldingProxy:
    """Forwards requests to the S3 server, holding each part (a PUT with `partNumber`) until
    `asked` reaches its number + 2 or `finished` is set."""

    def __init__(self, upstream: str) -> None:
        self.target = urllib.parse.urlsplit(upstream).netloc
        self.cond = threading.Condition()
        self.asked = 0
        self.finished = False
        self.timed_out = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if self.command == "PUT" and "partNumber" in query:
                    proxy.hold(int(query["partNumber"][0]))
                conn = http.client.HTTPConnection(proxy.target, timeout=60)
                conn.request(self.command, self.path, body, dict(self.headers))
                reply = conn.getresponse()
                data = reply.read()
                conn.close()
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, part: int) -> None:
        with self.cond:
            released = self.cond.wait_for(
                lambda: self.finished or self.asked >= part + 2, timeout=PATIENCE_S
            )
            self.timed_out |= not released

    def ask(self, n: int) -> None:
        with self.cond:
            self.asked = n
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def close(self) -> None:
        self.finish()
        self.server.shutdown()
        self.server.server_close()


class Tracked(bytearray):
    """A piece whose life is watched (a bytearray subclass takes weak references)."""


@pytest.fixture
def proxy() -> Iterator[HoldingProxy]:
    p = HoldingProxy(S3Server.get().endpoint)
    yield p
    p.close()


def test_a_slow_store_holds_the_writer_back_to_a_few_parts(proxy: HoldingProxy) -> None:
    store = Store(local_s3_store(proxy.endpoint, S3Server.get().new_bucket()), part_size=PART)
    paths = DbPaths.of("db")
    tail = encode_sst([(b"k", b"v", 1)])  # the last piece: a small SST, for its metadata
    alive = [0]
    seen: list[int] = []

    def died() -> None:
        alive[0] -= 1

    def pieces() -> Iterator[Piece]:
        for n in range(1, PIECES + 1):
            seen.append(alive[0])  # pieces made before this one and not yet let go
            proxy.ask(n)
            piece = Tracked(PART)
            piece[::4096] = bytes([n]) * len(piece[::4096])
            alive[0] += 1
            weakref.finalize(piece, died)
            yield piece, None
            del piece  # the generator's own reference: only the upload keeps it now
        proxy.finish()
        yield tail, _native.decode_sst(tail, None)

    [view] = store_ssts(store, paths, pieces(), SystemClock())
    assert not proxy.timed_out
    assert len(seen) == PIECES and max(seen) <= MAX_ALIVE, seen
    # Part 1 is held until piece 3 is asked for: both earlier pieces were alive then, so
    # the count sees parts held by the upload (obstore sends the buffers as they are).
    assert seen[2] == 2, seen
    assert alive[0] == 0
    data = store.get(paths.compacted(view.id))
    assert data is not None and len(data) == PIECES * PART + len(tail)
    assert data[-len(tail) :] == tail and data[PART] == 2
