"""The extension as a user installs it: its wheel, in a fresh virtual environment.

`installed_wheel(root, where)` builds the wheel of this checkout (`pip wheel --no-deps`, in
pip's isolated build environment from pyproject.toml's build requirements) and installs it
with its declared requirements, and nothing else, into a new venv. No extra is asked for:
`chaos run` against a running sandbox or a cluster needs neither Ray nor the lab.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelVenv:
    wheel: Path
    bin: Path

    def run(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's programs (`chaos`, `chaosraysvc`, `python`)."""
        program, *rest = args
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            [str(self.bin / program), *rest], capture_output=True, text=True, **kwargs
        )


def installed_wheel(root: Path, where: Path) -> WheelVenv:
    dist = where / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(dist), str(root)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    (wheel,) = dist.glob("chaosraysvc-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(wheel)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return WheelVenv(wheel=wheel, bin=venv / "bin")
