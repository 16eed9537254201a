"""`chaosraysvc experiments export DIR [--force]` and `chaosraysvc experiments check FILE...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaosraysvc.data.check import check_experiment
from chaosraysvc.data.export import export


def cmd_export(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    done = export(directory, force=args.force)
    for item in done:
        print(f"{'wrote' if item.written else 'unchanged'} {item.path}")
    written = sum(item.written for item in done)
    here = directory.resolve() == Path.cwd().resolve()
    print(
        f"{written} file(s) written, {len(done) - written} unchanged; then: "
        f"{'' if here else f'cd {directory} && '}chaos run experiments/head-kill.json"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    failed = False
    for name in args.files:
        problems = check_experiment(Path(name))
        for problem in problems:
            print(f"chaosraysvc: error: {problem}", file=sys.stderr)
        if not problems:
            print(f"{name}: ok")
        failed = failed or bool(problems)
    return 1 if failed else 0


def register(sub: Any) -> None:
    group = sub.add_parser(
        "experiments",
        help="write out the bundled experiments, probes and deploy/ manifests; check an "
        "experiment file",
    )
    commands = group.add_subparsers(dest="experiments_command", metavar="COMMAND", required=True)
    out = commands.add_parser(
        "export",
        help="write experiments/, probes/ and deploy/ into DIR (existing files are kept "
        "unless --force)",
    )
    out.add_argument("directory", metavar="DIR", help="where to write them (e.g. .)")
    out.add_argument(
        "--force", action="store_true", help="overwrite files that exist with other content"
    )
    out.set_defaults(func=cmd_export)
    check = commands.add_parser(
        "check",
        help="say in one line per problem what keeps chaos run from loading an experiment "
        "(JSON syntax, environment variables of the wrong type)",
    )
    check.add_argument("files", metavar="FILE", nargs="+", help="experiment files")
    check.set_defaults(func=cmd_check)
