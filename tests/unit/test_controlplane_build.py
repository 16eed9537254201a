"""lab/controlplane/build.sh: one build at a time per machine, and none outliving its caller.

Issue 25 item 1: on a cold cache, tests whose `controlplane up` timed out left `go build`
running, and the next test started another build into the same directory (three at once).
The script runs here against a stand-in `go` on PATH (it records when each build runs and
writes the binary), in a cache directory of the test's own: no Go, no network.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.polling import wait_for

SCRIPT = Path(__file__).resolve().parents[2] / "lab" / "controlplane" / "build.sh"

FAKE_GO = """#!/bin/bash
# A stand-in for `go`: `build -o OUT` takes $FAKE_GO_SECONDS, noting its start and end.
log="$FAKE_GO_LOG"
if [ "$1" = build ]; then
    echo "$*" >> "$FAKE_GO_LOG.args"
    while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done
    echo "start $$ $(date +%s.%N)" >> "$log"
    sleep "$FAKE_GO_SECONDS"
    : > "$out"
    echo "end $$ $(date +%s.%N)" >> "$log"
elif [ "$1" = list ]; then
    case "$*" in
        *Dir*) echo "$FAKE_GO_MODULE" ;;
        *"-f {{.Version}}"*) echo "v1.34.2" ;;
        *) echo "k8s.io/kubernetes v1.34.2" ;;
    esac
fi
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    module = tmp_path / "kuberay"
    for sub in ("config/crd/bases", "config/samples", "config/rbac"):
        (module / sub).mkdir(parents=True)
    (module / "config/crd/bases/ray.io_rayservices.yaml").write_text("{}")
    (module / "config/samples/ray-service.high-availability.yaml").write_text("{}")
    (module / "config/rbac/role.yaml").write_text("{}")
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CRS_BIN_CACHE": str(tmp_path / "cache"),
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "FAKE_GO_MODULE": str(module),
        "FAKE_GO_SECONDS": "0.3",
    }


def _runs(log: Path) -> list[tuple[float, float]]:
    starts: dict[str, float] = {}
    runs = []
    for line in log.read_text().splitlines():
        kind, pid, at = line.split()
        if kind == "start":
            starts[pid] = float(at)
        else:
            runs.append((starts.pop(pid), float(at)))
    return sorted(runs)


def test_two_callers_at_once_build_once_one_after_the_other(
    env: dict[str, str], tmp_path: Path
) -> None:
    first, second = (
        subprocess.Popen(
            ["bash", str(SCRIPT)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    )
    outs = [p.communicate(timeout=60) for p in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert outs[0][0].strip() == outs[1][0].strip()  # the same cache directory
    runs = _runs(tmp_path / "go.log")
    assert len(runs) == 7  # each binary built once, not twice
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(runs))
    waited = outs[0][1] + outs[1][1]
    assert "another build is running; waiting" in waited
    assert "built by the other caller" in waited


def test_a_build_whose_caller_died_stops(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "FAKE_GO_SECONDS": "30"}
    # The caller: a shell that starts the build in its own process group (as binaries.py
    # does) and is then SIGKILLed, as a test's timeout kills the CLI.
    caller = subprocess.Popen(
        ["bash", "-c", f"setsid bash {SCRIPT} & wait"], env=env, start_new_session=True
    )
    wait_for(lambda: (tmp_path / "go.log").exists(), 20, what="the first go build")
    started = [line.split()[1] for line in (tmp_path / "go.log").read_text().splitlines()]
    caller.send_signal(signal.SIGKILL)
    caller.wait(timeout=10)
    began = time.monotonic()

    def gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() for pid in started)

    wait_for(gone, 10, what="the orphaned go build to stop")
    assert time.monotonic() - began < 10
    assert not list((tmp_path / "cache").glob("*/.complete"))


def test_the_kubernetes_binaries_carry_their_release_version(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 25 item 10: the API server said v0.0.0-master+$Format:%H$ (no version stamped)."""
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    builds = (tmp_path / "go.log.args").read_text().splitlines()
    apiserver = next(line for line in builds if line.endswith("cmd/kube-apiserver"))
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.2" in apiserver
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.34.2" in apiserver
    assert "version.gitMinor=34" in apiserver
