"""The lab kubelet's pods live and die as Kubernetes pods, on the real kernel.

`PodRun` is driven directly (a stand-in node records the status it would write to the API
server; the pod network is a real namespace on a real bridge): a deletion runs the
container's preStop hook inside the container, then SIGTERM reaches PID 1 only; a container
that keeps crashing restarts at once, then after the kubelet's 10 s back-off.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc_lab import network
from chaosraysvc_lab.podrun import ContainerPlan, PodPlan, PodRun
from tests.support.polling import wait_for

from .conftest import requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]

# PID 1 notes the signals it gets in /notes (a volume), as does a child it starts.
TRAPPING = textwrap.dedent(
    """
    import os, signal, sys, time
    def note(who):
        def handler(signum, frame):
            with open(f"/notes/{who}-got", "a") as f:
                f.write(f"{signum} {time.time()}\\n")
            if who == "pid1":
                sys.exit(0)
        return handler
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, note("child"))
        while True:
            time.sleep(0.1)
    signal.signal(signal.SIGTERM, note("pid1"))
    open("/notes/started", "w").close()
    while True:
        time.sleep(0.1)
    """
)


class StandInNode:
    """What a pod needs from its node; the status it would write is kept in `statuses`."""

    def __init__(
        self, state_dir: Path, net: network.NodeNetwork, argv: list[str], notes: Path
    ) -> None:
        self.core = self
        self.node_name = "test-node"
        self.host_ip = net.gateway
        self.dns_ip = net.gateway
        self.state_dir = state_dir
        self.net = net
        self.argv = argv
        self.notes = notes
        self.statuses: list[dict[str, Any]] = []
        self.events = self  # the kubelet's EventRecorder: what it would write, in `recorded`
        self.recorded: list[tuple[str, str, str, str]] = []

    def patch_namespaced_pod_status(self, name: str, ns: str, body: dict[str, Any]) -> None:
        self.statuses.append(body["status"])

    def container(
        self, pod: dict[str, Any], container: str, kind: str, reason: str, message: str
    ) -> None:
        self.recorded.append((container, kind, reason, message))

    def add_pod_network(self, pod_uid: str) -> tuple[str, str]:
        return self.net.add_pod(7)

    def remove_pod_network(self, pod_uid: str) -> None:
        self.net.remove_pod(7)

    def resolve(self, pod: dict[str, Any], pod_ip: str, pod_dir: Path) -> PodPlan:
        spec = pod["spec"]["containers"][0]
        env = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
        mounts = [(str(self.notes), "/notes", False)]
        return PodPlan([], [ContainerPlan(spec, self.argv, env, mounts, "/")])


@pytest.fixture
def net() -> Iterator[network.NodeNetwork]:
    made = not Path("/notes").exists()  # the mountpoint the containers' /notes leaves
    net = network.NodeNetwork.pick()
    net.create()
    try:
        yield net
    finally:
        net.destroy()
        if made:
            with contextlib.suppress(OSError):
                Path("/notes").rmdir()


def _pod(container: dict[str, Any], restart_policy: str = "Always") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
        "spec": {"restartPolicy": restart_policy, "containers": [container]},
    }


def test_deletion_runs_pre_stop_inside_the_container_then_sigterm_to_pid_1_only(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    pod_tmp = tmp_path / "notes"
    pod_tmp.mkdir()
    hook = "echo $$ > /notes/pre-stop; ls /proc > /notes/pids; sleep 0.3"
    pre_stop = {"exec": {"command": ["sh", "-c", hook]}}
    container = {"name": "main", "image": "x", "lifecycle": {"preStop": pre_stop}}
    node = StandInNode(tmp_path, net, [sys.executable, "-c", TRAPPING], pod_tmp)
    run = PodRun(node, _pod(container))  # type: ignore[arg-type]
    run.start()
    try:
        wait_for(lambda: (pod_tmp / "started").exists(), 20, what="the container to start")
        started = time.monotonic()
        run.terminate(10)
        took = time.monotonic() - started
    finally:
        run.terminate(0)

    # The hook ran inside the container: its volume, its PID namespace (PID 1 is the pod's).
    pids = sorted(int(w) for w in (pod_tmp / "pids").read_text().split() if w.isdigit())
    assert pids[0] == 1 and len(pids) <= 6, pids  # PID 1, its child, the hook's sh and ls
    # PID 1 got SIGTERM, after the hook; its child got none (it died with PID 1).
    term_at = float((pod_tmp / "pid1-got").read_text().split()[1])
    assert (pod_tmp / "pre-stop").stat().st_mtime <= term_at
    assert not (pod_tmp / "child-got").exists()
    assert 0.3 <= took < 8
    assert ("main", "Normal", "Killing", "Stopping container main") in node.recorded


def test_a_crashing_container_restarts_at_once_then_after_the_kubelets_back_off(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    node = StandInNode(tmp_path, net, ["sh", "-c", "exit 3"], tmp_path)
    run = PodRun(node, _pod({"name": "main", "image": "x"}))  # type: ignore[arg-type]
    run.start()

    def container() -> dict[str, Any]:
        return node.statuses[-1]["containerStatuses"][0] if node.statuses else {}

    try:
        wait_for(
            lambda: container().get("state", {}).get("waiting", {}).get("reason")
            == "CrashLoopBackOff",
            15,
            what="CrashLoopBackOff",
            state=container,
        )
        first = container()
        time.sleep(7)  # the old node's back-off (1, 2, 4 s) restarted it twice meanwhile
        later = container()
    finally:
        run.terminate(0)

    assert first["restartCount"] == 1  # the first restart came at once
    assert "back-off 10s" in first["state"]["waiting"]["message"]
    assert first["lastState"]["terminated"]["exitCode"] == 3
    assert first["lastState"]["terminated"]["reason"] == "Error"
    assert later["restartCount"] == 1  # still waiting out the 10 s
    reasons = [reason for _, _, reason, _ in node.recorded]
    assert reasons[:6] == ["Pulled", "Created", "Started"] * 2  # the kubelet's, each start
    assert "BackOff" in reasons


class MessageNode(StandInNode):
    """Mounts the pod's termination-message file as the kubelet does."""

    def resolve(self, pod: dict[str, Any], pod_ip: str, pod_dir: Path) -> PodPlan:
        spec = pod["spec"]["containers"][0]
        message = pod_dir / "termination" / spec["name"]
        message.parent.mkdir(parents=True, exist_ok=True)
        message.write_bytes(b"")
        path = spec.get("terminationMessagePath", "/dev/termination-log")
        env = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
        return PodPlan([], [ContainerPlan(spec, self.argv, env, [(str(message), path, False)])])


