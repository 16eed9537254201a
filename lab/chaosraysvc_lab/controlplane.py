"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

    plane = ControlPlane(Path("/tmp/cp"))
    plane.up(progress=print)          # returns once the API answers and the CRDs are established
    plane.kubeconfig                  # admin kubeconfig (system:masters)
    plane.down()                      # ends every process it started

The API server listens on a free loopback port with TLS, authorization `Node,RBAC`, and signs
service-account tokens; the controller-manager runs the default controllers with per-controller
service-account credentials (as kubeadm sets it up). Every process runs in a session of its own,
recorded in `<state dir>/controlplane.json`, so `down` ends all of them, even after a crash of
the process that started them. Addresses: Services get ClusterIPs from 198.19.0.0/20 (the
benchmarking range, never a private one).

Where the API server listens (`up(address=...)`): on its own, on loopback, and the `kubernetes`
Service has no endpoint (`--endpoint-reconciler-type=none`: a loopback address is not a valid
endpoint, and nothing but the host could reach it). On a node, on the node's address (the pod
bridge's, `198.18.N.1`, which the node network creates first): it binds that address only (not
every address: the uplink's stays closed), advertises it, and its own endpoint reconciler
(`lease`, the default) writes it as the `kubernetes` Service's endpoint, as on any cluster; pods
then reach `198.19.0.1:443` through kube-proxy, the host through the same address. etcd, the
controller-manager's and the operator's health ports stay on loopback.

The API server writes an audit log (`<state dir>/logs/audit.jsonl`, JSON lines) of every call
made by a service account outside kube-system, which is how the tests prove deploy/'s Role
grants no verb the target never uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.ports import free_port
from chaosraysvc_lab import binaries, kubeconfig, pki
from chaosraysvc_lab import operator as kuberay

STATE_FILE = "controlplane.json"
SERVICE_CIDR = "198.19.0.0/20"
API_SERVICE_IP = "198.19.0.1"
CLUSTER_DOMAIN = "cluster.local"
DNS_SERVICE_IP = "198.19.0.10"  # the cluster DNS Service's (`coredns.py` creates it)
Progress = Callable[[str], None]
# Controllers a one-machine node without a cloud, volumes or node IPAM has no use for.
KCM_OFF = (
    "node-ipam-controller",
    "cloud-node-lifecycle-controller",
    "service-lb-controller",
    "node-route-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-attach-detach-controller",
    "persistentvolume-expander-controller",
    "ephemeral-volume-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
)


class ControlPlaneError(ChaosRaySvcError):
    """The control plane could not be started, or is not up."""


@dataclass
class Component:
    """A process of the control plane: its session id (= pid) and start time, to detect reuse."""

    name: str
    sid: int
    start_ticks: int
    log: str

    def alive(self) -> bool:
        return procs.running(self.sid, self.start_ticks)


