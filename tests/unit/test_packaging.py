"""What an install ships: every non-Python file of the package is declared as package data.

setuptools warns (a ~40-line `BuildBackendWarning` per folder, on every install) when
`include_package_data` picks up files from a folder that is not a package, such as
`chaosraysvc/report/templates/`; declaring them in `[options.package_data]` instead ships
them without the warning.
"""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chaosraysvc"


def data_files() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def declared(setup: configparser.ConfigParser, path: Path) -> bool:
    """Whether a `[options.package_data]` glob of the package that holds `path` matches it."""
    if not setup.has_section("options.package_data"):
        return False
    for package, globs in setup.items("options.package_data"):
        base = ROOT.joinpath(*package.split("."))
        if base not in path.parents:
            continue
        relative = path.relative_to(base).as_posix()
        if any(fnmatch.fnmatch(relative, g.strip()) for g in globs.replace(",", "\n").split()):
            return True
    return False


def test_every_data_file_is_package_data_and_nothing_relies_on_the_manifest() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    files = data_files()
    assert any(p.name == "report.html.j2" for p in files), "the report's templates are missing"
    undeclared = [str(p.relative_to(ROOT)) for p in files if not declared(setup, p)]
    assert undeclared == [], f"not in [options.package_data] of setup.cfg: {undeclared}"
    include = setup.get("options", "include_package_data", fallback="false").strip().lower()
    assert include in (
        "false",
        "0",
        "no",
    ), "include_package_data makes setuptools warn about templates/ on every install"
