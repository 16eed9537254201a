"""`pip install chaosraysvc` brings the experiments, probes and deploy/ manifests, and
`chaosraysvc experiments export DIR` writes them out as the repository holds them, so the
README's `chaos run experiments/head-kill.json` runs without a clone.

The installed layout is what setuptools' `build_py` (the step a wheel is made of) writes; it
runs here offline with this environment's setuptools.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaosraysvc.cli import main

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("experiments", "probes", "deploy")


def repo_files() -> dict[str, bytes]:
    return {
        p.relative_to(ROOT).as_posix(): p.read_bytes()
        for folder in FOLDERS
        for p in sorted((ROOT / folder).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a wheel installs it (setuptools' build_py into a directory of its own)."""
    lib = tmp_path_factory.mktemp("lib")
    setup = "from setuptools import setup; setup()"
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(lib)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return lib


def test_the_installed_package_holds_the_experiments_probes_and_manifests_as_files(
    installed: Path,
) -> None:
    data = installed / "chaosraysvc" / "data"
    for name in repo_files():
        path = data / name
        assert path.is_file() and not path.is_symlink(), f"{name} is not in the wheel"


def test_export_from_an_installation_writes_the_repository_s_files(
    installed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run(
        [sys.executable, "-m", "chaosraysvc.cli", "experiments", "export", str(out)],
        cwd=tmp_path,  # not the checkout: the package comes from the installation only
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert tree(out) == repo_files()
    assert f"wrote {out / 'experiments' / 'head-kill.json'}" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1] == (
        f"{len(repo_files())} file(s) written, 0 unchanged; then: cd {out} && "
        "chaos run experiments/head-kill.json"
    )


def test_export_keeps_a_file_the_user_changed_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiments", "export", str(tmp_path)]) == 0
    mine = tmp_path / "experiments" / "head-kill.json"
    mine.write_text("{}\n")
    capsys.readouterr()

    assert main(["experiments", "export", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{mine}" in err and "--force" in err
    assert mine.read_text() == "{}\n"

    assert main(["experiments", "export", str(tmp_path), "--force"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {mine}" in out.splitlines()
    assert f"unchanged {tmp_path / 'experiments' / 'worker-kill.json'}" in out.splitlines()
    assert tree(tmp_path) == repo_files()


def test_the_experiments_group_loads_only_its_own_module(tmp_path: Path) -> None:
    code = (
        "import sys; from chaosraysvc.cli import main; "
        f"main(['experiments', 'export', {str(tmp_path)!r}]); "
        "print(sorted(m for m in sys.modules if m.startswith('chaosraysvc.') and "
        "m.endswith('.cli')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "['chaosraysvc.cli', 'chaosraysvc.data.cli']"