@dataclass
class PlaneState:
    """What `up` recorded: ports, paths and processes."""

    api_port: int
    etcd_port: int
    bin_dir: str
    started_at: float
    kcm_port: int = 0
    ready_seconds: float = 0.0
    components: list[Component] = field(default_factory=list)
    address: str = "127.0.0.1"
    operator_metrics_port: int = 0  # the KubeRay operator's /metrics on 127.0.0.1

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    def save(self, state_dir: Path) -> None:
        tmp = state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> PlaneState | None:
        try:
            raw = json.loads((state_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ControlPlaneError(
                f"{state_dir / STATE_FILE} is unreadable ({exc}): remove {state_dir} "
                "after checking no control-plane process is left"
            ) from exc
        raw["components"] = [Component(**c) for c in raw.get("components", [])]
        return cls(**raw)


@dataclass
class DownResult:
    was_up: bool
    ended: list[str]
    leftovers: list[str]
    seconds: float


class ControlPlane:
    """The control plane kept in `state_dir` (certificates, etcd data, logs, kubeconfigs)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.pki_dir = self.state_dir / "pki"
        self.log_dir = self.state_dir / "logs"
        self.kubeconfig = self.state_dir / "admin.kubeconfig"
        self.audit_log = self.log_dir / "audit.jsonl"

    # -- state -------------------------------------------------------------------------

    def state(self) -> PlaneState | None:
        """Return what `up` recorded, or None when it never ran here."""
        return PlaneState.load(self.state_dir)

    def running(self) -> bool:
        """Tell whether every recorded component is alive."""
        state = self.state()
        return bool(state and state.components and all(c.alive() for c in state.components))

    # -- up ----------------------------------------------------------------------------

    def up(
        self,
        *,
        scheduler: bool = False,
        operator: bool = False,
        timeout: float = 60.0,
        progress: Progress = lambda _msg: None,
        bin_dir: Path | None = None,
        address: str = "127.0.0.1",
    ) -> PlaneState:
        """Start etcd, the API server and the controller-manager; install KubeRay's CRDs.

        `operator` also starts the real KubeRay operator (see `kubenode.operator`). `address`
        is where the API server listens: loopback, or a node's address (see the module's doc).

        Returns once `/readyz` answers ok and every CRD is Established. On any failure (or
        Ctrl-C) every started process is ended and the error names the log to read.
        """
        if self.running():
            raise ControlPlaneError(
                f"a control plane is already up in {self.state_dir}: run "
                f"`chaosraysvc-lab controlplane down --state-dir {self.state_dir}` first"
            )
        self.down()
        bins = bin_dir or binaries.binary_dir()
        started = time.monotonic()
        for sub in ("pki", "etcd", "logs.previous"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        if self.log_dir.exists():  # a failed start's logs survive the next one
            self.log_dir.rename(self.state_dir / "logs.previous")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir()
        state = PlaneState(
            api_port=free_port(),
            etcd_port=free_port(),
            kcm_port=free_port(),
            bin_dir=str(bins),
            started_at=time.time(),
            address=address,
        )
        state.save(self.state_dir)
        try:
            self._write_pki(state)
            self._start(state, "etcd", self._etcd_args(state))
            self._wait(lambda: self._etcd_healthy(state), "etcd", 20, state)
            progress(f"etcd up ({time.monotonic() - started:.1f}s)")
            self._start(state, "kube-apiserver", self._apiserver_args(state))
            self._wait(lambda: self._readyz(state), "kube-apiserver", timeout, state)
            progress(f"kube-apiserver ready at {state.server} ({time.monotonic() - started:.1f}s)")
            self._start(state, "kube-controller-manager", self._kcm_args(state))
            if scheduler:
                self._start(state, "kube-scheduler", self._scheduler_args(state))
            self._install_crds(bins / "crds", timeout)
            self._wait(lambda: self._kcm_healthy(state), "kube-controller-manager", timeout, state)
            state.ready_seconds = round(time.monotonic() - started, 2)
            state.save(self.state_dir)
            progress(f"KubeRay CRDs established; control plane ready in {state.ready_seconds}s")
            if operator:
                self._start_operator(state, bins, timeout)
                progress(f"KubeRay operator ready ({time.monotonic() - started:.1f}s)")
            return state
        except BaseException:
            self.down()
            raise

    def _write_pki(self, state: PlaneState) -> None:
        ca = pki.CertificateAuthority(self.pki_dir)
        names = dict.fromkeys((
            state.address,
            "127.0.0.1",
            "localhost",
            API_SERVICE_IP,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
        ))  # fmt: skip
        ca.issue("apiserver", "kube-apiserver", server_names=tuple(names), client=False)
        ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
        pki.service_account_keys(self.pki_dir)
        for file, user, group in (
            ("admin", "chaosraysvc-admin", "system:masters"),
            ("controller-manager", "system:kube-controller-manager", ""),
            ("scheduler", "system:kube-scheduler", ""),
        ):
            pair = ca.issue(file, user, group)
            kubeconfig.write(
                self.state_dir / f"{file}.kubeconfig",
                server=state.server,
                ca=ca.pair.cert,
                cert=pair.cert,
                key=pair.key,
            )

    def client_kubeconfig(self, name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
        """Issue a client certificate for `user` in `groups`; return a kubeconfig using it."""
        state = self._require_state()
        ca = _LoadedCA(self.pki_dir)
        pair = ca.issue(name, user, ",".join(groups))
        path = self.state_dir / f"{name}.kubeconfig"
        kubeconfig.write(path, server=state.server, ca=ca.cert, cert=pair.cert, key=pair.key)
        return path

    def _etcd_args(self, state: PlaneState) -> list[str]:
        peer = free_port()
        url = f"http://127.0.0.1:{state.etcd_port}"
        peer_url = f"http://127.0.0.1:{peer}"
        return [
            "--name=default",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
            "--quota-backend-bytes=1073741824",
        ]

    def _apiserver_args(self, state: PlaneState) -> list[str]:
        p = self.pki_dir
        return [
            f"--etcd-servers=http://127.0.0.1:{state.etcd_port}",
            f"--bind-address={state.address}",
            f"--advertise-address={state.address}",
            f"--secure-port={state.api_port}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            # The kubelet's serving certificate is the cluster CA's (a CSR to the
            # kubelet-serving signer), for the Node's InternalIP: kubeadm's address order.
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--endpoint-reconciler-type="
            + ("none" if state.address.startswith("127.") else "lease"),
            f"--audit-policy-file={self._write_audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
            "--v=1",
        ]

    def _write_audit_policy(self) -> Path:
        """Write the audit policy: every request of a service account outside kube-system.

        Those are the calls of workloads (the chaosraysvc CronJob's pod, or a test running as
        deploy/'s ServiceAccount), at `Metadata` level (user, verb, resource, namespace, name,
        status; never a body). The controllers' own accounts in kube-system, the operator, the
        kubelet and admins are not logged, which keeps the log small.
        """
        path = self.state_dir / "audit-policy.yaml"
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
                {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
                {"level": "None"},
            ],
        }
        path.write_text(yaml.safe_dump(policy))
        return path

    def _kcm_args(self, state: PlaneState) -> list[str]:
        p = self.pki_dir
        config = self.state_dir / "controller-manager.kubeconfig"
        return [
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.kcm_port}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=" + ",".join(["*", *(f"-{name}" for name in KCM_OFF)]),
            "--endpointslice-updates-batch-period=0s",
            "--v=1",
        ]

    def _scheduler_args(self, state: PlaneState) -> list[str]:
        config = self.state_dir / "scheduler.kubeconfig"
        return [
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
            "--v=1",
        ]

    def _start(
        self,
        state: PlaneState,
        name: str,
        args: list[str],
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        log = self.log_dir / f"{name}.log"
        argv = [str(Path(state.bin_dir) / name), *args]
        proc = procs.spawn(wrap(argv) if wrap else argv, dict(os.environ), log, self.state_dir)
        ticks = procs.start_time_of(proc.pid) or 0
        state.components.append(Component(name, proc.pid, ticks, str(log)))
        state.save(self.state_dir)

    def _wait(
        self, check: Callable[[], bool], name: str, timeout: float, state: PlaneState
    ) -> None:
        deadline = time.monotonic() + timeout
        component = next(c for c in state.components if c.name == name)
        while time.monotonic() < deadline:
            if check():
                return
            if not component.alive():
                procs.reap(component.sid)
                raise ControlPlaneError(
                    f"{name} exited during start-up: read {component.log} "
                    f"(last line: {_last_line(Path(component.log))})"
                )
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{name} was not ready within {timeout:.0f}s: read {component.log} "
            f"(last line: {_last_line(Path(component.log))})"
        )

    def _etcd_healthy(self, state: PlaneState) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{state.etcd_port}/health", timeout=1
            ) as answer:
                return b'"health":"true"' in answer.read()
        except (OSError, urllib.error.URLError):
            return False

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        context.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        return context

    def _readyz(self, state: PlaneState) -> bool:
        try:
            with urllib.request.urlopen(
                f"{state.server}/readyz", timeout=2, context=self._ssl_context()
            ) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _start_operator(self, state: PlaneState, bins: Path, timeout: float) -> None:
        """Start KubeRay's operator; on a node (not loopback) with the cluster's DNS, as
        deployed in a cluster (`kuberay` module doc)."""
        kuberay.install_rbac(kubeconfig.api_client(self.kubeconfig), bins)
        config = self.client_kubeconfig("operator", kuberay.USER)
        health, state.operator_metrics_port = free_port(), free_port()
        on_node = not state.address.startswith("127.")
        flags = kuberay.args(config, health, state.operator_metrics_port, cluster_dns=on_node)
        wrap = None
        if on_node:
            resolv = self.state_dir / "operator-resolv.conf"
            resolv.write_text(kuberay.resolv_conf(DNS_SERVICE_IP))
            wrap = lambda argv: kuberay.cluster_dns_command(resolv, argv)  # noqa: E731
        self._start(state, "ray-operator", flags, wrap=wrap)
        self._wait(lambda: kuberay.healthy(health), "ray-operator", timeout, state)

    def _kcm_healthy(self, state: PlaneState) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # its serving certificate is self-signed
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{state.kcm_port}/healthz", timeout=1, context=context
            ) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _install_crds(self, crd_dir: Path, timeout: float) -> None:
        # Raw JSON both ways: the client's models take seconds to (de)serialize these schemas.
        from kubernetes import client

        api = client.ApiextensionsV1Api(kubeconfig.api_client(self.kubeconfig))
        bodies = [yaml.safe_load(path.read_text()) for path in sorted(crd_dir.glob("*.yaml"))]
        with ThreadPoolExecutor(len(bodies)) as pool:
            list(
                pool.map(
                    lambda body: api.create_custom_resource_definition(
                        body, _preload_content=False
                    ),
                    bodies,
                )
            )
        deadline = time.monotonic() + timeout
        pending = {body["metadata"]["name"] for body in bodies}
        while pending:
            for name in sorted(pending):
                answer: Any = api.read_custom_resource_definition(name, _preload_content=False)
                conditions = (json.loads(answer.data).get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise ControlPlaneError(f"CRDs not established within {timeout:.0f}s: {pending}")
            if pending:
                time.sleep(0.1)

    def _require_state(self) -> PlaneState:
        state = self.state()
        if state is None or not self.running():
            raise ControlPlaneError(
                f"no control plane is up in {self.state_dir}: run "
                f"`chaosraysvc-lab controlplane up --state-dir {self.state_dir}`"
            )
        return state

    # -- down --------------------------------------------------------------------------

    def down(self, timeout: float = 10.0) -> DownResult:
        """End every recorded component (SIGTERM, then SIGKILL); idempotent.

        etcd goes last, once the others have ended: an API server with an endpoint reconciler
        removes its endpoint from etcd while it shuts down, and waited for the kill with etcd
        already gone (10 s more on every node `down`).
        """
        started = time.monotonic()
        state = self.state()
        if state is None:
            return DownResult(False, [], [], 0.0)
        was_up = any(c.alive() for c in state.components)
        ended: list[str] = []
        deadline = time.monotonic() + timeout
        last = [c for c in state.components if c.name == "etcd"]
        first = [c for c in reversed(state.components) if c not in last]
        for phase in (first, last):
            for component in phase:
                if component.alive():
                    procs.signal_session(component.sid, signal.SIGTERM)
                    ended.append(component.name)
            for component in phase:
                while component.alive() and time.monotonic() < deadline:
                    procs.reap(component.sid)
                    time.sleep(0.05)
                if component.alive() or procs.session_pids(component.sid):
                    procs.kill_session(component.sid)
                procs.reap(component.sid)
        leftovers = [c.name for c in state.components if c.alive()]
        if not leftovers:
            state.components = []
            state.save(self.state_dir)
        return DownResult(was_up, ended, leftovers, round(time.monotonic() - started, 2))


class _LoadedCA(pki.CertificateAuthority):
    """The CA written by `up`, loaded back to issue more client certificates."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self.directory = directory
        self.pair = pki.CertPair(directory / "ca.crt", directory / "ca.key")
        self.cert = self.pair.cert
        self._cert = x509.load_pem_x509_certificate(self.pair.cert.read_bytes())
        key = serialization.load_pem_private_key(self.pair.key.read_bytes(), password=None)
        self._key = key  # type: ignore[assignment]


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1][-300:]
    return "(empty)"


@contextlib.contextmanager
def running_control_plane(state_dir: Path, **kwargs: Any) -> Iterator[ControlPlane]:
    """Bring a control plane up in `state_dir`; always bring it down, even on failure."""
    plane = ControlPlane(state_dir)
    try:
        plane.up(**kwargs)
        yield plane
    finally:
        result = plane.down()
        if result.leftovers:
            raise ControlPlaneError(f"control-plane processes left behind: {result.leftovers}")