@pytest.mark.parametrize(
    ("script", "policy", "code", "message"),
    [
        ("echo -n DONE > /dev/termination-log; exit 0", "File", 0, "DONE"),
        (
            "echo -n DONE > /dev/termination-custom-log; exit 1",
            "File",
            1,
            "DONE",
        ),  # a non-default path
        ("echo first; echo DONE; exit 1", "FallbackToLogsOnError", 1, "first\nDONE"),
        ("echo DONE; exit 0", "FallbackToLogsOnError", 0, None),  # success: no fallback
    ],
)
def test_a_terminated_container_reports_its_termination_message(
    net: network.NodeNetwork,
    tmp_path: Path,
    script: str,
    policy: str,
    code: int,
    message: str | None,
) -> None:
    """Kubernetes' e2e "Container Runtime blackbox test on terminated container" tests."""
    container = {"name": "main", "image": "x", "terminationMessagePolicy": policy}
    if "custom" in script:
        container["terminationMessagePath"] = "/dev/termination-custom-log"
    node = MessageNode(tmp_path, net, ["sh", "-c", script], tmp_path)
    run = PodRun(node, _pod(container, restart_policy="Never"))  # type: ignore[arg-type]
    run.start()

    def terminated() -> dict[str, Any]:
        statuses = node.statuses[-1]["containerStatuses"] if node.statuses else [{}]
        return statuses[0].get("state", {}).get("terminated") or {}

    created = [p for p in (Path("/dev/termination-log"), Path("/dev/termination-custom-log"))
               if not p.exists()]  # fmt: skip
    try:
        wait_for(lambda: "exitCode" in terminated(), 15, what="the container to end")
    finally:
        run.terminate(0)
        for mountpoint in created:  # the kubelet removes the mountpoints it made; so do we
            mountpoint.unlink(missing_ok=True)

    assert terminated()["exitCode"] == code
    assert terminated().get("message") == message


