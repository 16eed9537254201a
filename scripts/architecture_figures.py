#!/usr/bin/env python3
"""Print (or check, or write) the figures of docs/architecture.md, counted from the tree.

    python scripts/architecture_figures.py           # the table, as Markdown
    python scripts/architecture_figures.py --write   # replace the block in docs/architecture.md
    python scripts/architecture_figures.py --check   # exit 1 when the block is stale

Stale means: a module count or a largest module differs, or lines or `dict[str, Any]` moved
by more than `DRIFT` (5 %) since the block was written (a new module needs `--write`; an
edit of a few lines does not). The block sits between `<!-- figures:begin -->` and
`<!-- figures:end -->`. Counted per distribution (the extension `chaosraysvc/`, the lab
`lab/chaosraysvc_lab/`) and for `tests/` and `benchmarks/`: Python modules, lines (`wc -l`),
`dict[str, Any]` occurrences (the untyped contracts of issue 24 item 3), the largest module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
TREES = {
    "extension (`chaosraysvc/`)": ROOT / "chaosraysvc",
    "lab (`lab/chaosraysvc_lab/`)": ROOT / "lab" / "chaosraysvc_lab",
    "tests (`tests/`)": ROOT / "tests",
    "benchmarks (`benchmarks/`)": ROOT / "benchmarks",
}
UNTYPED = "dict[str, Any]"
DRIFT = 0.05


def modules(tree: Path) -> list[Path]:
    """The tree's own Python files (not `data/`'s links to top-level folders, not caches)."""
    return sorted(
        p
        for p in tree.rglob("*.py")
        if "__pycache__" not in p.parts and (tree / "data") not in p.parents
    )


Row = tuple[int, int, int, str]  # modules, lines, dict[str, Any] count, largest module


def counted() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for name, tree in TREES.items():
        files = modules(tree)
        texts = {p: p.read_text() for p in files}
        lines = {p: t.count("\n") for p, t in texts.items()}
        largest = max(files, key=lambda p: lines[p])
        untyped = sum(t.count(UNTYPED) for t in texts.values())
        rows[name] = (
            len(files),
            sum(lines.values()),
            untyped,
            largest.relative_to(tree).as_posix(),
        )
    return rows


def table(rows: dict[str, Row]) -> str:
    out = [
        "| tree | modules | lines | `dict[str, Any]` | largest module |",
        "|---|---:|---:|---:|---|",
    ]
    for name, (count, lines, untyped, largest) in rows.items():
        out.append(f"| {name} | {count} | {lines:,} | {untyped} | `{largest}` |")
    return "\n".join(out) + "\n"


def parsed(block: str) -> dict[str, Row]:
    """The rows of a block `table()` wrote (an unreadable row is left out: then stale)."""
    rows: dict[str, Row] = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        try:
            name, count, lines, untyped, largest = cells
            rows[name] = (int(count), int(lines.replace(",", "")), int(untyped), largest.strip("`"))
        except ValueError:
            continue
    return rows


def stale(written: dict[str, Row], now: dict[str, Row]) -> list[str]:
    """What moved beyond the drift allowed, one line each (empty: the block is true)."""
    if written.keys() != now.keys():
        return [f"trees {sorted(written)} in the doc, {sorted(now)} counted"]
    found = []
    for name, (count, lines, untyped, largest) in now.items():
        was = written[name]
        if (count, largest) != (was[0], was[3]):
            found.append(f"{name}: {was[0]} modules, largest {was[3]} -> {count}, {largest}")
        for what, old, new in (("lines", was[1], lines), (UNTYPED, was[2], untyped)):
            if abs(new - old) > max(5, DRIFT * old):
                found.append(f"{name}: {what} {old} -> {new}")
    return found


def block_in(text: str) -> str:
    """The text between the markers, or raise ValueError naming what is missing."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOC} has no {BEGIN} ... {END} block")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update docs/architecture.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when the doc is stale")
    args = parser.parse_args(argv)
    rows = counted()
    now = table(rows)
    if not (args.write or args.check):
        print(now, end="")
        return 0
    text = DOC.read_text()
    if args.check:
        moved = stale(parsed(block_in(text)), rows)
        if not moved:
            return 0
        print(f"{DOC.relative_to(ROOT)}: its figures are stale ({'; '.join(moved)}); run "
              f"`python scripts/architecture_figures.py --write`", file=sys.stderr)  # fmt: skip
        return 1
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(f"{head}{BEGIN}\n{now}{END}{rest.split(END, 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
