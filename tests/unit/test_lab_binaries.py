"""The node's binaries are looked up once per process: `chaosraysvc-lab node up` asks for them
in several places (the control plane, the HA sample, CoreDNS), and the build script says
"binaries cached in ..." on stderr each time it is asked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from chaosraysvc_lab import binaries


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(stat.S_IRWXU)
    return path


def test_a_cached_build_is_announced_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binaries.shutil, "which", lambda name: f"/usr/bin/{name}")
    build = script(
        tmp_path, "build.sh", f'echo "x: binaries cached in {tmp_path}" >&2\necho {tmp_path}'
    )

    assert binaries._build(build, True) == str(tmp_path)
    assert binaries._build(build, True) == str(tmp_path)

    assert capfd.readouterr().err.count("binaries cached in") == 1


def test_a_failed_build_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries.shutil, "which", lambda name: f"/usr/bin/{name}")
    flag = tmp_path / "built"
    build = script(tmp_path, "build.sh", f"[ -e {flag} ] || exit 3\necho {tmp_path}")

    with pytest.raises(binaries.ConfigurationError, match="exit code 3"):
        binaries._build(build, False)
    flag.touch()
    assert binaries._build(build, False) == str(tmp_path)
