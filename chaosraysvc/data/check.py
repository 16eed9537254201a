"""Say in one line what stops `chaos run` from reading an experiment, before it runs.

`chaos run` shows a Python traceback for two mistakes a user makes often: an experiment file
that is not valid JSON (or YAML), and an environment variable that a configuration entry
converts (`"env_var_type": "int"`) holding something else (`RAYSVC_EXPECTED_ENDPOINTS=two`).
Both happen in Chaos Toolkit before any chaosraysvc code runs; `chaosraysvc experiments check
FILE` reads the file and converts each value as Chaos Toolkit will (its own
`convert_to_type`), and names the file, the line, the setting and what to do::

    experiments/head-kill.json: $RAYSVC_EXPECTED_ENDPOINTS is 'two', not a whole number
    (configuration 'expected_endpoints', line 48): set a whole number such as 3 (the
    default), or unset it
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from chaoslib import convert_to_type

__all__ = ["check_experiment"]

_EXAMPLES = {"int": "a whole number", "integer": "a whole number"}


def _line_of(text: str, key: str) -> int:
    """Return the 1-based line where `"key"` first appears (0 when it does not)."""
    at = text.find(f'"{key}"')
    if at < 0:
        at = text.find(f"{key}:")
    return text.count("\n", 0, at) + 1 if at >= 0 else 0


def _parse(path: Path, text: str) -> tuple[Any, str]:
    """Return (the document, "") or (None, what is wrong and where)."""
    if path.suffix in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text), ""
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
            problem = getattr(exc, "problem", None) or "not valid YAML"
            return None, f"{where}: {problem}: fix the YAML there"
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno}, column {exc.colno}: {exc.msg}: fix the JSON there"


def _check_configuration(conf: Mapping[str, Any], text: str) -> list[str]:
    problems: list[str] = []
    for key, value in conf.items():
        if not (isinstance(value, Mapping) and value.get("type") == "env"):
            continue
        env, kind = str(value.get("key", "")), value.get("env_var_type")
        where = f"configuration {key!r}, line {_line_of(text, key)}"
        if env not in os.environ and "default" not in value:
            problems.append(f"${env} is not set and has no default ({where}): set it")
            continue
        raw = os.environ.get(env, value.get("default"))
        try:
            convert_to_type(kind, raw)
        except (TypeError, ValueError, AttributeError):
            wanted = _EXAMPLES.get(str(kind), f"a {kind} value")
            if env in os.environ:
                default = value.get("default")
                example = f" such as {default} (the default)" if default is not None else ""
                problems.append(
                    f"${env} is {raw!r}, not {wanted} ({where}): set {wanted}{example}, "
                    "or unset it"
                )
            else:
                problems.append(
                    f"the default of ${env} is {raw!r}, not {wanted} ({where}): fix the "
                    f"default in the experiment, or set ${env}"
                )
    return problems


def check_experiment(path: Path) -> list[str]:
    """Return one line per problem that keeps Chaos Toolkit from loading `path` (none: ok).

    Each line names the file, where in it (line, configuration key, environment variable)
    and what to do.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [f"{path}: cannot be read: {why}"]
    document, error = _parse(path, text)
    if error:
        return [f"{path}: {error}"]
    if not isinstance(document, Mapping):
        return [f"{path}: holds a {type(document).__name__}, not an experiment (a JSON object)"]
    conf = document.get("configuration") or {}
    if not isinstance(conf, Mapping):
        line = _line_of(text, "configuration")
        return [f"{path}: 'configuration' must be an object (line {line}): fix it there"]
    return [f"{path}: {problem}" for problem in _check_configuration(conf, text)]
