"""`chaosraysvc report`: turn journals and their traffic logs into a report.

::

    chaosraysvc report runs/head/journal.json                  # runs/head/report.html
    chaosraysvc report journal.json --format md                # report.md + report-timeline.png
    chaosraysvc report journal.json --traffic t.jsonl -o r.json
    chaosraysvc report /artifacts/*/journal.json               # trend-report.html, one row per run
    chaosraysvc report runs/head/                              # the run's folder
    chaosraysvc report runs/killed/journal-traffic.jsonl       # a run killed before its journal

The written paths are printed, the report first. A journal that cannot be read ends
the command with exit code 1 and one line on stderr saying which file, what is wrong
and what to do; a missing or damaged traffic log only adds a warning (on stderr and in
the report), since the journal still tells the verdict. A run killed before Chaos
Toolkit wrote its journal (missing, empty or cut off) is reported from its traffic log
alone, marked interrupted, with a warning.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.report.chart import timeline_png, timeline_svg
from chaosraysvc.report.figures import RunFigures, run_figures
from chaosraysvc.report.load import RunInput, load_path
from chaosraysvc.report.render import render_html, render_json, render_markdown
from chaosraysvc.report.values import epoch, number

__all__ = ["ReportError", "register", "run"]

FORMATS = ("html", "md", "json")
_SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


class ReportError(ChaosRaySvcError):
    """The report cannot be made or written: names the file and what to do."""


def register(sub: Any) -> None:
    """Add the `report` command to the `chaosraysvc` subcommands `sub`."""
    parser = sub.add_parser(
        "report",
        help="make an HTML, Markdown or JSON report from journals and traffic logs",
        description=(
            "Make a report of a Chaos Toolkit run from its journal and its traffic log: the "
            "verdict, what ran against what, a timeline of the traffic with the fault and "
            "recovery milestones, recovery figures, steady-state probes and activities. "
            "Several journals give a trend table, one row per run. A run killed before its "
            "journal was written is reported from its traffic log alone, marked interrupted."
        ),
    )
    parser.add_argument(
        "journals",
        nargs="+",
        metavar="PATH",
        help="a run's journal.json, its folder, or its traffic log (journal-traffic.jsonl: "
        "for a run killed before its journal was written)",
    )
    parser.add_argument(
        "--traffic",
        metavar="FILE",
        help="the traffic log (one journal only); default: <journal stem>-traffic.jsonl "
        "beside the journal, else the log recorded in the journal",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="where to write the report; default: report.<format> beside the journal "
        "(trend-report.<format> in the journals' common folder for several)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="html (default; one self-contained file), md (for tickets; the chart as a PNG "
        "beside it) or json (the figures); default: from the -o suffix, else html",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback on an unexpected error"
    )
    parser.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        return _SUFFIX_FORMATS.get(Path(args.output).suffix.lower(), "html")
    return "html"


def _folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _default_output(journals: list[Path], fmt: str) -> Path:
    if len(journals) == 1:
        return _folder(journals[0]) / f"report.{fmt}"
    common = Path(os.path.commonpath([str(_folder(j.resolve())) for j in journals]))
    return common / f"trend-report.{fmt}"


def _bug(what: str, exc: Exception) -> str:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    return (
        f"{what}: {detail}; this is a bug in chaosraysvc: please report it with the journal "
        "(rerun with --debug for the traceback)"
    )


def _figures(run: RunInput, index: int, debug: bool) -> RunFigures:
    try:
        return run_figures(run, index)
    except Exception as exc:  # a bug must not end in a traceback for users
        if debug:
            raise
        raise ReportError(_bug(f"cannot compute the report of {run.source}", exc)) from exc


def _timeline(run: RunInput) -> list[dict[str, Any]]:
    timeline = (run.summary or {}).get("timeline")
    return timeline if isinstance(timeline, list) and timeline else []


def _write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a reader never sees half a report)."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ReportError(
            f"cannot write the report to {path}: {exc.strerror or exc}; "
            "choose a writable place with -o"
        ) from exc


def _started(run: RunInput) -> float:
    """Return when a run started (journal, else traffic start) for ordering a trend."""
    start = epoch(run.journal.get("start"))
    if start is None:
        start = number((run.summary or {}).get("run", {}).get("started"))
    return start if start is not None else float("inf")


def build(
    journals: list[Path], traffic: Path | None, out: Path, fmt: str, debug: bool = False
) -> tuple[dict[Path, bytes], list[str]]:
    """Return the files of the report (path -> content) and the warnings, writing nothing."""
    runs = [load_path(j, traffic) for j in journals]
    runs.sort(key=_started)
    figures = [_figures(run, i, debug) for i, run in enumerate(runs)]
    warnings = [f"{r.source}: {w}" for r, f in zip(runs, figures, strict=True) for w in f.warnings]
    files: dict[Path, bytes] = {}
    if fmt == "json":
        files[out] = render_json(figures).encode("utf-8")
    elif fmt == "md":
        links: list[str | None] = []
        for i, (run, fig) in enumerate(zip(runs, figures, strict=True)):
            timeline = _timeline(run)
            if not timeline:
                links.append(None)
                continue
            suffix = "" if len(runs) == 1 else f"-{i + 1}"
            png = out.with_name(f"{out.stem}-timeline{suffix}.png")
            files[png] = timeline_png(timeline, fig)
            links.append(png.name)
        files = {out: render_markdown(figures, links).encode("utf-8"), **files}
    else:
        charts = [
            timeline_svg(t, f) if (t := _timeline(r)) else None
            for r, f in zip(runs, figures, strict=True)
        ]
        files[out] = render_html(figures, charts).encode("utf-8")
    return files, warnings


def run(args: argparse.Namespace) -> int:
    """Make the report asked for by the parsed `args`; return the exit code."""
    journals = [Path(j) for j in args.journals]
    if args.traffic and len(journals) > 1:
        raise ReportError(
            "--traffic names the traffic log of one journal, but several were given: "
            "leave it out (each journal's log is found beside it) or report one journal"
        )
    fmt = _format(args)
    out = Path(args.output) if args.output else _default_output(journals, fmt)
    if out.is_dir():
        out = out / (f"report.{fmt}" if len(journals) == 1 else f"trend-report.{fmt}")
    traffic = Path(args.traffic) if args.traffic else None
    try:
        files, warnings = build(journals, traffic, out, fmt, args.debug)
    except ChaosRaySvcError:
        raise
    except Exception as exc:  # a bug must not end in a traceback for users
        if args.debug:
            raise
        raise ReportError(_bug(f"cannot draw the report {out}", exc)) from exc
    for warning in warnings:
        print(f"chaosraysvc: warning: {' '.join(warning.split())}", file=sys.stderr)
    for path, data in files.items():
        _write(path, data)
        print(path)
    return 0
