"""A container's private /tmp must not hide the runtime that stands in for its image.

Issue 25 item 2: with the project's venv under /tmp, every pod of the node failed with
`ray: command not found`, because each container mounts its pod's own directory on /tmp.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from chaosraysvc.runtime import containers
from chaosraysvc_lab.podrun import _mount_script

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root"),
]


def _run(script: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    proc = containers.spawn(argv, {"PATH": "/usr/bin:/bin"}, cwd / "log", cwd,
                            setup_script=script)  # fmt: skip
    proc.wait(timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, (cwd / "log").read_bytes())


def test_a_runtime_under_tmp_stays_visible_under_the_pods_private_tmp() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="crs-runtime-") as runtime_dir:
        runtime = Path(runtime_dir)
        (runtime / "bin").mkdir()
        tool = runtime / "bin" / "ray"
        tool.write_text("#!/bin/sh\necho runtime-ok; ls /tmp\n")
        tool.chmod(0o755)
        pod = runtime / "pod"  # the pod's directory, itself under /tmp (as a state dir may be)
        (pod / "tmp").mkdir(parents=True)
        (pod / "tmp" / "pod-file").write_text("")
        mounts = [(str(pod / "tmp"), "/tmp", False)]

        hidden = _run(_mount_script(mounts), [str(tool)], pod)
        kept = _run(_mount_script(mounts, keep=(str(runtime),)), [str(tool)], pod)

    assert containers.exit_code(hidden.returncode) == 127, hidden.stdout  # what users hit
    assert kept.returncode == 0, kept.stdout
    assert b"runtime-ok" in kept.stdout
    assert b"pod-file" in kept.stdout  # /tmp is still the pod's own
