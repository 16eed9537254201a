"""kubectl logs, exec and port-forward, and pod events, through the real API server to our kubelet.

The lab's node, brought up as `chaosraysvc-lab node up` does (`KubeNode.up` without the
RayService: control plane, KubeRay operator, kube-proxy, CoreDNS, our process kubelet), serves
the kubelet API on the Node's InternalIP:10250; the API server reaches it with its
kubelet-client certificate and checks the kubelet's serving certificate against the cluster
CA. kubectl is v1.34.2, built from the pinned module with the control plane. Small pods (the
Ray image's bash and python) are enough and start in seconds.

On main every kubectl call here failed with `dial tcp: lookup chaosraysvc-node ... no such
host` (the API server picked the Node's Hostname address and nothing served the kubelet API)
and no pod had an event; each test names the assertion that failed there.

Needs root (network namespaces, nsenter, port 10250) and the machine's node lock (one lab node
per machine): the fixture waits for a node brought up by someone else to go down. Without
root the tests skip; marked `node`, so under CI (env CI set) that skip fails the run instead
(tests/support/costs.py): it would hide that nothing ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaosraysvc_lab import binaries, kubeconfig, network
from chaosraysvc_lab.agent import try_lock
from chaosraysvc_lab.controlplane import ControlPlane
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .conftest import NAMESPACES_REFUSED

pytestmark = pytest.mark.node

NAMESPACE = "default"
REPO = Path(__file__).resolve().parents[4]
IMAGE = "rayproject/ray:2.9.0"
LOCK_WAIT_S = 900.0


@dataclass
class Node:
    """A control plane with the lab's process kubelet, and kubectl for it."""

    plane: ControlPlane
    api: client.ApiClient
    kubectl_bin: Path
    node_ip: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def kubectl(
        self, *args: str, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)}
        return subprocess.run(
            [str(self.kubectl_bin), "-n", NAMESPACE, *args],
            capture_output=True, text=True, timeout=timeout, env=env, input=input,
        )  # fmt: skip

    def kubectl_env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)}

    def run_pod(self, name: str, script: str, **spec: Any) -> dict[str, Any]:
        """Create pod `name` running `bash -c script`; wait until it is Running."""
        container = {"name": "main", "image": IMAGE, "command": ["bash", "-c", script]}
        container.update(spec.pop("container", {}))
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 2, **spec},
        }
        self.core.create_namespaced_pod(NAMESPACE, body)
        return self.wait_running(name)

    def wait_running(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            pod = self.api.sanitize_for_serialization(
                self.core.read_namespaced_pod(name, NAMESPACE)
            )
            statuses = pod.get("status", {}).get("containerStatuses") or []
            return pod if statuses and all("running" in s["state"] for s in statuses) else None

        return wait_for(running, timeout, what=f"pod {name} to run", interval=0.2)


def _wait_for_node_lock() -> None:
    """Wait for a node someone else runs to go down (`node up` refuses while it runs)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while (lock := try_lock()) is None:
        if time.monotonic() > deadline:
            pytest.skip(f"another lab node held the machine's node lock for {LOCK_WAIT_S:g} s")
        time.sleep(5)
    lock.close()


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    if os.geteuid() != 0:
        pytest.skip("the kubelet API tests need root (network namespaces, nsenter, port 10250)")
    if NAMESPACES_REFUSED:
        pytest.skip(f"network/mount namespaces refused: {NAMESPACES_REFUSED}")
    state_dir = Path(tempfile.mkdtemp(prefix="crs-kapi-"))
    kube = KubeNode(state_dir)
    try:
        _wait_for_node_lock()
        kube.up(sample=False, progress=print)  # the lab's node, no RayService
        api = kubeconfig.api_client(kube.plane.kubeconfig)
        core = client.CoreV1Api(api)
        wait_for(
            lambda: core.list_namespaced_service_account(
                NAMESPACE, field_selector="metadata.name=default"
            ).items,
            30,
            what="ServiceAccount default",
        )
        gateway = network.NodeNetwork(json.loads((state_dir / "node.json").read_text())[
            "node_index"]).gateway  # fmt: skip
        yield Node(kube.plane, api, binaries.binary_dir() / "kubectl", gateway)
    finally:
        leftovers = kube.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not leftovers, leftovers


COUNTER = "i=0; while true; do echo line $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done"


@pytest.fixture(scope="module")
def counter(node: Node) -> str:
    node.run_pod("counter", COUNTER)
    wait_for(lambda: "line 5" in node.kubectl("logs", "counter").stdout, 30,
             what="the counter's sixth line")  # fmt: skip
    return "counter"


# -- logs ---------------------------------------------------------------------------------------


def test_kubectl_logs_tail_and_timestamps(node: Node, counter: str) -> None:
    tail = node.kubectl("logs", counter, "--tail", "2")
    stamped = node.kubectl("logs", counter, "--tail", "1", "--timestamps")

    # main: returncode 1, "dial tcp: lookup chaosraysvc-node ... no such host"
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 2 and all(re.fullmatch(r"(line|err) \d+", x) for x in lines), lines
    assert stamped.returncode == 0, stamped.stderr
    stamp, text = stamped.stdout.rstrip("\n").split(" ", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp), stamp
    seconds = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(time.time() - seconds) < 30
    assert re.fullmatch(r"(line|err) \d+", text)


def test_kubectl_logs_previous_shows_the_instance_before_the_restart(node: Node) -> None:
    script = (
        "if [ -e /state/ran ]; then echo second run; exec sleep 3600; fi; "
        "touch /state/ran; echo first run; echo first err >&2; exit 1"
    )
    node.core.create_namespaced_pod(
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "restarter"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": IMAGE,
                        "command": ["bash", "-c", script],
                        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                    }
                ],
                "volumes": [{"name": "state", "emptyDir": {}}],
            },
        },  # fmt: skip
    )
    wait_for(
        lambda: (s := node.core.read_namespaced_pod("restarter", NAMESPACE).status)
        and s.container_statuses
        and s.container_statuses[0].restart_count == 1
        and s.container_statuses[0].state.running,
        60,
        what="the restarted container to run",
    )

    previous = node.kubectl("logs", "restarter", "--previous")
    current = node.kubectl("logs", "restarter")
    never = node.kubectl("logs", "counter", "--previous")

    assert previous.returncode == 0, previous.stderr  # main: no such host
    # stdout and stderr are two pipes, read as they come (as a runtime reads them): the order
    # of two lines written to each within microseconds is not the program's.
    assert sorted(previous.stdout.splitlines()) == ["first err", "first run"]
    assert current.stdout == "second run\n"
    assert never.returncode != 0
    assert 'previous terminated container "main" in pod "counter" not found' in never.stderr


def test_kubectl_logs_follow_streams_new_lines_and_ends_with_the_container(node: Node) -> None:
    node.run_pod("three", "for i in 1 2 3; do sleep 1; echo tick $i; done", restartPolicy="Never")
    started = time.monotonic()
    follow = subprocess.Popen(
        [str(node.kubectl_bin), "-n", NAMESPACE, "logs", "-f", "three"],
        stdout=subprocess.PIPE, text=True, env=node.kubectl_env(),
    )  # fmt: skip
    assert follow.stdout is not None
    arrivals = []
    for line in follow.stdout:
        arrivals.append((line.strip(), time.monotonic() - started))
    follow.wait(timeout=30)

    # main: nothing arrived (the API server could not reach the kubelet)
    assert [text for text, _ in arrivals] == ["tick 1", "tick 2", "tick 3"]
    assert follow.returncode == 0
    # streamed as written (a second apart), not all at the end
    assert arrivals[2][1] - arrivals[0][1] > 1.0, arrivals


# -- exec ---------------------------------------------------------------------------------------


def test_kubectl_exec_runs_inside_the_container_with_its_exit_code(
    node: Node, counter: str
) -> None:
    script = "echo out; echo err >&2; cat /proc/1/cmdline | tr '\\0' ' '; exit 3"
    done = node.kubectl("exec", counter, "--", "sh", "-c", script)
    piped = node.kubectl("exec", "-i", counter, "--", "cat", input="abc\n")

    assert done.returncode == 3, done.stderr  # main: 1, no such host
    assert done.stdout.startswith("out\nbash -c i=0;"), done.stdout  # PID 1 is the container's
    assert "err\n" in done.stderr
    assert "command terminated with exit code 3" in done.stderr
    assert (piped.returncode, piped.stdout) == (0, "abc\n")


def test_kubectl_exec_it_gets_a_terminal(node: Node, counter: str) -> None:
    command = f"{node.kubectl_bin} -n {NAMESPACE} exec -it {counter} -- bash"
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        input="tty; test -t 0 && echo is-a-tty\nexit 7\n", capture_output=True, text=True,
        timeout=60, env=node.kubectl_env(),
    )  # fmt: skip

    output = done.stdout.replace("\r", "")
    assert done.returncode == 7, output  # main: 1, no such host
    assert re.search(r"^/dev/pts/\d+$", output, re.M), output
    assert "\nis-a-tty\n" in output


def test_the_python_client_execs_translated_or_over_a_websocket(node: Node, counter: str) -> None:
    from kubernetes.stream import stream

    def run(**headers: str) -> str:
        output: str = stream(
            node.core.connect_get_namespaced_pod_exec, counter, NAMESPACE,
            command=["sh", "-c", "echo over-websocket"], stdout=True, stderr=True,
            stdin=False, tty=False, _headers=headers or None,
        )  # fmt: skip
        return output

    # The client offers v5 and v4: the API server translates v5 to SPDY towards the kubelet.
    translated = run()
    # A client offering v4 only (older ones) is passed through: the kubelet's WebSocket.
    passed_through = run(**{"sec-websocket-protocol": "v4.channel.k8s.io"})

    assert translated == "over-websocket\n"  # main: ApiException (handshake status 500)
    assert passed_through == "over-websocket\n"


# -- port-forward -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _forwarded_get(node: Node, resource: str, remote: int) -> tuple[int, str]:
    local = _free_port()
    forward = subprocess.Popen(
        [str(node.kubectl_bin), "-n", NAMESPACE, "port-forward", resource, f"{local}:{remote}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=node.kubectl_env(),
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:<local> -> <remote>"
        assert "Forwarding from" in line, line + (forward.stderr.read() if forward.stderr else "")
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/marker.txt", timeout=10) as answer:
            return answer.status, answer.read().decode()
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.fixture(scope="module")
def web(node: Node) -> str:
    """Pod `web` serving /marker.txt on 8080, behind Service `web` port 80."""
    node.run_pod("web", "cd /tmp && echo served-from-the-pod > marker.txt && "
                 "exec python -m http.server 8080",
                 container={"ports": [{"containerPort": 8080}]})  # fmt: skip
    node.core.create_namespaced_service(
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    wait_for(lambda: _listening(node, "web", 8080), 30, what="the web pod to listen")
    return "web"


def test_kubectl_port_forward_to_a_pod_and_to_a_service(node: Node, web: str) -> None:
    to_pod = _forwarded_get(node, "pod/web", 8080)
    to_service = _forwarded_get(node, "svc/web", 80)

    assert to_pod == (200, "served-from-the-pod\n")  # main: "Forwarding from" never printed
    assert to_service == (200, "served-from-the-pod\n")


def test_the_python_client_port_forwards_over_a_websocket(node: Node, web: str) -> None:
    from kubernetes.stream import portforward

    forward = portforward(
        node.core.connect_get_namespaced_pod_portforward, web, NAMESPACE, ports="8080"
    )
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.settimeout(10)
    sock.sendall(b"GET /marker.txt HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()

    # main: the API server answered 500 (no such host) and the handshake failed
    assert answer.startswith(b"HTTP/1.0 200"), answer[:200]
    assert answer.endswith(b"served-from-the-pod\n")
    assert forward.error(8080) is None


def _listening(node: Node, pod: str, port: int) -> bool:
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port}"
    return node.kubectl("exec", pod, "--", "bash", "-c", probe).returncode == 0


# -- authentication and authorization ----------------------------------------------------------


def _kubelet_get(node: Node, path: str, cert: tuple[Path, Path] | None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(node.plane.pki_dir / "ca.crt"))
    if cert is not None:
        context.load_cert_chain(*cert)
    url = f"https://{node.node_ip}:10250{path}"
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_kubelet_api_authenticates_and_authorizes_like_the_kubelet(
    node: Node, counter: str
) -> None:
    path = f"/containerLogs/{NAMESPACE}/{counter}/main?tailLines=1"
    pki = node.plane.pki_dir
    nobody_config = node.plane.client_kubeconfig("nobody", "nobody")
    assert nobody_config.exists()

    anonymous = _kubelet_get(node, path, None)  # the serving cert verifies against the CA
    nobody = _kubelet_get(node, path, (pki / "nobody.crt", pki / "nobody.key"))
    apiserver = _kubelet_get(node, path, (pki / "apiserver-kubelet-client.crt",
                                          pki / "apiserver-kubelet-client.key"))  # fmt: skip

    assert anonymous[0] == 401  # main: connection refused (nothing on 10250)
    assert nobody[0] == 403
    assert "user=nobody, verb=get, resource=nodes, subresource(s)=[proxy]" in nobody[1]
    assert apiserver[0] == 200 and re.fullmatch(r"(line|err) \d+\n", apiserver[1])


def test_chaosraysvc_execs_only_with_the_opt_in_exec_role(
    node: Node, counter: str, tmp_path: Path
) -> None:
    """deploy/'s ServiceAccount and Role as shipped: exec refused, naming the opt-in Role;
    with deploy/exec-role.yaml bound as well: the exec runs in the pod (through this kubelet)."""
    from chaosraysvc.errors import KubernetesApiError
    from chaosraysvc.kube.client import KubeApi

    rbac = client.RbacAuthorizationV1Api(node.api)
    node.core.create_namespaced_service_account(NAMESPACE, _deploy("serviceaccount.yaml"))
    rbac.create_namespaced_role(NAMESPACE, _deploy("role.yaml"))
    rbac.create_namespaced_role_binding(NAMESPACE, _deploy("rolebinding.yaml"))
    token = node.core.create_namespaced_service_account_token(
        "chaosraysvc", NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    state = node.plane.state()
    assert state is not None
    config = kubeconfig.write(tmp_path / "sa.kubeconfig", server=state.server,
                              ca=node.plane.pki_dir / "ca.crt", token=token)  # fmt: skip
    api = KubeApi(kubeconfig.api_client(config))
    command = ["sh", "-c", "echo in-the-pod; exit 4"]

    with pytest.raises(KubernetesApiError) as refused:
        api.exec_in_pod(NAMESPACE, counter, "main", command)
    rbac.create_namespaced_role(NAMESPACE, _deploy("exec-role.yaml"))
    rbac.create_namespaced_role_binding(NAMESPACE, _deploy("exec-rolebinding.yaml"))
    allowed = wait_for(
        lambda: _try_exec(api, counter, command), 10, what="the exec Role to take effect"
    )

    assert refused.value.status == 403 and "deploy/exec-role.yaml" in str(refused.value)
    assert allowed == (4, "in-the-pod\n")  # main: 500 from the API server (no such host)


def _deploy(name: str) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all((REPO / "deploy" / name).read_text()) if d]
    for subject in doc.get("subjects", []):
        subject["namespace"] = NAMESPACE
    return dict(doc)


def _try_exec(api: Any, pod: str, command: list[str]) -> tuple[int, str] | None:
    from chaosraysvc.errors import KubernetesApiError

    try:
        result: tuple[int, str] = api.exec_in_pod(NAMESPACE, pod, "main", command)
        return result
    except KubernetesApiError as exc:
        if exc.status == 403:
            return None
        raise


# -- events -------------------------------------------------------------------------------------


def _events(node: Node, pod: str) -> list[dict[str, Any]]:
    listed = node.kubectl("get", "events", "-o", "json",
                          "--field-selector", f"involvedObject.name={pod}")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def test_pod_events_are_written_as_the_kubelet_and_scheduler_write_them(node: Node) -> None:
    node.run_pod(
        "eventful",
        "exec sleep 3600",
        container={"readinessProbe": {"exec": {"command": ["sh", "-c", "echo not-yet; exit 1"]},
                                      "periodSeconds": 1}},
    )  # fmt: skip
    node.core.create_namespaced_pod(
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "crashing"},
            "spec": {
                "containers": [
                    {"name": "main", "image": IMAGE, "command": ["bash", "-c", "exit 2"]}
                ]
            },
        },  # fmt: skip
    )
    wait_for(
        lambda: any(e["reason"] == "BackOff" for e in _events(node, "crashing")),
        60,
        what="a BackOff event for the crashing pod",
    )
    wait_for(lambda: any(e["reason"] == "Unhealthy" for e in _events(node, "eventful")), 30,
             what="an Unhealthy event")  # fmt: skip
    node.core.delete_namespaced_pod("eventful", NAMESPACE)
    wait_for(lambda: any(e["reason"] == "Killing" for e in _events(node, "eventful")), 30,
             what="a Killing event")  # fmt: skip

    events = {e["reason"]: e for e in _events(node, "eventful")}
    crashing = {e["reason"]: e for e in _events(node, "crashing")}
    described = node.kubectl("describe", "pod", "crashing").stdout

    # main: no events at all
    assert events["Scheduled"]["reportingComponent"] == "default-scheduler"
    assert events["Scheduled"]["message"] == f"Successfully assigned {NAMESPACE}/eventful to " + (
        "chaosraysvc-node"
    )
    for reason, message in (
        ("Pulled", f'Container image "{IMAGE}" already present on machine'),
        ("Created", "Created container: main"),
        ("Started", "Started container main"),
        ("Killing", "Stopping container main"),
    ):
        event = events[reason]
        assert (event["message"], event["type"]) == (message, "Normal")
        assert event["source"] == {"component": "kubelet", "host": "chaosraysvc-node"}
        assert event["involvedObject"]["fieldPath"] == "spec.containers{main}"
        assert event["involvedObject"]["uid"]
    unhealthy = events["Unhealthy"]
    assert unhealthy["type"] == "Warning"
    assert unhealthy["message"] == "Readiness probe failed: not-yet"
    assert unhealthy["count"] >= 2  # one event, counted, as client-go's correlator does
    uid = crashing["BackOff"]["involvedObject"]["uid"]
    assert crashing["BackOff"]["message"] == (
        f"Back-off restarting failed container main in pod crashing_{NAMESPACE}({uid})"
    )
    assert crashing["Started"]["count"] >= 2  # restarted at once, then backed off
    assert re.search(r"Warning\s+BackOff\s+.*kubelet\s+Back-off restarting", described)


def test_the_kubelet_lists_its_pods_through_the_node_proxy(node: Node, counter: str) -> None:
    """Kubernetes' e2e "Pods Extended Delete Grace Period" reads the kubelet's `/pods`
    through the API server's node proxy, to see that the kubelet observed a deletion."""
    pod = node.core.read_namespaced_pod(counter, NAMESPACE)
    raw = node.kubectl("get", "--raw", f"/api/v1/nodes/{pod.spec.node_name}/proxy/pods")

    assert raw.returncode == 0, raw.stderr
    listed = json.loads(raw.stdout)
    assert listed["kind"] == "PodList"
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in listed["items"]}
    assert (NAMESPACE, counter) in names
