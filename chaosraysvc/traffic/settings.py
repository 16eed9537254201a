"""Traffic options, declared once: what to send, how fast, and where the log goes.

`TrafficOptions` is the one declaration of the knobs shared by the `start_traffic`
action and the `chaosraysvc.controls.traffic` control (names, defaults, parsed types).
`parse_options` validates raw arguments into it without any I/O, so the control can
check an experiment before it runs; every mistake raises `ConfigurationError` naming
the argument and what to do. `chaosraysvc.traffic.resolve` then fills in what needs
the target or the command line (URLs, log path) and returns `TrafficSettings`.

What must not be written anywhere (a bearer token, API-key headers) comes from the
experiment's `secrets`, never from the knobs; `SECRET_KEYS` declares them and
`parse_secrets` validates them (see `parse_secrets` for the shape)::

    "secrets": {
        "traffic": {
            "authorization_token": {"type": "env", "key": "SERVE_TOKEN"},
            "headers": {"X-Api-Key": {"type": "env", "key": "SERVE_API_KEY"}}
        }
    }

Their values are sent on every request and never recorded: the journal and the traffic
log name the headers sent (`secret_headers`), never their values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaosraysvc.config import number
from chaosraysvc.errors import ConfigurationError

REQUEST_ID_HEADER = "X-Request-Id"  # each request's id; what Ray Serve logs as its request id

__all__ = [
    "DEFAULT_BODY",
    "ENDPOINT_MODES",
    "METHODS",
    "MODES",
    "OPTION_NAMES",
    "PRESETS",
    "REQUEST_ID_HEADER",
    "SECRETS_SCOPE",
    "SECRET_KEYS",
    "SERVE_ENDPOINTS",
    "TargetEndpoint",
    "TrafficOptions",
    "TrafficSettings",
    "parse_options",
    "parse_secrets",
    "strip_userinfo",
]

MODES = ("sequential", "rate")
ENDPOINT_MODES = ("round_robin", "per_endpoint")
METHODS = ("POST", "GET")
DEFAULT_BODY = '["PEAR", 12]'
SERVE_ENDPOINTS = "serve_endpoints"
# The experiment's `secrets` scope the traffic reads, and its keys (see `parse_secrets`).
SECRETS_SCOPE = "traffic"
SECRET_KEYS = ("authorization_token", "headers")
PRESET_VARIABLE = "RAYSVC_TRAFFIC_PRESET"
# Named sets of knobs; an argument given explicitly wins over its preset's value.
# "kuberay-ha" is the load of KubeRay's own HA e2e test (rayservice_ha_test.go with
# locust-cluster.const-rate.yaml): 10 Locust users, each waiting 1 s between its requests
# on its own keep-alive connection, no client timeout, for 150 s; the test asserts zero
# failures and more than zero requests. Here: 10 req/s on a fixed timeline with at most
# 10 requests (so at most 10 keep-alive connections) in flight. The engine needs a
# timeout, so "no client timeout" is the closest it has: a request may take 150 s, the
# whole of upstream's run, so no request KubeRay's test would have counted is cut short.
PRESETS: dict[str, dict[str, Any]] = {
    "kuberay-ha": {"mode": "rate", "rate": 10.0, "concurrency": 10, "timeout": 150.0},
}


@dataclass(frozen=True)
class TargetEndpoint:
    """One base URL the engine sends to, with the label recorded as `ep`.

    `auth` holds credentials found in the URL's userinfo; they are sent as HTTP basic
    auth and never logged (`url` has them stripped).
    """

    url: str
    label: str | None = None
    auth: tuple[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TrafficOptions:
    """Every traffic knob with its default, as parsed by `parse_options`.

    `url` is the serve base URL ("" asks the target); `endpoints` replaces it with
    labelled base URLs, or is "serve_endpoints" for the target's ready endpoints.
    `method` is "POST" or "GET". `body` is sent as is with POST ("" sends none; JSON
    text as application/json, other text as text/plain); GET sends no body and, unless
    `expected` is given, accepts any answer. `expected` is the answer ("" accepts any);
    `expected_status` the accepted status codes (() accepts any 2xx): another status is
    a failed request, `http_<code>` in the log. `mode`
    "sequential" keeps one request in flight, "rate" starts `rate` requests per second
    with at most `concurrency` in flight; `timeout` is per request, in seconds.
    `log_path` "" puts the log beside the journal. `max_failures` >= 0 aborts the
    experiment past that many failures. `failure_pause` is the sequential pause after
    a failed request, so a refused port does not spin. `preset` names a set of these
    knobs in `PRESETS` ("kuberay-ha": KubeRay's HA e2e load); arguments given explicitly
    win over the preset's values.
    """

    url: str = ""
    path: str = "/fruit/"
    method: str = "POST"
    body: str = DEFAULT_BODY
    expected: str = "12"
    expected_status: tuple[int, ...] = ()
    mode: str = "sequential"
    rate: float = 0.0
    concurrency: int = 1
    timeout: float = 2.0
    log_path: str = ""
    max_failures: int = -1
    endpoints: tuple[TargetEndpoint, ...] | str = ()
    endpoint_mode: str = "round_robin"
    failure_pause: float = 0.005
    preset: str = ""


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TrafficOptions))


@dataclass(frozen=True)
class TrafficSettings:
    """Options resolved for one run: the endpoints, the log file and the secret headers.

    `headers` (from the experiment's `secrets`, see `parse_secrets`) are sent on every
    request; only their names are ever described or logged.
    """

    options: TrafficOptions
    endpoints: tuple[TargetEndpoint, ...]
    log_path: Path
    log_is_default: bool = False
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def url(self) -> str:
        """Return the base URL when there is one endpoint, else ""."""
        return self.endpoints[0].url if len(self.endpoints) == 1 else ""

    @property
    def labels(self) -> list[str]:
        """Return the endpoint labels recorded in the log header (empty for one URL)."""
        return [e.label for e in self.endpoints if e.label is not None]

    def describe(self) -> dict[str, Any]:
        """Return the settings as plain JSON (no credentials) for journals and logs."""
        o = self.options
        labels = self.labels
        return {
            "url": self.url,
            "path": o.path,
            "mode": o.mode,
            "rate": o.rate,
            "concurrency": o.concurrency,
            "timeout_s": o.timeout,
            "endpoints": labels,
            "endpoint_urls": [e.url for e in self.endpoints] if labels else [],
            "endpoint_mode": o.endpoint_mode,
            "method": o.method,
            "expected": o.expected,
            "expected_status": list(o.expected_status),
            "secret_headers": [name for name, _ in self.headers],
            "request_id_header": None
            if any(name.lower() == REQUEST_ID_HEADER.lower() for name, _ in self.headers)
            else REQUEST_ID_HEADER,
            "max_failures": o.max_failures,
            "preset": o.preset,
            "log": str(self.log_path),
        }


def strip_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """Return `url` without user:password@ and the credentials that were there."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (parts.username or "", parts.password or "")


def endpoint(raw: Any, position: int = 0, labelled: bool = False) -> TargetEndpoint:
    """Return the `TargetEndpoint` of one `url`/`endpoints` item (see `TrafficOptions`).

    `raw` is a base URL, a "label=url" string or a `{"label", "url"}` mapping; labelled
    endpoints without a label are labelled host:port.
    """
    label: str | None = None
    if isinstance(raw, Mapping):
        url = raw.get("url")
        label = raw.get("label") or raw.get("name")
    elif isinstance(raw, str):
        url = raw
        head, sep, tail = raw.partition("=")
        if labelled and sep and "://" not in head:
            label, url = head.strip(), tail
    else:
        url = None
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"traffic endpoint #{position + 1} ({raw!r}) has no URL: give a base URL such as "
            '"http://127.0.0.1:8000", "label=http://...", or {"label": ..., "url": ...}'
        )
    argument = "endpoints" if labelled else "url"
    clean, auth = strip_userinfo(_check_url(url.strip().rstrip("/"), argument))
    if labelled and not label:
        parts = urlsplit(clean)
        label = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return TargetEndpoint(url=clean, label=str(label) if labelled else None, auth=auth)


def _check_url(url: str, argument: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"traffic `{argument}` {strip_userinfo(url)[0]!r} is not an http(s) URL: "
            "give a base URL such as http://127.0.0.1:8000"
        )
    return url


def _number(value: Any, argument: str, integer: bool = False) -> float:
    return number(value, f"traffic `{argument}`", integer=integer)


def _text(value: Any, argument: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"traffic `{argument}` must be text or JSON-serializable, got {value!r}"
        ) from exc


def _method(raw: Any) -> str:
    method = raw.strip().upper() if isinstance(raw, str) else raw
    if method not in METHODS:
        raise ConfigurationError(
            f"traffic `method` {raw!r} is not one of {', '.join(METHODS)}: "
            "send POST (with `body`) or GET (without)"
        )
    return str(method)


_STATUS_HELP = 'give HTTP status codes (100-599) as a list such as [200, 201] or "200,201"'


def _statuses(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, str):
        items: Sequence[Any] = [item for item in raw.replace(",", " ").split() if item]
    elif isinstance(raw, int) and not isinstance(raw, bool):
        items = [raw]
    elif isinstance(raw, Sequence) and not isinstance(raw, bytes):
        items = raw
    else:
        raise ConfigurationError(f"traffic `expected_status` {raw!r} is not a list: {_STATUS_HELP}")
    codes: list[int] = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        code = int(text) if isinstance(text, str) and text.isascii() and text.isdigit() else text
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigurationError(
                f"traffic `expected_status` item {item!r} is not an HTTP status code: "
                + _STATUS_HELP
            )
        if code not in codes:
            codes.append(code)
    return tuple(codes)


def _endpoints(raw: Any) -> tuple[TargetEndpoint, ...] | str:
    if isinstance(raw, str):
        if raw and raw != SERVE_ENDPOINTS:
            raise ConfigurationError(
                f"traffic `endpoints` {raw!r} must be a list of base URLs "
                f"or the string {SERVE_ENDPOINTS!r}"
            )
        return raw
    if isinstance(raw, bytes | Mapping) or not isinstance(raw, Sequence):
        raise ConfigurationError(f"traffic `endpoints` must be a list of base URLs, got {raw!r}")
    parsed = tuple(
        item if isinstance(item, TargetEndpoint) else endpoint(item, i, labelled=True)
        for i, item in enumerate(raw)
    )
    labels = [e.label for e in parsed]
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"traffic `endpoints` labels must be unique, got {labels}")
    return parsed


