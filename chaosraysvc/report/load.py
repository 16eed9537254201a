"""Read a Chaos Toolkit journal and its traffic log into one `RunInput`.

The journal is the file `chaos run --journal-path` writes. The traffic log is found,
unless given, in this order: `<journal stem>-traffic.jsonl` beside the journal (where
the traffic control writes it by default, and where it stays when a run's folder is
copied), then the path recorded by the traffic control in the journal's
`{"name": "chaosraysvc", "traffic": {"log": ...}}` extension (relative to the journal's
folder when relative), then a file of that name beside the journal. A log whose start
time differs from the one the journal recorded belongs to another run and is skipped.

A journal that cannot be read is an error (`ReportInputError`, naming the file, what
is wrong and what to do). A traffic log that is missing, empty or damaged is not: the
report is drawn without it (from the summary the journal holds, if any) and says why
in `RunInput.warnings`. A traffic log given explicitly must be readable.

A traffic log that disagrees with the journal is incomplete evidence: when the requests
or failures it holds are not those the journal counted for the whole run (the traffic
control's summary, else a `stop_traffic` result), or its last line is cut off, it was
cut or trimmed after the run (an upload limit, a copy) and may hide failed requests.
`RunInput.evidence` says so (and `warnings`); the verdict then never passes.

`load_path` reads what a user names: a journal, a run's folder or a traffic log. A run
killed before Chaos Toolkit wrote its journal (the journal missing, empty or cut off)
leaves its traffic log, written as the run goes: the run is then reported from the
traffic log alone, marked `interrupted` (`RunInput.interrupted` says why), with no
journal and so no hypothesis verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.report.faults import undone_fault_marks
from chaosraysvc.traffic.log import TrafficLog, TrafficLogError, read_traffic_log
from chaosraysvc.traffic.stats import summarize

__all__ = [
    "EXTENSION_NAME",
    "JournalNotWrittenError",
    "ReportInputError",
    "RunInput",
    "check_evidence",
    "find_traffic_log",
    "load_path",
    "load_run",
    "load_traffic_only",
    "summarize_log",
]

EXTENSION_NAME = "chaosraysvc"


class ReportInputError(ChaosRaySvcError):
    """A journal or traffic log cannot be used: names the file, the problem and the fix."""


class JournalNotWrittenError(ReportInputError):
    """The journal is missing, empty or cut off: the run probably ended before writing it.

    `what` says it in a few words ("journal runs/x/journal.json is empty").
    """

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


@dataclass
class RunInput:
    """One run as read from disk.

    `journal` is the parsed journal (a dict); `traffic` the parsed traffic log or None;
    `summary` the traffic statistics (`chaosraysvc.traffic.stats.summarize`, with the
    per-second `timeline` when the log was read, without it when taken from the
    journal) or None when no traffic was recorded; `warnings` say what is missing.

    A run reported from its traffic log alone has `journal_path` None, `journal` {},
    `interrupted` saying why there is no journal and `missing_journal` where it was
    expected (None when unknown). `evidence` says how the traffic log falls short of
    what the journal recorded (see the module docstring).
    """

    journal_path: Path | None
    journal: dict[str, Any]
    traffic_path: Path | None = None
    traffic: TrafficLog | None = None
    summary: dict[str, Any] | None = None
    summary_source: str = ""  # "traffic log", "journal" or ""
    warnings: list[str] = field(default_factory=list)
    interrupted: str = ""
    missing_journal: Path | None = None
    evidence: list[str] = field(default_factory=list)

    @property
    def source(self) -> Path:
        """Return the file the run is reported from: its journal, else its traffic log."""
        path = self.journal_path or self.traffic_path or self.missing_journal
        assert path is not None, "a run is read from a journal or a traffic log"
        return path


def summarize_log(log: TrafficLog) -> dict[str, Any]:
    """Return the statistics of a traffic log (`summarize`), counting only faults that happened.

    A `fault` mark undone by its `fault_not_injected` mark (the target refused the fault)
    starts no outage phase; the `fault_not_injected` mark stays listed.
    """
    undone = undone_fault_marks(log.marks)
    if undone:
        log = replace(log, marks=[m for m in log.marks if not any(m is u for u in undone)])
    return summarize(log)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_journal(path: Path) -> dict[str, Any]:
    """Return the journal at `path` as a dict; raise `ReportInputError` when unusable."""
    hint = "pass the journal.json written by `chaos run --journal-path`"
    if not path.exists():
        raise JournalNotWrittenError(
            f"journal {path} does not exist: {hint} (or the run's folder, or its traffic log)",
            what=f"journal {path} does not exist",
        )
    if path.is_dir():
        raise ReportInputError(f"journal {path} is a directory: {hint}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportInputError(
            f"journal {path} cannot be read: {exc.strerror or exc}; check its permissions"
        ) from exc
    if not data.strip():
        raise JournalNotWrittenError(
            f"journal {path} is empty: Chaos Toolkit writes the journal when the run ends, "
            f"so the run was probably killed before; {hint}",
            what=f"journal {path} is empty",
        )
    try:
        journal = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ReportInputError(
            f"journal {path} is not UTF-8 text (byte {exc.start}): {hint}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise JournalNotWrittenError(
            f"journal {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); was it cut off or edited? {hint}",
            what=f"journal {path} is not valid JSON (cut off?)",
        ) from exc
    if not isinstance(journal, dict):
        raise ReportInputError(
            f"journal {path} holds a JSON {type(journal).__name__}, not a journal object: {hint}"
        )
    if not isinstance(journal.get("experiment"), dict):
        what = "a Chaos Toolkit experiment" if "method" in journal else "another JSON file"
        raise ReportInputError(
            f"journal {path} has no 'experiment' object, so it looks like {what}, "
            f"not a journal: {hint}"
        )
    return journal


def chaosraysvc_extension(journal: dict[str, Any]) -> dict[str, Any]:
    """Return the journal's chaosraysvc extension entry ({} when there is none)."""
    extensions = journal.get("extensions")
    if not isinstance(extensions, list):
        return {}
    for entry in extensions:
        if isinstance(entry, dict) and entry.get("name") == EXTENSION_NAME:
            return entry
    return {}


