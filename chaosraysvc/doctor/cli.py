"""`chaosraysvc doctor`: list a target's HA risks with their evidence, consequence and fix.

Exit codes: 0 no high-severity risk, 1 at least one high-severity risk, 2 usage error,
3 the target could not be inspected (a one-line error on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import Counter
from typing import Any

from chaosraysvc.config import TARGETS, default_sandbox_dir, settings_from
from chaosraysvc.doctor import Diagnosis, diagnose
from chaosraysvc.doctor.rules import RULES, SEVERITIES, Risk, at_least
from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError

__all__ = [
    "EXIT_HIGH_RISK",
    "EXIT_NOT_INSPECTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "cmd_doctor",
    "register",
    "render_json",
    "render_table",
]

EXIT_OK = 0
EXIT_HIGH_RISK = 1
EXIT_USAGE = 2
EXIT_NOT_INSPECTED = 3
WIDTH = 100


def exit_code(risks: list[Risk]) -> int:
    """Return 1 when a high-severity risk is present, else 0."""
    return EXIT_HIGH_RISK if any(r.severity == "high" for r in risks) else EXIT_OK


def _counts(risks: list[Risk]) -> dict[str, int]:
    counted = Counter(r.severity for r in risks)
    return {s: counted.get(s, 0) for s in reversed(SEVERITIES)}


def _lines(text: str, first: str, rest: str) -> list[str]:
    """Wrap `text` at spaces only: paths, flags and env var names stay whole."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _wrap(label: str, text: str, indent: int = 2) -> list[str]:
    head = " " * indent + f"{label:<13}"
    return _lines(text, head, " " * len(head))


def render_table(diagnosis: Diagnosis, min_severity: str = "low") -> str:
    """Render the diagnosis as the readable report `doctor` prints."""
    shown = at_least(diagnosis.risks, min_severity)
    counts = _counts(diagnosis.risks)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"HA check of {diagnosis.facts.target}"]
    if diagnosis.facts.redis_topology:  # which Redis the GCS has: a fact, not a risk
        store = {"sentinel": "Redis behind Sentinels", "single": "one Redis"}
        topology = store.get(diagnosis.facts.redis_topology, diagnosis.facts.redis_topology)
        lines += _lines(
            f"{topology}: {diagnosis.facts.redis_topology_evidence}", "GCS store: ", "  "
        )
    if not diagnosis.risks:
        lines.append(f"no HA risk found ({len(RULES)} rules checked)")
    else:
        lines.append(f"{len(diagnosis.risks)} risk(s): {summary}")
    if shown:
        rows = [("SEVERITY", "RISK", "TITLE")] + [(r.severity, r.id, r.title) for r in shown]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines.append("")
        lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
        for risk in shown:
            lines += ["", f"[{risk.severity}] {risk.id}: {risk.title}", "  evidence:"]
            for item in risk.evidence:
                lines += _lines(item, "    - ", "      ")
            lines += _wrap("consequence:", risk.consequence)
            lines += _wrap("fix:", risk.fix)
    hidden = len(diagnosis.risks) - len(shown)
    if hidden:
        lines += ["", f"({hidden} risk(s) below {min_severity} not shown)"]
    if diagnosis.facts.notes:
        lines += ["", "notes:"]
        for note in diagnosis.facts.notes:
            lines += _lines(note, "  - ", "    ")
    return "\n".join(lines)


def render_json(diagnosis: Diagnosis, min_severity: str = "low") -> str:
    """Render the diagnosis as JSON: target, counts, risks, notes, exit code and the facts."""
    document: dict[str, Any] = {
        "target": diagnosis.facts.target,
        "counts": _counts(diagnosis.risks),
        "risks": [r.to_json() for r in at_least(diagnosis.risks, min_severity)],
        "notes": list(diagnosis.facts.notes),
        "exit_code": exit_code(diagnosis.risks),
        "facts": diagnosis.facts.to_json(),
    }
    return json.dumps(document, indent=2)


def cmd_doctor(args: argparse.Namespace) -> int:
    configuration = {
        "raysvc_target": args.target,
        "rayservice_name": args.name,
        "rayservice_namespace": args.namespace,
        "sandbox_state_dir": args.state_dir,
        "dashboard_url": args.dashboard_url,
    }
    try:
        settings = settings_from(configuration)
    except ConfigurationError as exc:
        print(f"chaosraysvc doctor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        diagnosis = diagnose(settings)
    except ChaosRaySvcError as exc:
        what = (
            f"RayService {settings.rayservice_namespace}/{settings.rayservice_name}"
            if settings.target == "kubernetes"
            else f"the sandbox in {settings.sandbox_state_dir}"
        )
        message = " ".join(str(exc).split())
        print(f"chaosraysvc doctor: could not inspect {what}: {message}", file=sys.stderr)
        return EXIT_NOT_INSPECTED
    if args.json:
        print(render_json(diagnosis, args.min_severity))
    else:
        print(render_table(diagnosis, args.min_severity))
    return exit_code(diagnosis.risks)


def register(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="list the RayService's HA risks, with evidence, consequence and fix",
        description="Inspect a RayService (or the sandbox) and list each HA risk with the "
        "evidence seen, its consequence and the fix. Exit codes: 0 no high-severity risk, "
        "1 a high-severity risk, 2 usage error, 3 the target could not be inspected.",
    )
    doctor.add_argument(
        "--target",
        choices=TARGETS,
        default="",
        help="what to inspect (default $RAYSVC_TARGET or sandbox)",
    )
    doctor.add_argument(
        "--name", default="", help="RayService name (default $RAYSVC_NAME or rayservice-ha)"
    )
    doctor.add_argument(
        "--namespace", default="", help="its namespace (default $RAYSVC_NAMESPACE or default)"
    )
    doctor.add_argument(
        "--state-dir",
        default="",
        help=f"sandbox state directory (default $RAYSVC_SANDBOX_DIR or {default_sandbox_dir()})",
    )
    doctor.add_argument(
        "--dashboard-url",
        default="",
        help="Ray dashboard URL to read the live replica placement from (default "
        "$RAYSVC_DASHBOARD_URL; the sandbox's own; in-cluster the head Service; else the "
        "head Service through the Kubernetes API server); skipped with a note when "
        "unreachable",
    )
    doctor.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="low",
        help="show only risks this severe or worse (the exit code still counts all)",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON for machines")
    doctor.set_defaults(func=cmd_doctor)
