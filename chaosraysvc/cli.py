"""The `chaosraysvc` command: `sandbox up|down|status|logs`, `report`, `doctor`, `controlplane`.

Each command group lives beside what it drives and registers itself here through
a `register(subparsers)` function that sets `func(args) -> int` on its parsers.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from chaosraysvc import __version__
from chaosraysvc.errors import ChaosRaySvcError

COMMAND_MODULES = (
    "chaosraysvc.sandbox.cli",
    "chaosraysvc.report.cli",
    "chaosraysvc.doctor.cli",
    "chaosraysvc.kubenode.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosraysvc",
        description="Prove with real faults and traffic that a Ray Serve RayService stays up.",
    )
    parser.add_argument("--version", action="version", version=f"chaosraysvc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
