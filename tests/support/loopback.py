"""A real HTTP server on loopback, in a thread: the one the test suites start.

    class Hello(QuietHandler):
        def do_GET(self) -> None:
            self.answer(200, {"hello": "world"})  # JSON; bytes and str are sent as they are

    with LoopbackServer(Hello) as server:
        requests.get(server.url)

`documents_handler(documents)` is the Ray dashboard double: JSON by path, 404 elsewhere.
(`tests/support/dashboard_head.py` is a script of its own, run inside a network namespace.)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and can `answer` and read a request's `body`."""

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        pass

    def body(self) -> bytes:
        """Return the request's body (by its Content-Length)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, body: Any = b"", content_type: str = "") -> None:
        """Send `status` and `body`: bytes or str as they are, anything else as JSON."""
        if not isinstance(body, bytes | str):
            body, content_type = json.dumps(body), content_type or "application/json"
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """`handler` served on 127.0.0.1:`port` (a free one by default) until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def documents_handler(documents: dict[str, Any]) -> type[QuietHandler]:
    """Return a handler answering GET `path` with `documents[path]` as JSON, 404 otherwise.

    Paths are matched without the query and the trailing slash; a test may change
    `documents` while the server runs.
    """

    class Documents(QuietHandler):
        def do_GET(self) -> None:  # http.server's name
            path = urlsplit(self.path).path.rstrip("/")
            found = path in documents
            self.answer(200 if found else 404, documents[path] if found else {})

    return Documents
