"""Write the bundled experiments, probes and deploy/ manifests into a directory.

    from chaosraysvc.data.export import export
    written = export(Path("."))   # ./experiments/head-kill.json, ./probes/..., ./deploy/...

The layout is the repository's, so the README's commands (`chaos run
experiments/head-kill.json`, `kubectl apply -k deploy/`) run from that directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from chaosraysvc.data import FOLDERS
from chaosraysvc.errors import ConfigurationError

__all__ = ["Exported", "bundled_files", "export"]

_SKIPPED = ("__pycache__",)


@dataclass(frozen=True)
class Exported:
    """One file of `export`: where it went and whether it was written or already identical."""

    path: Path
    written: bool


def _walk(node: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        name = f"{prefix}/{child.name}"
        if child.is_dir() and child.name not in _SKIPPED:
            found.extend(_walk(child, name))
        elif child.is_file() and not child.name.endswith(".pyc"):
            found.append((name, child))
    return found


def bundled_files() -> list[tuple[str, Traversable]]:
    """Return every bundled file as (path relative to the export directory, its resource).

    Raises `ConfigurationError` when this installation has none (a broken install).
    """
    root = files("chaosraysvc.data")
    found: list[tuple[str, Traversable]] = []
    for folder in FOLDERS:
        if not root.joinpath(folder).is_dir():
            raise ConfigurationError(
                f"this installation of chaosraysvc has no {folder}/ (looked in {root}): "
                "reinstall it (pip install --force-reinstall chaosraysvc)"
            )
        found.extend(_walk(root.joinpath(folder), folder))
    return found


def export(directory: Path, *, force: bool = False) -> list[Exported]:
    """Write every bundled file under `directory`; return what was written or found identical.

    An existing file with other content is overwritten only with `force`; otherwise nothing is
    written and `ConfigurationError` names the files in the way.
    """
    plan = [(directory / name, resource.read_bytes()) for name, resource in bundled_files()]
    folders = [p for p, _ in plan if p.is_dir()]
    if folders:
        raise ConfigurationError(
            f"{folders[0]} is a directory where chaosraysvc writes a file: move it away, or "
            "export into another directory"
        )
    clashes = [p for p, data in plan if p.exists() and p.read_bytes() != data]
    if clashes and not force:
        shown = ", ".join(str(p) for p in clashes[:3]) + (" ..." if len(clashes) > 3 else "")
        raise ConfigurationError(
            f"{len(clashes)} file(s) already exist with other content in {directory}: {shown}; "
            "pass --force to overwrite them, or export into another directory"
        )
    done: list[Exported] = []
    for path, data in plan:
        if path.is_file() and path.read_bytes() == data:
            done.append(Exported(path, written=False))
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write {path}: {exc.strerror or exc}; export into a directory you can "
                "write to"
            ) from exc
        done.append(Exported(path, written=True))
    return done