def _preset(arguments: Mapping[str, Any], default: str) -> tuple[str, dict[str, Any]]:
    raw = arguments.get("preset")
    name = raw if raw not in (None, "") else default
    if not isinstance(name, str):
        raise ConfigurationError(f"traffic `preset` must be a name, got {name!r}")
    name = name.strip()
    if name and name not in PRESETS:
        raise ConfigurationError(
            f"traffic `preset` {name!r} (argument or ${PRESET_VARIABLE}) is not one of "
            f"{', '.join(PRESETS)}: leave it empty to set the knobs one by one"
        )
    return name, dict(PRESETS.get(name, {}))


def parse_options(arguments: Mapping[str, Any], preset: str = "") -> TrafficOptions:
    """Validate raw traffic arguments (missing ones take their default); no I/O.

    `preset` names the preset used when the arguments name none (the configuration's
    `traffic_preset` or $RAYSVC_TRAFFIC_PRESET, read by the caller); its knobs fill in
    the arguments not given. Raises `ConfigurationError` naming the argument for an
    unknown name or any invalid value. Credentials in `url` are kept out of `url`
    (see `TargetEndpoint`).
    """
    unknown = sorted(set(arguments) - set(OPTION_NAMES))
    if unknown:
        raise ConfigurationError(
            f"unknown traffic argument(s) {', '.join(unknown)}: use {', '.join(OPTION_NAMES)}"
        )
    preset_name, preset_knobs = _preset(arguments, preset)
    arguments = {**preset_knobs, **{k: v for k, v in arguments.items() if k != "preset"}}
    raw = {f.name: arguments.get(f.name, f.default) for f in fields(TrafficOptions)}
    mode, endpoint_mode, path = raw["mode"], raw["endpoint_mode"], raw["path"]
    if mode not in MODES:
        raise ConfigurationError(f"traffic `mode` {mode!r} is not one of {', '.join(MODES)}")
    if endpoint_mode not in ENDPOINT_MODES:
        raise ConfigurationError(
            f"traffic `endpoint_mode` {endpoint_mode!r} is not one of {', '.join(ENDPOINT_MODES)}"
        )
    rate = _number(raw["rate"], "rate")
    concurrency = int(_number(raw["concurrency"], "concurrency", integer=True))
    timeout = _number(raw["timeout"], "timeout")
    max_failures = int(_number(raw["max_failures"], "max_failures", integer=True))
    pause = _number(raw["failure_pause"], "failure_pause")
    if mode == "rate" and rate <= 0:
        raise ConfigurationError(
            f"traffic mode 'rate' needs `rate` > 0 requests per second, got {raw['rate']!r}"
        )
    if mode == "sequential" and rate != 0:
        raise ConfigurationError(
            f"traffic `rate` {raw['rate']!r} is only used in mode 'rate': "
            "set `mode` to 'rate' or leave `rate` at 0"
        )
    if concurrency < 1:
        raise ConfigurationError(f"traffic `concurrency` must be >= 1, got {raw['concurrency']!r}")
    if mode == "sequential" and concurrency != 1:
        raise ConfigurationError(
            f"traffic mode 'sequential' keeps one request in flight, `concurrency` "
            f"{raw['concurrency']!r} needs mode 'rate' (with a `rate`)"
        )
    if timeout <= 0:
        raise ConfigurationError(f"traffic `timeout` must be > 0 seconds, got {raw['timeout']!r}")
    if max_failures < -1:
        raise ConfigurationError(
            f"traffic `max_failures` must be -1 (no limit) or >= 0, got {raw['max_failures']!r}"
        )
    if pause < 0:
        raise ConfigurationError(
            f"traffic `failure_pause` must be >= 0, got {raw['failure_pause']!r}"
        )
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"traffic `path` must start with '/', got {path!r}")
    method = _method(raw["method"])
    body, expected = _text(raw["body"], "body"), _text(raw["expected"], "expected").strip()
    if method == "GET":
        if arguments.get("body") not in (None, ""):
            raise ConfigurationError(
                "traffic `body` is not sent with method GET: remove `body` or set `method` POST"
            )
        body = ""
        if "expected" not in arguments:
            expected = ""  # the default answer is the fruit app's POST
    endpoints = _endpoints(raw["endpoints"])
    url = raw["url"]
    if not isinstance(url, str):
        raise ConfigurationError(f"traffic `url` must be a string, got {url!r}")
    if url.strip() and not endpoints:
        # the URL's credentials travel in its endpoint; `url` itself never holds them
        endpoints = (endpoint(url.strip()),)
        url = endpoints[0].url
    log_path = raw["log_path"]
    if not isinstance(log_path, str):
        raise ConfigurationError(f"traffic `log_path` must be a file path, got {log_path!r}")
    return TrafficOptions(
        url=strip_userinfo(url.strip())[0],
        path=path,
        method=method,
        body=body,
        expected=expected,
        expected_status=_statuses(raw["expected_status"]),
        mode=mode,
        rate=rate,
        concurrency=concurrency,
        timeout=timeout,
        log_path=log_path,
        max_failures=max_failures,
        endpoints=endpoints,
        endpoint_mode=endpoint_mode,
        failure_pause=pause,
        preset=preset_name,
    )


