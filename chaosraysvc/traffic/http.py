"""One traffic request over HTTP: send it, check the answer, classify the failure.

`Sender` holds the aiohttp session (a keep-alive connection pool) of the engine's
loop and sends `<method> <url><path>` with the configured body and headers; `send`
returns what the traffic log records for the request: a status outside the expected
ones (any 2xx by default) is the failure `http_<code>`. Every request carries an
`X-Request-Id` of its own (`<prefix>-<n>`, the prefix random per engine) unless the
experiment's secrets set that header: Ray Serve logs it as the request id in its proxy
and replica logs, so a failed request can be found there. `classify_error` names the
error classes listed in `chaosraysvc.traffic.log`. Header values (credentials from the
URL or the experiment's secrets) stay in `Request.headers`, which is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from chaosraysvc.traffic.settings import (
    REQUEST_ID_HEADER,
    TargetEndpoint,
    TrafficOptions,
    TrafficSettings,
)

__all__ = ["Request", "Sender", "classify_error"]

_DISCONNECT_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN}


def classify_error(exc: BaseException) -> str:
    """Return the traffic log error class of an exception raised by a request."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = getattr(exc, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
            return "connect_refused"
        return "connect_error"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "disconnected"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "disconnected"
    if isinstance(exc, OSError) and exc.errno in _DISCONNECT_ERRNOS:
        return "disconnected"
    if isinstance(exc, aiohttp.ServerConnectionError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientOSError):
        # An established connection failed at the OS level without an errno (e.g. aiohttp's
        # "Cannot write to closing transport" when the server's process died).
        return "disconnected"
    return f"other:{type(exc).__name__}"


def content_type(body: str) -> str:
    """Return the Content-Type of `body`: JSON when it parses as JSON, else plain text."""
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


@dataclass(frozen=True)
class Request:
    """Where one endpoint's requests go: full URL, label (as JSON) and headers."""

    url: URL
    label_json: str
    headers: dict[str, str] = field(repr=False)
    own_request_id: bool = False  # the secrets set X-Request-Id: send theirs, record none

    @classmethod
    def to(cls, endpoint: TargetEndpoint, settings: TrafficSettings) -> Request:
        """Return the request to `endpoint` with the settings' path, body type and headers.

        The endpoint's URL credentials go as basic auth; the secret headers are added
        last and replace a header of the same name, whatever its case (`resolve_settings`
        refuses URL credentials with a secret Authorization).
        """
        body = settings.options.body
        headers = {"Content-Type": content_type(body)} if body else {}
        if endpoint.auth is not None:  # from the URL's userinfo, never logged
            user, password = endpoint.auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        for name, value in settings.headers:  # from the experiment's secrets, never logged
            for same in [k for k in headers if k.lower() == name.lower()]:
                del headers[same]  # e.g. a Content-Type of the secrets replaces the body's
            headers[name] = value
        url = URL(endpoint.url + settings.options.path, encoded=False)
        own = any(k.lower() == REQUEST_ID_HEADER.lower() for k in headers)
        return cls(
            url=url, label_json=json.dumps(endpoint.label), headers=headers, own_request_id=own
        )


class Sender:
    """Send requests on the running event loop and judge their answers.

    `open` creates the session (inside the loop) with at most `connections` open
    connections; `close` ends it.
    """

    def __init__(self, options: TrafficOptions) -> None:
        self.timeout = options.timeout
        self._method = options.method
        self._body = options.body.encode() or None
        self._statuses = frozenset(options.expected_status)
        self._expected = options.expected.encode()
        try:
            self._expected_json: Any = json.loads(options.expected) if options.expected else None
            self._expected_is_json = bool(options.expected)
        except ValueError:
            self._expected_json, self._expected_is_json = None, False
        self._session: aiohttp.ClientSession | None = None
        self.request_id_prefix = f"crs-{secrets.token_hex(4)}"
        self._sent = 0

    def open(self, connections: int) -> None:
        """Create the session; call from the event loop's thread."""
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()

    async def send(
        self, request: Request
    ) -> tuple[float, float, int | None, str | None, str | None]:
        """Send one request; return its start (epoch s), latency (ms), status, error class
        and request id.

        The error class is None on success; the status None when no answer came; the
        request id None when the experiment's secrets set the header.
        """
        session = self._session
        assert session is not None, "Sender.open() was not called"
        self._sent += 1
        request_id: str | None = None
        headers = request.headers
        if not request.own_request_id:
            request_id = f"{self.request_id_prefix}-{self._sent}"
            headers = {**headers, REQUEST_ID_HEADER: request_id}
        t = time.time()
        p0 = time.perf_counter()
        code: int | None = None
        err: str | None = None
        try:
            response = await session.request(
                self._method, request.url, data=self._body, headers=headers
            )
            try:
                data = await response.read()
            finally:
                response.release()
            code = response.status
            if not self._status_ok(code):
                err = f"http_{code}"
            elif self._expected and not self._answer_ok(data):
                err = "wrong_answer"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            err = classify_error(exc)
        return t, (time.perf_counter() - p0) * 1000.0, code, err, request_id

    def _status_ok(self, code: int) -> bool:
        return code in self._statuses if self._statuses else 200 <= code <= 299

    def _answer_ok(self, data: bytes) -> bool:
        if data.strip() == self._expected:
            return True
        if not self._expected_is_json:
            return False
        try:
            return bool(json.loads(data) == self._expected_json)
        except ValueError:
            return False
