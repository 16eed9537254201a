"""How requests are sent: method, body, expected status codes and headers from `secrets`.

Parsing and validation only (no request is sent): every mistake names the key and what
to do, and no error message or description ever shows a secret's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.errors import ConfigurationError
from chaosraysvc.traffic.http import Request, content_type
from chaosraysvc.traffic.log import run_header, run_line
from chaosraysvc.traffic.resolve import build_settings
from chaosraysvc.traffic.settings import OPTION_NAMES, parse_options, parse_secrets

URL = "http://127.0.0.1:8000"
TOKEN = "tok-3f9a1c77e2"
KEY = "key-b81d55"


def settings(tmp_path: Path, secrets: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("url", URL)
    return build_settings(secrets=secrets, log_path=str(tmp_path / "t.jsonl"), **kwargs)


def test_the_new_knobs_are_declared_once_with_the_others() -> None:
    assert {"method", "expected_status"} <= set(OPTION_NAMES)
    defaults = parse_options({})
    assert defaults.method == "POST" and defaults.expected_status == ()
    assert defaults.body == '["PEAR", 12]' and defaults.expected == "12"


@pytest.mark.parametrize(
    "raw, codes",
    [
        ("", ()),
        ([], ()),
        (201, (201,)),
        ([200, 201], (200, 201)),
        (["200", " 204 "], (200, 204)),
        ("200,201", (200, 201)),
        ("200, 201 202", (200, 201, 202)),
        ([401, 401], (401,)),
    ],
)
def test_expected_status_takes_a_list_a_number_or_comma_separated_text(
    raw: Any, codes: tuple[int, ...]
) -> None:
    assert parse_options({"expected_status": raw}).expected_status == codes


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "PUT"}, "traffic `method` 'PUT' is not one of POST, GET"),
        ({"method": 1}, "traffic `method` 1 is not one of POST, GET"),
        ({"method": "GET", "body": "x"}, "`body` is not sent with method GET: remove `body`"),
        ({"expected_status": "2xx"}, "`expected_status` item '2xx' is not an HTTP status code"),
        ({"expected_status": [200, 600]}, "item 600 is not an HTTP status code"),
        ({"expected_status": [True]}, "item True is not an HTTP status code"),
        ({"expected_status": [200.5]}, "item 200.5 is not an HTTP status code"),
        ({"expected_status": {"ok": 200}}, "`expected_status` {'ok': 200} is not a list"),
    ],
)
def test_bad_method_or_status_list_names_the_argument_and_what_to_do(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_options(kwargs)
    assert message in str(err.value)
    if "expected_status" in kwargs:
        assert 'such as [200, 201] or "200,201"' in str(err.value)


def test_get_sends_no_body_and_accepts_any_answer_unless_told() -> None:
    get = parse_options({"method": "get"})
    assert (get.method, get.body, get.expected) == ("GET", "", "")
    told = parse_options({"method": "GET", "expected": {"ok": True}, "body": ""})
    assert told.expected == '{"ok": true}' and told.body == ""
    assert parse_options({"body": ""}).body == ""  # POST without a body


def test_the_body_type_follows_the_body(tmp_path: Path) -> None:
    assert content_type('["PEAR", 12]') == "application/json"
    assert content_type("hello") == "text/plain; charset=utf-8"

    def headers(**kwargs: Any) -> dict[str, str]:
        s = settings(tmp_path, **kwargs)
        return Request.to(s.endpoints[0], s).headers

    assert headers() == {"Content-Type": "application/json"}
    assert headers(body="hello") == {"Content-Type": "text/plain; charset=utf-8"}
    assert headers(method="GET") == {}
    assert headers(body="") == {}
    # a header of the secrets replaces the one of the same name, whatever its case
    own_type = {"traffic": {"headers": {"content-type": "application/x-ndjson"}}}
    assert headers(secrets=own_type) == {"content-type": "application/x-ndjson"}


SCOPED = {"traffic": {"authorization_token": TOKEN, "headers": {"X-Api-Key": KEY}}}


@pytest.mark.parametrize(
    "secrets",
    [
        SCOPED,  # what a control gets: every scope
        {**SCOPED, "kubernetes": {"KUBERNETES_CONTEXT": "kind"}},
        # what an action declaring "secrets": ["traffic"] gets: the scope's keys, merged
        {"authorization_token": TOKEN, "headers": {"X-Api-Key": KEY}, "KUBERNETES_HOST": "h"},
    ],
)
def test_secrets_give_headers_whose_values_are_never_described(
    secrets: dict[str, Any], tmp_path: Path
) -> None:
    s = settings(tmp_path, secrets=secrets)
    assert dict(s.headers) == {"X-Api-Key": KEY, "Authorization": f"Bearer {TOKEN}"}
    request = Request.to(s.endpoints[0], s)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Api-Key"] == KEY
    described = s.describe()
    assert described["secret_headers"] == ["X-Api-Key", "Authorization"]
    header = run_line(run_header(1.0, described))
    assert json.loads(header)["secret_headers"] == ["X-Api-Key", "Authorization"]
    for text in (repr(s), str(described), header, repr(request)):
        assert TOKEN not in text and KEY not in text


def test_no_secrets_no_headers(tmp_path: Path) -> None:
    for secrets in (None, {}, {"kubernetes": {"KUBERNETES_CONTEXT": "kind"}}):
        assert parse_secrets(secrets) == ()
    assert settings(tmp_path).describe()["secret_headers"] == []


@pytest.mark.parametrize(
    "secrets, message",
    [
        (
            {"traffic": {"headers": "X-Api-Key: " + KEY}},
            "secrets 'traffic'.headers must be a mapping of header name to value, got str: "
            "write it as {",
        ),
        (
            {"traffic": {"headers": [KEY]}},
            "secrets 'traffic'.headers must be a mapping of header name to value, got list",
        ),
        ({"traffic": "Bearer " + TOKEN}, "secrets 'traffic' must be a mapping with"),
        ({"traffic": {"token": TOKEN}}, "unknown key(s) 'token' in secrets 'traffic': use"),
        (
            {"traffic": {"authorization_token": "Bearer " + TOKEN}},
            "'traffic'.authorization_token holds a space: give the token alone",
        ),
        ({"traffic": {"authorization_token": ""}}, "'traffic'.authorization_token is empty"),
        (
            {"traffic": {"authorization_token": ["x", TOKEN]}},
            "'traffic'.authorization_token is a list: give a non-empty string",
        ),
        (
            {"traffic": {"authorization_token": TOKEN + "\n"}},
            "'traffic'.authorization_token holds a line break",
        ),
        (
            {"traffic": {"headers": {"X-Api-Key": KEY + "\r\nX-Evil: 1"}}},
            "'traffic'.headers['X-Api-Key'] holds a line break",
        ),
        ({"traffic": {"headers": {"X Api": KEY}}}, "invalid header name 'X Api'"),
        (
            {"traffic": {"authorization_token": TOKEN, "headers": {"authorization": KEY}}},
            "set the header 'authorization' twice",
        ),
    ],
)
def test_bad_secrets_name_the_key_and_what_to_do_never_the_value(
    secrets: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as err:
        settings(tmp_path, secrets=secrets)
    text = str(err.value)
    assert message in text
    assert TOKEN not in text and KEY not in text


def test_url_credentials_and_a_secret_token_are_refused_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="credentials given twice") as err:
        settings(
            tmp_path,
            url="http://user:pw-7d1@127.0.0.1:8000",
            secrets={"traffic": {"authorization_token": TOKEN}},
        )
    assert TOKEN not in str(err.value) and "pw-7d1" not in str(err.value)
    # other secret headers go with URL credentials
    s = settings(
        tmp_path, url="http://user:pw@127.0.0.1:8000", secrets={"traffic": {"headers": {"A": KEY}}}
    )
    assert set(Request.to(s.endpoints[0], s).headers) == {"Content-Type", "Authorization", "A"}


def test_the_control_stops_the_run_on_bad_secrets_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from chaoslib.exceptions import InterruptExecution

    from chaosraysvc.controls import traffic as control
    from chaosraysvc.traffic import registry

    monkeypatch.setattr(registry, "_engine", None)
    log = tmp_path / "t.jsonl"
    secrets = {"traffic": {"authorization_token": TOKEN, "headers": "X-Api-Key: " + KEY}}
    with pytest.raises(InterruptExecution, match="secrets 'traffic'.headers must be a mapping"):
        control.before_experiment_control({}, secrets=secrets, url=URL, log_path=str(log))
    assert registry.last_engine() is None and not log.exists()
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)
