"""Where the node's binaries come from: built once per machine from pinned Go modules.

`lab/controlplane/build.sh` (in the source checkout) builds etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kube-proxy and the KubeRay operator from the versions
pinned in `lab/controlplane/go.mod`, into a cache keyed by those pins, and copies KubeRay's CRDs
and samples beside them; `lab/coredns/build.sh` builds CoreDNS from `lab/coredns/go.mod` (its
own module: CoreDNS 1.14 needs client-go v0.35) into a sibling cache. A first build takes
minutes; later calls return the cached directory at once. `$RAYSVC_KUBE_BIN_DIR` points at a
directory built elsewhere instead (CoreDNS then is `coredns` in it). `lab/netpol/build.sh`
builds kube-router (the node's NetworkPolicy engine) the same way, `lab/prometheus/build.sh`
Prometheus (`prometheus_binary`), `lab/pushgateway/build.sh` the Pushgateway
(`pushgateway_binary`). `lab/e2e/build.sh` builds
Kubernetes' own e2e tests and their images' binaries (`e2e_dir`), used by
`benchmarks/conformance.py` and the node's image table.
"""

from __future__ import annotations

import contextlib
import functools
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
COREDNS_BUILD_SCRIPT = BUILD_SCRIPT.parents[1] / "coredns" / "build.sh"
E2E_BUILD_SCRIPT = BUILD_SCRIPT.parents[1] / "e2e" / "build.sh"
NETPOL_BUILD_SCRIPT = BUILD_SCRIPT.parents[1] / "netpol" / "build.sh"
PROMETHEUS_BUILD_SCRIPT = BUILD_SCRIPT.parents[1] / "prometheus" / "build.sh"
PUSHGATEWAY_BUILD_SCRIPT = BUILD_SCRIPT.parents[1] / "pushgateway" / "build.sh"
E2E_ENV_VAR = "RAYSVC_E2E_DIR"
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
    return _check(Path(_build(BUILD_SCRIPT, build)))


def coredns_binary(*, build: bool = True) -> Path:
    """Return the path of the CoreDNS binary, building it first if needed (as `binary_dir`)."""
    explicit = os.environ.get(ENV_VAR, "")
    path = Path(explicit) / "coredns" if explicit else Path(_build(COREDNS_BUILD_SCRIPT, build))
    if not path.is_file():
        raise ConfigurationError(
            f"no CoreDNS binary at {path}: build it with {COREDNS_BUILD_SCRIPT}"
            + (f" and copy it into ${ENV_VAR}" if explicit else "")
        )
    return path


def kube_router_binary(*, build: bool = True) -> Path:
    """Return the path of kube-router (the node's NetworkPolicy engine, `lab/netpol/`),
    building it first if needed (as `binary_dir`; `kube-router` in `$RAYSVC_KUBE_BIN_DIR`)."""
    return _program("kube-router", NETPOL_BUILD_SCRIPT, build, "kube-router")


def prometheus_binary(*, build: bool = True) -> Path:
    """Return the path of Prometheus (`lab/prometheus/`: Kubernetes service discovery only),
    building it first if needed (as `binary_dir`; `prometheus` in `$RAYSVC_KUBE_BIN_DIR`)."""
    return _program("prometheus", PROMETHEUS_BUILD_SCRIPT, build, "Prometheus")


def pushgateway_binary(*, build: bool = True) -> Path:
    """Return the path of the Pushgateway (`lab/pushgateway/`), building it first if needed
    (as `binary_dir`; `pushgateway` in `$RAYSVC_KUBE_BIN_DIR`)."""
    return _program("pushgateway", PUSHGATEWAY_BUILD_SCRIPT, build, "Pushgateway")


def _program(name: str, script: Path, build: bool, title: str) -> Path:
    """One program built alone by `script` (or `name` in `$RAYSVC_KUBE_BIN_DIR`)."""
    explicit = os.environ.get(ENV_VAR, "")
    path = Path(explicit) / name if explicit else Path(_build(script, build))
    if not path.is_file():
        raise ConfigurationError(
            f"no {title} binary at {path}: build it with {script}"
            + (f" and copy it into ${ENV_VAR}" if explicit else "")
        )
    return path


def e2e_dir(*, build: bool = True) -> Path:
    """Return the directory of Kubernetes' e2e tests built by `lab/e2e/build.sh` (`e2e.test`,
    `agnhost`, `busybox/bin/`), building it first if needed; `$RAYSVC_E2E_DIR` names one
    built elsewhere. Raises `ConfigurationError` when it cannot be had (with `build=False`:
    when it is not built yet)."""
    explicit = os.environ.get(E2E_ENV_VAR, "")
    path = Path(explicit) if explicit else Path(_build(E2E_BUILD_SCRIPT, build))
    wanted = ("e2e.test", "agnhost", "ginkgo", "busybox/bin/sh", "localhost.crt")
    missing = [name for name in wanted if not (path / name).exists()]
    if missing:
        raise ConfigurationError(
            f"the e2e directory {path} lacks {', '.join(missing)}: build it with "
            f"{E2E_BUILD_SCRIPT}" + (f" (or unset {E2E_ENV_VAR})" if explicit else "")
        )
    return path


@functools.cache
def _build(script: Path, build: bool) -> str:
    """Run a build script (or ask it for its cached result); return the last line it printed.

    Once per process and script (a failure is not remembered): `node up` looks the binaries
    up in several places, and the script says "binaries cached in ..." on stderr each time.
    """
    if not script.is_file():
        raise ConfigurationError(
            f"no control-plane binaries: set {ENV_VAR} to a directory built by "
            "lab/controlplane/build.sh (this installation has no source checkout to build from)"
        )
    if shutil.which("go") is None:
        raise ConfigurationError(
            "building the control plane needs Go >= 1.24 on PATH (go not found); "
            f"or set {ENV_VAR} to a directory of prebuilt binaries"
        )
    args = [str(script)] + ([] if build else ["--cached-only"])
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
            f"{script} failed (exit code {done.returncode}); its output is above"
        )
    return done.stdout.strip().splitlines()[-1]
