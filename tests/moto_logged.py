"""moto's S3 server, logging each request before it answers it.

    python -m tests.moto_logged PORT

`moto_server` logs a request's line after the response is sent, from the request's own
thread: under load that line can come after the lines of later requests, and a request
count read from the log up to a marker request can miss it. Here the line is written
(and flushed) before the request is handled, so once a client has its response, the
request is in the log: `tests.support.Requests` counts from it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

_write = threading.Lock()


class _Quiet(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # logged before the request is handled (`logged`), not after


def logged(app: Any) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    def handle(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
        with _write:
            sys.stdout.write(f'"{environ["REQUEST_METHOD"]} {target} HTTP/1.1"\n')
            sys.stdout.flush()
        return app(environ, start_response)  # type: ignore[no-any-return]

    return handle


def main() -> None:
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", int(sys.argv[1]), logged(app), threaded=True, request_handler=_Quiet)


if __name__ == "__main__":
    main()
