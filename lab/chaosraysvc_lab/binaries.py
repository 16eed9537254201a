"""Where the control plane's binaries come from: built once per machine from pinned Go modules.

`lab/controlplane/build.sh` (in the source checkout) builds etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and the KubeRay operator from the versions pinned in
`lab/controlplane/go.mod`, into a cache keyed by those pins, and copies KubeRay's CRDs and samples
beside them. A first build takes minutes; later calls return the cached directory at once.
`$RAYSVC_KUBE_BIN_DIR` points at a directory built elsewhere instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from chaosraysvc.errors import ConfigurationError

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubectl",
    "ray-operator",
)
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "controlplane" / "build.sh"
ENV_VAR = "RAYSVC_KUBE_BIN_DIR"


def _check(directory: Path) -> Path:
    missing = [name for name in BINARIES if not (directory / name).is_file()]
    if missing or not (directory / "crds").is_dir():
        raise ConfigurationError(
            f"the control-plane directory {directory} lacks {', '.join(missing) or 'crds/'}: "
            f"rebuild it with {BUILD_SCRIPT} (or unset {ENV_VAR})"
        )
    return directory


def binary_dir(*, build: bool = True) -> Path:
    """Return the directory holding the binaries, building them first if needed.

    Build progress goes to stderr. Raises `ConfigurationError` when they cannot be had.
    """
    explicit = os.environ.get(ENV_VAR, "")
    if explicit:
        return _check(Path(explicit))
    if not BUILD_SCRIPT.is_file():
        raise ConfigurationError(
            f"no control-plane binaries: set {ENV_VAR} to a directory built by "
            "lab/controlplane/build.sh (this installation has no source checkout to build from)"
        )
    if shutil.which("go") is None:
        raise ConfigurationError(
            "building the control plane needs Go >= 1.24 on PATH (go not found); "
            f"or set {ENV_VAR} to a directory of prebuilt binaries"
        )
    args = [str(BUILD_SCRIPT)] + ([] if build else ["--cached-only"])
    # Its own process group, ended with us: a build must not outlive its caller (the script
    # also stops when its caller dies; one build at a time per machine, by its lock).
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate()  # progress: fd 2
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    done = subprocess.CompletedProcess(args, proc.returncode, out)
    if done.returncode != 0:
        raise ConfigurationError(
            f"{BUILD_SCRIPT} failed (exit code {done.returncode}); its output is above"
        )
    return _check(Path(done.stdout.strip().splitlines()[-1]))