def writable_extension(journal: dict[str, Any]) -> dict[str, Any]:
    """Return the journal's chaosraysvc extension entry, adding an empty one if missing
    (for the controls that record into it)."""
    entry = chaosraysvc_extension(journal)
    if not entry:
        extensions = journal.setdefault("extensions", [])
        entry = {"name": EXTENSION_NAME}
        extensions.append(entry)
    return entry


def _recorded_traffic(journal: dict[str, Any]) -> dict[str, Any]:
    traffic = chaosraysvc_extension(journal).get("traffic")
    return traffic if isinstance(traffic, dict) else {}


def _started(path: Path) -> float | None:
    """Return the `started` of a traffic log's header line, None if unreadable."""
    try:
        with path.open("rb") as f:
            header = json.loads(f.readline().decode("utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    started = header.get("started") if isinstance(header, dict) else None
    return float(started) if isinstance(started, int | float) else None


def _belongs(path: Path, journal: dict[str, Any]) -> bool:
    """Tell whether the log at `path` may be this journal's (its start time matches)."""
    summary = _recorded_traffic(journal).get("summary")
    run = summary.get("run") if isinstance(summary, dict) else None
    expected = run.get("started") if isinstance(run, dict) else None
    if not isinstance(expected, int | float):
        return True  # nothing to compare with
    started = _started(path)
    return started is None or abs(started - expected) < 1e-3


def find_traffic_log(journal_path: Path, journal: dict[str, Any]) -> tuple[Path | None, list[Path]]:
    """Return the traffic log of a journal (None if absent) and every place looked at.

    Looks beside the journal for `<stem>-traffic.jsonl`, then at the path recorded in
    the journal, then beside the journal for the recorded file name; a log whose run
    header does not carry the start time recorded in the journal is another run's and
    is skipped.
    """
    folder = journal_path.parent
    candidates = [folder / f"{journal_path.stem}-traffic.jsonl"]
    recorded = _recorded_traffic(journal).get("log")
    if isinstance(recorded, str) and recorded:
        candidates.append(Path(recorded) if Path(recorded).is_absolute() else folder / recorded)
        candidates.append(folder / Path(recorded).name)
    looked: list[Path] = []
    for candidate in candidates:
        if candidate in looked:
            continue
        looked.append(candidate)
        if candidate.is_file() and _belongs(candidate, journal):
            return candidate, looked
    return None, looked


def _journal_summary(journal: dict[str, Any]) -> dict[str, Any] | None:
    summary = _recorded_traffic(journal).get("summary")
    return summary if isinstance(summary, dict) and "requests" in summary else None


def _whole_run_count(journal: dict[str, Any]) -> tuple[int, int] | None:
    """Return the (requests, failures) the journal counted for the whole run, if it did.

    The traffic control's summary in the chaosraysvc extension, else the last whole-run
    summary an activity returned (`stop_traffic`, whose `run.complete` is true).
    """
    candidates = [_journal_summary(journal)]
    for phase in ("rollbacks", "run"):
        results = journal.get(phase)
        for result in reversed(results if isinstance(results, list) else []):
            output = result.get("output") if isinstance(result, dict) else None
            run = output.get("run") if isinstance(output, dict) else None
            if isinstance(run, dict) and run.get("complete") is True:
                candidates.append(output)
    for summary in candidates:
        if summary is None:
            continue
        requests, failures = summary.get("requests"), summary.get("failures")
        if isinstance(requests, int) and isinstance(failures, int):
            return requests, failures
    return None


def check_evidence(run: RunInput) -> None:
    """Add to `run.evidence` (and `warnings`) how its traffic log falls short of the journal.

    Compares the requests and failures the log holds (`run.summary`, read from it) with
    those the journal counted for the whole run; a log cut mid-line is short too.
    """
    if run.traffic is None or run.summary is None or run.summary_source != "traffic log":
        return
    counted = _whole_run_count(run.journal)
    held = (run.summary.get("requests"), run.summary.get("failures"))
    gap = ""
    if counted is not None and held != counted:
        gap = (
            f"the traffic log {run.traffic_path} holds {held[0]:,} requests ({held[1]:,} "
            f"failed) but the journal counted {counted[0]:,} ({counted[1]:,} failed) for this "
            "run: the log is incomplete (cut off or trimmed after the run?), so its figures "
            "leave requests out and failed ones may be among them"
        )
    elif run.traffic.truncated and run.journal:
        gap = (
            f"the traffic log {run.traffic_path} ends with a cut-off line although the run "
            "ended and wrote its journal: it was cut after the run, so requests logged after "
            "that point are missing and failed ones may be among them"
        )
    if gap:
        run.evidence.append(gap)
        run.warnings.append(gap)


def _read_traffic(path: Path) -> TrafficLog:
    try:
        return read_traffic_log(path)
    except TrafficLogError as exc:
        hint = "; pass another one with --traffic" if isinstance(exc.__cause__, OSError) else ""
        raise ReportInputError(_one_line(str(exc)) + hint) from exc


def load_run(journal_path: str | Path, traffic_path: str | Path | None = None) -> RunInput:
    """Read the journal at `journal_path` and its traffic log into a `RunInput`.

    `traffic_path` overrides where the traffic log is looked for; it must then exist
    and be a readable traffic log. Raises `ReportInputError` for an unusable journal
    or an unusable explicit traffic log.
    """
    path = Path(journal_path)
    run = RunInput(journal_path=path, journal=read_journal(path))
    fallback = _journal_summary(run.journal)
    if traffic_path is not None:
        explicit = Path(traffic_path)
        if not explicit.is_file():
            raise ReportInputError(
                f"traffic log {explicit} does not exist or is not a file: "
                "check the --traffic path, or leave it out to use the one beside the journal"
            )
        run.traffic_path, run.traffic = explicit, _read_traffic(explicit)
        if not _belongs(explicit, run.journal):
            run.warnings.append(
                f"traffic log {explicit} started at another time than the journal's traffic: "
                "it may belong to another run"
            )
    else:
        found, looked = find_traffic_log(path, run.journal)
        if found is None:
            places = ", ".join(str(p) for p in looked)
            others = [p for p in looked if p.is_file()]
            if others:
                places += (
                    f"; {', '.join(str(p) for p in others)} started at another time than "
                    "this journal's traffic, so it belongs to another run"
                )
            if fallback is not None:
                run.warnings.append(
                    f"traffic log not found (looked for {places}); figures come from the "
                    "summary in the journal and there is no timeline chart: pass --traffic FILE"
                )
            else:
                run.warnings.append(
                    f"no traffic was recorded with this run (no log at {places}, "
                    "no summary in the journal)"
                )
        else:
            run.traffic_path = found
            try:
                run.traffic = _read_traffic(found)
            except ReportInputError as exc:
                run.warnings.append(f"{exc}; the report is drawn without it")
    if run.traffic is not None:
        if not run.traffic.header:
            run.warnings.append(f"traffic log {run.traffic_path} is empty")
            run.traffic = None
        else:
            run.summary, run.summary_source = summarize_log(run.traffic), "traffic log"
            _traffic_warnings(run)
            check_evidence(run)
    if run.summary is None and fallback is not None:
        run.summary, run.summary_source = fallback, "journal"
    return run


TRAFFIC_SUFFIX = "-traffic.jsonl"
_OUTPUTS = ("report", "trend-report")


def _traffic_warnings(run: RunInput) -> None:
    assert run.traffic is not None
    if run.traffic.truncated:
        run.warnings.append(
            f"traffic log {run.traffic_path} ends with a cut-off line (the run was "
            "killed while writing it); that last request is left out"
        )
    elif run.traffic.end is None:
        run.warnings.append(
            f"traffic log {run.traffic_path} has no end line: the traffic did not "
            "stop cleanly, so the figures cover what was logged"
        )


def load_traffic_only(
    traffic_path: str | Path, missing_journal: Path | None = None, why: str = ""
) -> RunInput:
    """Read a run that left only its traffic log (killed before its journal was written).

    `missing_journal` is where the journal was expected and `why` what is wrong with it
    (both shown in the report). Raises `ReportInputError` when the log cannot be read
    or holds nothing: nothing of the run is left to report then.
    """
    path = Path(traffic_path)
    reason = why or (
        f"no journal was found for the traffic log {path}"
        if missing_journal is None
        else f"journal {missing_journal} was not written"
    )
    run = RunInput(
        journal_path=None, journal={}, interrupted=reason, missing_journal=missing_journal
    )
    if not path.is_file():
        raise ReportInputError(
            f"traffic log {path} does not exist or is not a file: pass the run's folder, "
            "its journal.json or its journal-traffic.jsonl"
        )
    run.traffic_path, run.traffic = path, _read_traffic(path)
    if not run.traffic.header:
        raise ReportInputError(
            f"traffic log {path} is empty and {reason}: nothing of this run survived to report"
        )
    run.summary, run.summary_source = summarize_log(run.traffic), "traffic log"
    run.warnings.append(
        f"{reason}: the run was interrupted (Chaos Toolkit writes the journal when the run "
        "ends); this report is drawn from the traffic log alone"
    )
    _traffic_warnings(run)
    return run


def _journal_of(log: Path) -> Path | None:
    """Return where the journal of the traffic log `log` is written (None if unknown)."""
    if log.name.endswith(TRAFFIC_SUFFIX) and len(log.name) > len(TRAFFIC_SUFFIX):
        return log.with_name(log.name[: -len(TRAFFIC_SUFFIX)] + ".json")
    return None


def _is_traffic_log(path: Path) -> bool:
    if path.suffix.lower() == ".jsonl":
        return True
    try:
        with path.open("rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    return first.lstrip().startswith(b'{"kind"')


def _journal_in(folder: Path) -> Path:
    """Return the journal of the run folder `folder`, which may not exist (killed run)."""
    default = folder / "journal.json"
    if default.is_file():
        return default
    journals = sorted(
        p for p in folder.glob("*.json") if p.is_file() and not p.stem.startswith(_OUTPUTS)
    )
    logs = sorted(p for p in folder.glob(f"*{TRAFFIC_SUFFIX}") if p.is_file())
    if len(journals) == 1:
        return journals[0]
    hint = "name one of them instead of the folder"
    if len(journals) > 1:
        names = ", ".join(p.name for p in journals)
        raise ReportInputError(f"{folder} holds several JSON files ({names}): {hint}")
    if len(logs) > 1:
        names = ", ".join(p.name for p in logs)
        raise ReportInputError(f"{folder} holds several traffic logs ({names}): {hint}")
    if logs:
        journal = _journal_of(logs[0])
        assert journal is not None
        return journal
    raise ReportInputError(
        f"{folder} holds no journal (*.json) and no traffic log (*{TRAFFIC_SUFFIX}): pass "
        "the folder `chaos run --journal-path` wrote to, or the journal itself"
    )


def load_path(path: str | Path, traffic_path: str | Path | None = None) -> RunInput:
    """Read the run named by `path`: a journal, a run's folder or a traffic log.

    A folder stands for its `journal.json` (else its only journal or traffic log). A
    traffic log stands for the journal written beside it (`<stem>-traffic.jsonl` ->
    `<stem>.json`) and that log. When the journal is missing, empty or cut off and a
    traffic log survives, the run is read with `load_traffic_only`; otherwise as
    `load_run` (`traffic_path` as there). Raises `ReportInputError` when nothing usable
    is left.
    """
    path = Path(path)
    if path.is_dir():
        path = _journal_in(path)
    elif path.is_file() and _is_traffic_log(path):
        if traffic_path is not None:
            raise ReportInputError(
                f"{path} is a traffic log and --traffic names another one: pass the journal "
                "with --traffic, or the traffic log alone"
            )
        journal = _journal_of(path)
        if journal is None or not journal.exists():
            return load_traffic_only(path, journal)
        traffic_path, path = path, journal
    try:
        return load_run(path, traffic_path)
    except JournalNotWrittenError as exc:
        log = Path(traffic_path) if traffic_path is not None else _journal_log(path)
        if log is None or not log.is_file():
            raise
        return load_traffic_only(log, path, exc.what)


def _journal_log(journal: Path) -> Path | None:
    beside = journal.with_name(f"{journal.stem}{TRAFFIC_SUFFIX}")
    return beside if beside.is_file() else None
