"""`chaosraysvc experiments export DIR [--force]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chaosraysvc.data.export import export


def cmd_export(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    done = export(directory, force=args.force)
    for item in done:
        print(f"{'wrote' if item.written else 'unchanged'} {item.path}")
    written = sum(item.written for item in done)
    print(
        f"{written} file(s) written, {len(done) - written} unchanged; then: "
        f"cd {directory} && chaos run experiments/head-kill.json"
    )
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser(
        "experiments",
        help="write out the bundled experiments, probes and deploy/ manifests",
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
