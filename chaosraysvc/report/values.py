"""Read journal values defensively, shorten them for display and mask secrets.

Journals are read as they come: any field may be missing or of another type (an
interrupted run, an older chaoslib, a hand-edited file), so every accessor here
returns a neutral value instead of raising. Text meant for display is masked: a key
that looks like a secret ("password", "token", ...) shows "***", and URL credentials
(`https://user:pass@host`) become `https://***@host`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "activity_func",
    "activity_name",
    "activity_results",
    "as_dict",
    "as_list",
    "clip",
    "epoch",
    "mask",
    "number",
    "output_text",
    "short_error",
    "short_value",
    "utc",
]

SHORT = 140
_SECRET_KEY = re.compile(r"pass|secret|token|auth|cred|key|cookie|session", re.IGNORECASE)
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_EXC_PREFIX = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception|Failed|Timeout)): "
)


def as_dict(value: Any) -> dict[str, Any]:
    """Return `value` if it is a dict, else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """Return `value` if it is a list, else []."""
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """Return `value` as a float if it is a number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def epoch(iso: Any) -> float | None:
    """Return the epoch seconds of a journal ISO 8601 time (UTC if naive), else None."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        stamp = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def utc(seconds: float | None) -> str:
    """Return epoch `seconds` as "YYYY-MM-DD HH:MM:SS UTC" ("" for None)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def activity_results(journal: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return the method's and the rollbacks' activity results as (phase, result)."""
    out = [("method", r) for r in as_list(journal.get("run")) if isinstance(r, dict)]
    out += [("rollback", r) for r in as_list(journal.get("rollbacks")) if isinstance(r, dict)]
    return out


def activity_name(result: dict[str, Any]) -> str:
    """Return the name of the activity of a journal result."""
    return str(as_dict(result.get("activity")).get("name") or "(unnamed)")


def activity_func(result: dict[str, Any]) -> str:
    """Return the Python function (or "") a journal result's activity called."""
    return str(as_dict(as_dict(result.get("activity")).get("provider")).get("func") or "")


def mask(value: Any) -> Any:
    """Return `value` with secret-looking keys replaced by "***" and URL credentials cut."""
    if isinstance(value, dict):
        return {str(k): "***" if _SECRET_KEY.search(str(k)) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return _USERINFO.sub(r"\1***@", value)
    return value


def clip(text: str, limit: int = SHORT) -> str:
    """Return `text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_value(value: Any, limit: int = SHORT) -> str:
    """Return a one-line, masked, shortened rendering of an activity output."""
    if value is None:
        return ""
    if isinstance(value, dict):
        if isinstance(value.get("deleted"), dict):
            return _delete_digest(value)
        if "requests" in value and "failures" in value:
            p99 = number(as_dict(value.get("latency_ms")).get("p99"))
            tail = f", p99 {p99:.1f} ms" if p99 is not None else ""
            failing = number(as_dict(value.get("failure_time")).get("seconds"))
            during = f" over {failing:.1f} s" if failing is not None else ""
            counts = f"{_count(value['requests'])} requests, {_count(value['failures'])} failed"
            return f"{counts}{during}{tail}"
    if isinstance(value, str):
        return clip(mask(value), limit)
    try:
        text = json.dumps(mask(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, limit)


def _count(value: Any) -> str:
    return f"{int(value):,}" if number(value) is not None else str(value)


# Probes and actions whose number is a latency in milliseconds.
_MILLISECOND_FUNCS = frozenset({"traffic_latency_ms"})


def _milliseconds(result: dict[str, Any]) -> bool:
    func, name = activity_func(result), activity_name(result)
    return func in _MILLISECOND_FUNCS or func.endswith("_ms") or name.endswith(("-ms", "_ms"))


def output_text(result: dict[str, Any], limit: int = SHORT) -> str:
    """Return a journal result's output for display, with its unit when it has one.

    A latency (`traffic_latency_ms`, or an activity named `*-ms`) reads "38.8 ms", a
    `wait_for_recovery` result "healthy after 0.1 s (4 pods, 2 endpoints)", an `ha_risks`
    list its risk ids; anything else as `short_value`.
    """
    output = result.get("output")
    value = number(output)
    if value is not None and _milliseconds(result):
        return f"{value:.1f} ms"
    func = activity_func(result)
    if func == "wait_for_recovery" and isinstance(output, dict) and "healthy" in output:
        seconds = number(output.get("seconds"))
        text = "healthy" if output.get("healthy") else "NOT healthy"
        if seconds is not None:
            text += f" after {seconds:.1f} s"
        counts = [
            f"{_count(output[k])} {k}" for k in ("pods", "endpoints") if number(output.get(k))
        ]
        return text + (f" ({', '.join(counts)})" if counts else "")
    if func == "ha_risks" and isinstance(output, list):
        risks = [as_dict(r) for r in output]
        if not risks:
            return "no risk"
        ids = ", ".join(f"{r.get('id', '?')} ({r.get('severity', '?')})" for r in risks)
        return clip(mask(f"{len(risks)} risk{'s' if len(risks) > 1 else ''}: {ids}"), limit)
    return short_value(output, limit)


def _delete_digest(output: dict[str, Any]) -> str:
    deleted = as_dict(output.get("deleted"))
    text = f"deleted {deleted.get('role', '?')} pod {deleted.get('name', '?')}"
    if output.get("dry_run"):
        return text + " (dry run)"
    recovery = output.get("recovery")
    if isinstance(recovery, dict):
        seconds = [s for s in as_dict(recovery.get("seconds_to")).values() if number(s)]
        if recovery.get("recovered") and seconds:
            text += f"; recovered in {max(seconds):.1f} s"
        else:
            text += "; not recovered"
    return clip(mask(text))


def short_error(exception: Any) -> str:
    """Return the last meaningful line of a journal `exception` (list or text), shortened.

    Traceback frames and chaining notes are skipped; repeated qualified exception
    names ("chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed:")
    are cut to the innermost short one ("ActivityFailed: ...").
    """
    if isinstance(exception, list):
        text = "".join(str(part) for part in exception)
    elif exception:
        text = str(exception)
    else:
        return ""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.startswith((" ", "\t"))
        and not line.startswith(("Traceback", "The above exception", "During handling"))
    ]
    if not lines:
        return ""
    line = lines[-1]
    names = []
    while (found := _EXC_PREFIX.match(line)) is not None:
        names.append(found.group(1))
        line = line[found.end() :]
    if names:
        line = f"{names[-1]}: {line}"
    return clip(mask(line), 400)
