"""Render the figures of one or more runs as HTML, Markdown or JSON.

HTML (`templates/report.html.j2`) is one self-contained file: inline CSS (with print
rules), the timeline chart as inline SVG, no script, no external resource. Markdown
(`templates/report.md.j2`) holds the same facts compactly and links each chart as an
image file written beside it. JSON is the figures themselves (`RunFigures.to_json`), for machines::

    {"format": "chaosraysvc-report", "version": 1, "generated": "...",
     "generator": "chaosraysvc 0.1.0", "runs": [<figures>...], "trend": [<row>...]}

All journal text is escaped: Jinja2 autoescaping in HTML, the `md` filter in Markdown.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from chaosraysvc import __version__
from chaosraysvc.report.figures import RunFigures
from chaosraysvc.report.verdict import MILESTONE_WORDS

__all__ = ["FORMAT", "VERSION", "render_html", "render_json", "render_markdown"]

FORMAT = "chaosraysvc-report"
VERSION = 1
TEMPLATES = Path(__file__).parent / "templates"
_MD_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)


def seconds(value: Any) -> str:
    """Format seconds: "6.6 s", "185 s (3 min 05 s)", "—" for None."""
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "—"
    if value < 100:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(round(value)), 60)
    return f"{value:.0f} s ({minutes} min {rest:02d} s)"


def count(value: Any) -> str:
    """Format a count with thousands separators ("—" for None)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{int(value):,}"


def millis(value: Any) -> str:
    """Format milliseconds ("—" for None)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.1f} ms"


def percent(value: Any) -> str:
    """Format a 0..1 ratio as a percentage ("—" for None)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return "100 %" if value == 1 else f"{100.0 * value:.2f} %"


def rate(value: Any) -> str:
    """Format a per-second rate ("—" for None)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.1f}/s"


def offset(value: Any) -> str:
    """Format an offset in seconds as "+6.6 s" ("—" for None)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"+{value:.1f} s"


def md(value: Any) -> str:
    """Escape text for a Markdown paragraph or table cell (one line, no markup)."""
    return "" if value is None else str(value).translate(_MD_ESCAPES)


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.ChainableUndefined,  # a field missing from a journal shows empty
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        seconds=seconds, count=count, ms=millis, pct=percent, rps=rate, offset=offset, md=md
    )
    env.globals.update(
        milestone_words=MILESTONE_WORDS,
        generator=f"chaosraysvc {__version__}",
    )
    return env


def _generated() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_html(runs: list[RunFigures], charts: list[str | None]) -> str:
    """Return the HTML report of `runs` (figures) with their inline SVG `charts`."""
    template = _environment(autoescape=True).get_template("report.html.j2")
    safe = [
        Markup(chart) if chart else None for chart in charts
    ]  # our own SVG: matplotlib escapes its text
    return template.render(runs=runs, charts=safe, generated=_generated())


def render_markdown(runs: list[RunFigures], charts: list[str | None]) -> str:
    """Return the Markdown report of `runs`; `charts` are image paths relative to it."""
    template = _environment(autoescape=False).get_template("report.md.j2")
    return template.render(runs=runs, charts=charts, generated=_generated())


def render_json(runs: list[RunFigures]) -> str:
    """Return the figures of `runs` and their trend rows as JSON."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "generated": _generated(),
        "generator": f"chaosraysvc {__version__}",
        "runs": [run.to_json() for run in runs],
        "trend": [asdict(run.trend) for run in runs],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
