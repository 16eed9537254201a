"""The `chaosraysvc` command: `sandbox up|down|status|logs`, `report`, `doctor`, `experiments`.

Each command group lives beside what it drives and registers itself here through a
`register(subparsers)` function that sets `func(args) -> int` on its parsers. Only the group
named on the command line is imported (`chaosraysvc report` loads nothing of the sandbox);
`--help` loads them all. The lab's one-machine Kubernetes has its own command,
`chaosraysvc-lab`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from chaosraysvc import __version__
from chaosraysvc.errors import ChaosRaySvcError

COMMAND_MODULES = {
    "sandbox": "chaosraysvc.sandbox.cli",
    "report": "chaosraysvc.report.cli",
    "doctor": "chaosraysvc.doctor.cli",
    "experiments": "chaosraysvc.data.cli",
}
MOVED_TO_LAB = ("controlplane",)


def build_parser(only: str = "") -> argparse.ArgumentParser:
    """The parser; with `only`, just that command group's module is imported."""
    parser = argparse.ArgumentParser(
        prog="chaosraysvc",
        description="Prove with real faults and traffic that a Ray Serve RayService stays up.",
        epilog="The lab's one-machine Kubernetes node: chaosraysvc-lab (installed by make).",
    )
    parser.add_argument("--version", action="version", version=f"chaosraysvc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMAND_MODULES.items():
        if not only or only == name:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    first = args_in[0] if args_in else ""
    if first in MOVED_TO_LAB:
        print(
            f"chaosraysvc: error: `{first}` moved to the lab's own command: "
            f"chaosraysvc-lab {first} {' '.join(args_in[1:])}".rstrip(),
            file=sys.stderr,
        )
        return 2
    parser = build_parser(first if first in COMMAND_MODULES else "")
    args = parser.parse_args(args_in)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except ChaosRaySvcError as exc:
        print(f"chaosraysvc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chaosraysvc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
