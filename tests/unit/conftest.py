"""Fixtures shared by the unit tests (pytest loads this file; never import it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def dashboard() -> Iterator[tuple[str, dict[str, Any]]]:
    """A Ray dashboard double on loopback: `(url, documents)`, JSON by path ("" -> 404).

    A test sets `documents["/api/serve/applications"] = {...}` (paths without the
    trailing slash); any other path answers 404.
    """
    documents: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            path = urlsplit(self.path).path.rstrip("/")
            body = json.dumps(documents.get(path, {})).encode()
            self.send_response(200 if path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", documents
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