def test_readiness_is_probed_while_the_pod_terminates(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    """Kubernetes' e2e "should mark readiness on pods to false while pod is in progress of
    terminating": the kubelet goes on probing during the grace period; a container that fails
    its readiness probe while it drains turns the pod NotReady before it exits."""
    notes = tmp_path / "notes"
    notes.mkdir()
    script = ("touch /notes/ready; trap 'rm -f /notes/ready; sleep 6; exit 0' TERM; "
              "while true; do sleep 0.1; done")  # fmt: skip
    probe = {"exec": {"command": ["cat", "/notes/ready"]}, "periodSeconds": 1,
             "failureThreshold": 1}  # fmt: skip
    container = {"name": "main", "image": "x", "readinessProbe": probe}
    node = StandInNode(tmp_path, net, ["sh", "-c", script], notes)
    run = PodRun(node, _pod(container))  # type: ignore[arg-type]
    run.start()

    def ready() -> bool | None:
        if not node.statuses:
            return None
        return next(c["status"] == "True" for c in node.statuses[-1]["conditions"]
                    if c["type"] == "Ready")  # fmt: skip

    stopping = threading.Thread(target=run.terminate, args=(10,), daemon=True)
    try:
        wait_for(lambda: ready() is True, 20, what="the pod to be Ready")
        stopping.start()
        wait_for(lambda: ready() is False, 5, what="Ready=False during the grace period")
        still_running = stopping.is_alive()  # the container drains for 6 s yet
    finally:
        stopping.join(15)
        run.terminate(0)

    assert still_running


def test_a_startup_probe_holds_the_other_probes_until_it_succeeds(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    """Kubernetes' e2e startupProbe tests: no readiness or liveness probe runs (and the
    container is not `started`) until the startup probe succeeds; then readiness at once."""
    notes = tmp_path / "notes"
    notes.mkdir()
    every_second = {"periodSeconds": 1, "failureThreshold": 1}
    container = {
        "name": "main", "image": "x",
        "startupProbe": {"exec": {"command": ["cat", "/notes/up"]}, "periodSeconds": 1,
                         "failureThreshold": 30},
        "readinessProbe": {"exec": {"command": ["true"]}, **every_second},
        "livenessProbe": {"exec": {"command": ["cat", "/notes/up"]}, **every_second},
    }  # fmt: skip
    node = StandInNode(tmp_path, net, ["sh", "-c", "sleep 600"], notes)
    run = PodRun(node, _pod(container))  # type: ignore[arg-type]
    run.start()

    def main() -> dict[str, Any]:
        return node.statuses[-1]["containerStatuses"][0] if node.statuses else {}

    try:
        wait_for(lambda: "running" in main().get("state", {}), 20, what="the container to run")
        time.sleep(3)  # the liveness probe would have restarted it three times by now
        before = main()
        (notes / "up").touch()
        wait_for(lambda: main().get("ready") is True, 5, what="Ready after the startup probe")
        after = main()
    finally:
        run.terminate(0)

    assert (before["started"], before["ready"], before["restartCount"]) == (False, False, 0)
    assert (after["started"], after["restartCount"]) == (True, 0)


def test_a_post_start_hook_runs_inside_the_container_and_a_failing_one_kills_it(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    """Kubernetes' e2e "should execute poststart exec hook properly" (and its failure rule)."""
    notes = tmp_path / "notes"
    notes.mkdir()
    ok = {"exec": {"command": ["sh", "-c", "ls /proc > /notes/post-start"]}}
    node = StandInNode(tmp_path, net, ["sh", "-c", "sleep 600"], notes)
    run = PodRun(node, _pod({"name": "main", "image": "x", "lifecycle": {"postStart": ok}}))  # type: ignore[arg-type]
    run.start()
    try:
        wait_for(lambda: (notes / "post-start").exists(), 20, what="the postStart hook")
    finally:
        run.terminate(0)
    pids = sorted(int(w) for w in (notes / "post-start").read_text().split() if w.isdigit())
    assert pids[0] == 1  # inside the container's PID namespace

    failing = {"exec": {"command": ["false"]}}
    node = StandInNode(tmp_path, net, ["sh", "-c", "sleep 600"], notes)
    pod = _pod({"name": "main", "image": "x", "lifecycle": {"postStart": failing}})
    pod["spec"]["terminationGracePeriodSeconds"] = 1  # sh as PID 1 ignores SIGTERM
    run = PodRun(node, pod)  # type: ignore[arg-type]
    run.start()
    try:
        wait_for(lambda: any(r == "FailedPostStartHook" for _, _, r, _ in node.recorded), 20,
                 what="FailedPostStartHook")  # fmt: skip
        wait_for(lambda: bool(node.statuses)
                 and node.statuses[-1]["containerStatuses"][0]["restartCount"] >= 1, 20,
                 what="the container killed and restarted")  # fmt: skip
    finally:
        run.terminate(0)


def test_active_deadline_fails_the_pod_and_readiness_gates_hold_ready(
    net: network.NodeNetwork, tmp_path: Path
) -> None:
    """Kubernetes' e2e "should allow activeDeadlineSeconds to be updated" and "should support
    pod readiness gates": Ready waits for the gate's condition; past its deadline the pod
    fails with reason DeadlineExceeded."""
    node = StandInNode(tmp_path, net, ["sh", "-c", "sleep 600"], tmp_path)
    pod = _pod({"name": "main", "image": "x"})
    pod["spec"].update(terminationGracePeriodSeconds=1, activeDeadlineSeconds=3,
                       readinessGates=[{"conditionType": "example.com/gate"}])  # fmt: skip
    run = PodRun(node, pod)  # type: ignore[arg-type]
    run.start()

    def condition(kind: str) -> str:
        return next((c["status"] for c in node.statuses[-1]["conditions"] if c["type"] == kind),
                    "") if node.statuses else ""  # fmt: skip

    try:
        wait_for(lambda: condition("ContainersReady") == "True", 20, what="ContainersReady")
        gated = condition("Ready")
        wait_for(lambda: node.statuses[-1].get("phase") == "Failed", 10, what="the deadline")
        failed = node.statuses[-1]
    finally:
        run.terminate(0)

    assert gated == "False"
    assert failed["reason"] == "DeadlineExceeded"