# RFC 9110 token characters: a header name.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _secret_value(value: Any, where: str) -> str:
    """Return a secret as header text; errors name `where`, never the value."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) else f"a {type(value).__name__}"
        raise ConfigurationError(
            f"secrets {where} is {kind}: give a non-empty string, e.g. "
            '{"type": "env", "key": "MY_TOKEN"} to read it from the environment'
        )
    if any(c in value for c in "\r\n\0"):
        raise ConfigurationError(
            f"secrets {where} holds a line break or NUL, which a header cannot carry: "
            "remove it (e.g. the newline at the end of a file read into the variable)"
        )
    return value.strip()


def parse_secrets(secrets: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """Return the request headers the experiment's `secrets` give the traffic; no I/O.

    Reads the `SECRETS_SCOPE` ("traffic") entry of `secrets` as a control gets them
    (`{"traffic": {...}}`), or the keys themselves as an action declaring
    `"secrets": ["traffic"]` gets them. `authorization_token` is sent as
    `Authorization: Bearer <token>` (the token alone); `headers` is a mapping of header
    name to value, sent as is. Returns (name, value) pairs, or () when there are none.
    Raises `ConfigurationError` naming the key and what to do, never a secret's value.
    """
    if not secrets:
        return ()
    if not isinstance(secrets, Mapping):
        raise ConfigurationError(
            f"traffic secrets must be a mapping, got {type(secrets).__name__}: declare them "
            f'as "secrets": {{"{SECRETS_SCOPE}": {{...}}}} in the experiment'
        )
    scoped = secrets.get(SECRETS_SCOPE)
    if scoped is None:
        scoped = {k: v for k, v in secrets.items() if k in SECRET_KEYS}  # an action's view
    elif not isinstance(scoped, Mapping):
        raise ConfigurationError(
            f"secrets {SECRETS_SCOPE!r} must be a mapping with {' and/or '.join(SECRET_KEYS)}, "
            f"got {type(scoped).__name__}"
        )
    else:
        unknown = sorted(set(scoped) - set(SECRET_KEYS))
        if unknown:
            raise ConfigurationError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in secrets {SECRETS_SCOPE!r}: "
                f"use {', '.join(SECRET_KEYS)}"
            )
    headers: list[tuple[str, str]] = []
    raw_headers = scoped.get("headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, Mapping):
            raise ConfigurationError(
                f"secrets {SECRETS_SCOPE!r}.headers must be a mapping of header name to value, "
                f"got {type(raw_headers).__name__}: write it as "
                '{"X-Api-Key": {"type": "env", "key": "SERVE_API_KEY"}}'
            )
        for name, value in raw_headers.items():
            if not isinstance(name, str) or not name or not set(name) <= _TCHAR:
                raise ConfigurationError(
                    f"secrets {SECRETS_SCOPE!r}.headers has an invalid header name {name!r}: "
                    "use letters, digits and - (e.g. X-Api-Key)"
                )
            where = f"{SECRETS_SCOPE!r}.headers[{name!r}]"
            headers.append((name, _secret_value(value, where)))
    token = scoped.get("authorization_token")
    if token is not None:
        where = f"{SECRETS_SCOPE!r}.authorization_token"
        value = _secret_value(token, where)
        if any(c.isspace() for c in value):
            raise ConfigurationError(
                f"secrets {where} holds a space: give the token alone, "
                "without 'Bearer ' (it is sent as 'Authorization: Bearer <token>')"
            )
        headers.append(("Authorization", f"Bearer {value}"))
    names = [name.lower() for name, _ in headers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(
            f"secrets {SECRETS_SCOPE!r} set the header {twice[0]!r} twice (header names "
            "ignore case; authorization_token sets Authorization): keep one"
        )
    return tuple(headers)
