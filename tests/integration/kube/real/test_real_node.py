"""The experiments, unchanged, through the kubernetes target on the real one-machine node.

`chaosraysvc-lab node up` brings up the control plane, the real KubeRay operator and our
process kubelet running KubeRay's HA sample; `chaos run` then uses the kubernetes target as a
user would, with the settings `up` wrote. The real operator recreates the deleted pods.
`chaosraysvc-lab node down` must leave no process, network namespace, link, route or mount
point behind.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosraysvc import rollout
from chaosraysvc.targets import resolve_target
from chaosraysvc_lab import binaries, kubeconfig, network
from chaosraysvc_lab.agent import try_lock
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for
from tests.support.terminal import Terminal
from tests.support.wheel import WheelVenv

from .conftest import requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]
REPO = Path(__file__).resolve().parents[4]
CHAOS = Path(sys.executable).parent / "chaos"


# What `ray start` prints when its raylet timed out waiting for the dashboard agent.
STARTUP_TIMEOUT = "timed out during startup"
# The most requests one worker kill lost on the node (docs/findings.md, night): 16, plus margin.
WORST_WORKER_KILL = 20


def _settings(env_file: Path) -> dict[str, str]:
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in env_file.read_text().split("\n")
        if line
    )
    return {key: (shlex.split(value) or [""])[0] for key, value in pairs}


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Path, dict[str, str]]]:
    state_dir = Path(tempfile.mkdtemp(prefix="crs-node-"))
    up = subprocess.run(
        # no Prometheus: these tests measure the node as the findings did (docs/metrics.md)
        [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "up", "--state-dir", str(state_dir),
         "--prometheus-scrape-interval", "0"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "RayService Ready in" in up.stdout
        yield state_dir, _settings(state_dir / "kube.env")
    finally:
        index = (
            json.loads((state_dir / "node.json").read_text()).get("node_index", 0)
            if (state_dir / "node.json").exists()
            else 0
        )
        down = subprocess.run(
            [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "down", "--state-dir",
             str(state_dir)], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        leftovers = KubeNode(state_dir).down()
        assert down.returncode == 0 and not leftovers, down.stdout + down.stderr
        # Checked under the machine's node lock: a node waiting for it (a campaign, another
        # test) may have taken the same index and route the moment this one went down.
        lock = try_lock()
        try:
            if index and lock is not None:
                net = network.NodeNetwork(index)
                assert net.bridge not in network.ip("link", "show", check=False)
                assert net.netns_prefix not in network.ip("netns", "list", check=False)
            if lock is not None:
                assert "198.19.0.0/20" not in network.ip("route", "show", "table", "local")
        finally:
            if lock is not None:
                lock.close()
        shutil.rmtree(state_dir, ignore_errors=True)


def _run(
    experiment: str,
    settings: dict[str, str],
    tmp_path: Path,
    timeout: float = 900,
    chaos: Path = CHAOS,
    **extra: str,
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {**settings, "RAYSVC_RECOVERY_TIMEOUT": str(NODE_RECOVERY_BUDGET_S)}
    env.update(extra)
    done = subprocess.run(
        [str(chaos), "run", "--journal-path", str(tmp_path / "journal.json"),
         str(REPO / "experiments" / experiment)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert (tmp_path / "journal.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    journal: dict[str, Any] = json.loads((tmp_path / "journal.json").read_text())
    return journal


def _action(journal: dict[str, Any], name: str) -> dict[str, Any]:
    run = next(r for r in journal["run"] if r["activity"]["name"] == name)
    assert run["status"] == "succeeded", run
    output: dict[str, Any] = run["output"]
    return output


def _replaced(journal: dict[str, Any], action: str, role: str) -> dict[str, Any]:
    """Return the output of the delete `action`: a pod of `role` deleted, a new one recovered."""
    deleted = _action(journal, action)
    assert deleted["deleted"]["role"] == role
    assert deleted["recovery"]["recovered"] is True
    assert deleted["recovery"]["new_pod"] != deleted["deleted"]["name"]  # a new pod, not it
    return deleted


def _traffic(journal: dict[str, Any]) -> dict[str, Any]:
    rollback = next(r for r in journal["rollbacks"] if r["activity"]["name"] == "stop-traffic")
    output: dict[str, Any] = rollback["output"]
    return output


# -- KubeRay's "RayService high availability" guide, steps 4-7, typed as a user types them ------

SERVE_SVC = "rayservice-ha-serve-svc"
HEAD_SVC = "rayservice-ha-head-svc"
DASHBOARD_PORT = 8265
# Step 7.1 of the guide, verbatim.
DELETE_HEAD = (
    "export HEAD_POD=$(kubectl get pods --selector=ray.io/node-type=head "
    "-o custom-columns=POD:metadata.name --no-headers)\n"
    "kubectl delete pod $HEAD_POD\n"
)
QUERY_LINE = r"req_index : (\d+), num_fail: (\d+)"  # what the sample's query.py prints
RESPONSE_LINE = r"response: (.*)"
# Serve proxy's HTTP 408 body (ray/serve/_private/http_util.py), e.g. `Request <id> timed out .`
SERVE_ERROR_ANSWER = r"Request [0-9a-f-]+ timed out (after [0-9.]+s)?\."
JOIN_STALL_S = 15.0  # Serve's error answers must all come within one join stall this long
FRUIT_DEPLOYMENTS = {"MangoStand", "OrangeStand", "PearStand", "FruitMarket"}
# Recovery budget of the experiments run here: a new head on this node under a full test run
# took 17-146 s to be Ready (campaign-node-kill-grace30.json), over the experiments' 180 s once
# on a fresh clone (issue 25 item 13). What a run recovers in is printed, not bounded here.
NODE_RECOVERY_BUDGET_S = 420
RESPONSES_EACH_PHASE = 20  # "response: 12" lines awaited before the deletion and after recovery


def _user_env(settings: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The user's shell: `kubectl` first on PATH (v1.34.2, built with the control plane) and
    KUBECONFIG from the node's kube.env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(binaries.binary_dir() / "kubectl")
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "KUBECONFIG": settings["KUBECONFIG"], "PATH": path}


def _typed(line: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `line` as typed at the user's shell (bash) on the host."""
    return subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, env=env, timeout=timeout
    )


def _head_and_workers(core: Any, namespace: str) -> tuple[str, str, list[str]]:
    """Return (head pod, its IP, the workers' IPs) of the Ready Ray pods not being deleted."""
    pods = core.list_namespaced_pod(
        namespace, label_selector="ray.io/node-type in (head,worker)"
    ).items
    ready = [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    heads = [p for p in ready if p.metadata.labels["ray.io/node-type"] == "head"]
    workers = sorted(p.status.pod_ip for p in ready if p not in heads)
    if len(heads) != 1:
        return "", "", workers
    return heads[0].metadata.name, heads[0].status.pod_ip, workers


def _described_endpoints(env: dict[str, str]) -> tuple[set[str], str]:
    """Step 4.1: `kubectl describe svc rayservice-ha-serve-svc`; return its Endpoints and all
    it printed."""
    described = _typed(f"kubectl describe svc {SERVE_SVC}", env)
    assert described.returncode == 0, described.stdout + described.stderr
    found = re.search(r"^Endpoints:[ \t]*(.*)$", described.stdout, re.M)
    assert found, described.stdout
    return {e for e in found.group(1).strip().split(",") if e and e != "<none>"}, described.stdout


def _local_port(preferred: int) -> int:
    """Return `preferred` when nothing listens on it on 127.0.0.1, else a free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dashboard_through_port_forward(
    env: dict[str, str], port: int
) -> tuple[str, str, dict[str, Any]]:
    """Step 5: `kubectl port-forward svc/rayservice-ha-head-svc <port>:8265`, then what a
    browser loads: the dashboard's page and the Serve view's data. Return (kubectl's first line,
    the page, /api/serve/applications/). The kubectl process started here is ended by its PID."""
    forward = subprocess.Popen(
        ["kubectl", "port-forward", f"svc/{HEAD_SVC}", f"{port}:8265"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        ready, _, _ = select.select([forward.stdout], [], [], 60)
        line = forward.stdout.readline().strip() if ready else ""
        if not line.startswith(f"Forwarding from 127.0.0.1:{port} -> 8265"):
            forward.terminate()
            _, err = forward.communicate(timeout=10)
            raise AssertionError(f"kubectl port-forward printed {line!r}, stderr {err!r}")
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/", timeout=30) as answer:
            page = answer.read().decode(errors="replace")
        with urllib.request.urlopen(f"{base}/api/serve/applications/", timeout=30) as answer:
            applications: dict[str, Any] = json.loads(answer.read())
        return line, page, applications
    finally:
        if forward.poll() is None:
            forward.terminate()
        forward.wait(10)


def _recovered(core: Any, namespace: str, old_head: str, env: dict[str, str]) -> str:
    """Return what `kubectl describe svc` printed once a new head is Ready and the serve
    Service lists the new head and both workers again, else ""."""
    head, head_ip, workers = _head_and_workers(core, namespace)
    if not head or head == old_head or len(workers) != 2:
        return ""
    endpoints, described = _described_endpoints(env)
    return described if endpoints == {f"{ip}:8000" for ip in (head_ip, *workers)} else ""


def test_kuberay_ha_guide_steps_4_to_7_as_a_user_types_them(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """KubeRay's "RayService high availability" quickstart, steps 4-7, on the node right after
    `node up` (its step 3), with kubectl v1.34.2 and the node's KUBECONFIG, as a user types them:

    4. `kubectl describe svc rayservice-ha-serve-svc`: 3 endpoints, the head and both workers.
    5. `kubectl port-forward svc/rayservice-ha-head-svc 8265:8265`, then the dashboard: (1) head
       and workers each have a proxy, (2) only workers have Serve replicas, (3) each worker has
       one replica of each deployment. Deviations: on 127.0.0.1 (kubectl's default) rather than
       the guide's `--address 0.0.0.0`, which would open the dashboard to the machine's
       network; and on a free local port instead of 8265 when something listens there.
    6. `kubectl exec -it ray-pod -- bash`, then `python3 samples/query.py` typed into it (in a
       pseudo-terminal, so the loop prints line by line as it does for a user; the name
       `rayservice-ha-serve-svc` resolves through CoreDNS, the request goes through
       kube-proxy): `req_index : N, num_fail: 0` and `response: 12` lines.
    7. Step 7.1's two lines verbatim (`kubectl delete pod $HEAD_POD`, default grace period)
       while query.py runs; query.py is stopped with Ctrl-C once the new head is back in the
       serve Service and 20 more requests succeeded, then `exit` (kubectl is killed by its PID
       if it does not end; nothing of query.py may be left in the pod).

    What the guide says the user sees after step 7: the loop goes on and "`num_fail` is highly
    likely to be 0" (only a request in the head's proxy can fail: the head has no replicas).
    The sample keeps the head in the serve Service (no `excludeHeadPodFromServeSvc`). Asserted:
    the loop goes on through the deletion and the recovery (no stall: 20 answers after the
    head is back), `num_fail` is 0 (no exception: every request got an HTTP answer), and every
    answer is `12` but for Serve's timeout answers (408) within one stall of at most 15 s:
    what our head-kill campaigns on this node saw is 0 or 1 failed request per kill
    (docs/findings.md); a fresh-clone CI run of this test got one `Request <id> timed out .`
    (HTTP 408 from a Serve proxy, 5.2 s) as the new head entered the serve Service, 71.4 s
    after the deletion, among 2,941 answers; a `make test` here two, in one 6 s gap at +68.9 s.
    Here the head gets the default 30 s grace (its `ray start --block` drains its proxy on
    SIGTERM) and query.py opens a new connection per request, which kube-proxy sends to a ready
    endpoint only.
    """
    from kubernetes import client

    _, settings = node
    namespace = settings["RAYSVC_NAMESPACE"]
    env = _user_env(settings, tmp_path)
    core = client.CoreV1Api(kubeconfig.api_client(Path(settings["KUBECONFIG"])))
    head, head_ip, workers = _head_and_workers(core, namespace)
    assert head and len(workers) == 2, (head, workers)

    # Step 4: the serve Service's endpoints are the head and the two workers.
    endpoints, described = _described_endpoints(env)
    assert endpoints == {f"{ip}:8000" for ip in (head_ip, *workers)}, described

    # Step 5: the dashboard through kubectl port-forward, and what the guide says to check there.
    port = _local_port(DASHBOARD_PORT)
    forwarding, page, applications = _dashboard_through_port_forward(env, port)
    assert "<title>Ray Dashboard</title>" in page, page[:500]
    proxies = {p["node_ip"]: p["status"] for p in applications["proxies"].values()}
    assert proxies == dict.fromkeys((head_ip, *workers), "HEALTHY"), applications["proxies"]
    deployments = applications["applications"]["fruit_app"]["deployments"]
    assert set(deployments) == FRUIT_DEPLOYMENTS, sorted(deployments)
    for name, deployment in deployments.items():
        placed = sorted(r.get("node_ip") for r in deployment["replicas"] if r["state"] == "RUNNING")
        assert placed == workers, (name, deployment["replicas"])

    # Step 6: the query loop in the ray-pod.
    shell = Terminal.start(["kubectl", "exec", "-it", "ray-pod", "--", "bash"], env)
    try:
        wait_for(shell.printed_anything, 60, what="the ray-pod's shell prompt", interval=0.2)
        started = time.monotonic()
        shell.type("python3 samples/query.py\r")

        def answers(since: float) -> int:
            return len(shell.matches(r"response: 12", since))

        wait_for(
            lambda: answers(started) >= RESPONSES_EACH_PHASE, 60, interval=0.2,
            what="query.py's first answers", state=lambda: shell.text(started)[-3000:],
        )  # fmt: skip

        # Step 7: delete the head, as the guide types it, while query.py runs.
        deleting = time.monotonic()
        deleted = _typed(DELETE_HEAD, env, timeout=180)
        deleted_s = time.monotonic() - deleting
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert re.match(rf'pod "{head}" deleted', deleted.stdout), deleted.stdout
        described_after = wait_for(
            lambda: _recovered(core, namespace, head, env), 300, interval=1,
            what="a new head Ready and back in the serve Service",
            state=lambda: (_head_and_workers(core, namespace), shell.text(deleting)[-1500:]),
        )  # fmt: skip
        recovered_s = time.monotonic() - deleting
        recovered = time.monotonic()
        wait_for(
            lambda: answers(recovered) >= RESPONSES_EACH_PHASE, 120, interval=0.2,
            what="query.py's answers after the recovery",
            state=lambda: shell.text(deleting)[-3000:],
        )  # fmt: skip
        stopping = time.monotonic()
        shell.interrupt()
        wait_for(
            lambda: "KeyboardInterrupt" in shell.text(stopping), 30, interval=0.2,
            what="query.py to stop on Ctrl-C", state=lambda: shell.text(stopping)[-2000:],
        )  # fmt: skip
        shell.type("exit\r")
        shell.close(30)
    finally:
        shell.close(0)  # killed by its PID if it still runs; the kubelet then ends its command
    left = _typed("kubectl exec ray-pod -- pgrep -af samples/query.py", env)
    assert left.returncode == 1, f"query.py still runs in the ray-pod: {left.stdout}"

    run = [line for line in shell.snapshot() if started <= line.at < stopping]
    counts = [(line.at, m) for line in run if (m := re.fullmatch(QUERY_LINE, line.text))]
    assert counts, shell.text(started)
    requests, num_fail = int(counts[-1][1][1]), int(counts[-1][1][2])
    answered = [(line.at, m[1]) for line in run if (m := re.fullmatch(RESPONSE_LINE, line.text))]
    responses = [text for _, text in answered]
    first = counts[0][0]
    other = [
        line.text
        for line in run
        if line.at >= first
        and line.text.strip()
        and not re.fullmatch(f"{QUERY_LINE}|{RESPONSE_LINE}", line.text)
    ]  # what query.py printed for a failed request: the exception
    gaps = [(b[0] - a[0], a[0] - deleting) for a, b in itertools.pairwise(counts)]
    longest, at = max(gaps)
    summary = (
        f"{requests} requests, num_fail {num_fail}, {len(other)} other line(s) {other[:5]}, "
        f"non-12 answers {[r for r in responses if r != '12'][:5]}; `kubectl delete` took "
        f"{deleted_s:.1f} s, head back in the serve Service after {recovered_s:.1f} s; longest "
        f"gap between requests {longest:.2f} s, {at:+.1f} s from the deletion"
    )
    print("quickstart on the real node:", summary)
    print("step 4:", described.split("Endpoints:", 1)[1].splitlines()[0].strip())
    print("step 5:", forwarding)
    after = re.findall(r"Endpoints:.*", described_after)
    print("step 7:", deleted.stdout.strip(), "| after:", after)
    print("query.py, last lines before Ctrl-C:", [line.text for line in run[-4:]])

    assert num_fail == 0 and not other, summary
    errors = [(at, r) for at, r in answered if r != "12"]
    assert all(re.fullmatch(SERVE_ERROR_ANSWER, r) for _, r in errors), summary
    # Serve's 408s of one join stall (2 in one run of make test, within 6 s), never more
    span = errors[-1][0] - errors[0][0] if errors else 0.0
    assert span <= JOIN_STALL_S, f"Serve's error answers over {span:.1f} s: {summary}"


def test_gcs_kill_through_pods_exec_restarts_only_the_head_in_place(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """KubeRay's HA test on the real node: `pkill gcs_server` in the head through pods/exec
    (the kubelet API), then the same head pod restarted in place and every pod Ready.
    Second in this module, after the quickstart's head deletion, so on the operator's new head.
    KubeRay's test asserts restartCount 0 before and 1 after; here the count is compared with
    the one before the kill, because on this node a new head's first `ray start` can fail
    under CPU load and be restarted by the kubelet before this test begins (its raylet waits
    15 s for the dashboard agent's port file, then exits: docs/findings.md), which says
    nothing about what the kill restarted. Main refused the kill on Kubernetes."""
    from kubernetes import client

    _, settings = node
    core = client.CoreV1Api(kubeconfig.api_client(Path(settings["KUBECONFIG"])))
    selector = "ray.io/node-type in (head,worker)"

    def restarts() -> dict[str, int]:
        pods = core.list_namespaced_pod(settings["RAYSVC_NAMESPACE"], label_selector=selector)
        return {
            p.metadata.name: sum(c.restart_count for c in p.status.container_statuses or [])
            for p in pods.items
        }

    before = restarts()
    journal = _run("gcs-kill.json", settings, tmp_path)

    killed = _action(journal, "kill-gcs-server")
    head = killed["killed"]["pod"]
    assert killed["target"] == "kubernetes" and killed["killed"]["process"] == "gcs_server"
    assert killed["recovery"]["recovered"] is True
    assert killed["recovery"]["new_pod"] == head  # the same pod, restarted in place
    after = restarts()
    # KubeRay's: 0, then 1. More than one means a restarted `ray start` failed after the kill
    # (on this loaded node its raylet can time out waiting for the dashboard agent: findings).
    # Only the previous instance's log is kept: it must show that failure, not a second kill.
    assert after[head] >= before[head] + 1, (before, after)
    if after[head] > before[head] + 1:
        previous = core.read_namespaced_pod_log(
            head, settings["RAYSVC_NAMESPACE"], container="ray-head", previous=True
        )
        print(f"head restarted {after[head] - before[head]} times after the kill; the previous "
              f"instance's last lines:", previous.splitlines()[-12:])  # fmt: skip
        assert STARTUP_TIMEOUT in previous, previous[-3000:]
    assert {n: c for n, c in after.items() if n != head} == {
        n: c for n, c in before.items() if n != head
    }
    pods = core.list_namespaced_pod(settings["RAYSVC_NAMESPACE"], label_selector=selector).items
    assert all(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        for p in pods
    )
    probe = next(
        p for p in journal["steady_states"]["after"]["probes"]
        if p["activity"]["name"] == "no-restart-but-the-head"
    )  # fmt: skip
    # The probe is KubeRay's assertion (the head restarted once, nothing else): a second restart
    # of the head (the failed `ray start` shown above) is a deviation it must report.
    assert probe["tolerance_met"] is (after[head] == before[head] + 1), (probe, before, after)
    traffic = _traffic(journal)
    print("gcs-kill on the real node:", killed["recovery"]["seconds_to"], traffic["failures"],
          "failed of", traffic["requests"], "restarts before/after:", before, after)  # fmt: skip


def test_head_kill_through_the_kubernetes_target_the_real_operator_recreates_the_head(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node

    journal = _run("head-kill.json", settings, tmp_path)

    assert journal["status"] in ("completed", "failed"), journal["status"]
    deleted = _replaced(journal, "delete-head-pod", "head")  # the real operator's new head
    assert deleted["target"] == "kubernetes"
    recovery = deleted["recovery"]
    assert {"pod_ready", "endpoints_restored", "applications_running"} <= set(
        recovery["seconds_to"]
    )
    traffic = _traffic(journal)
    assert traffic["requests"] > 500
    # One run is no proof of zero: at most 1% failed (docs/findings.md gives the spread).
    assert traffic["failures"] <= traffic["requests"] // 100, traffic
    print("head-kill on the real node:", recovery["seconds_to"], traffic["failures"])


def test_worker_kill_from_the_extensions_wheel_through_the_kubernetes_target_recovers(
    node: tuple[Path, dict[str, str]], tmp_path: Path, user_wheel: WheelVenv
) -> None:
    # `chaos` of a fresh venv holding only the extension's wheel: a cluster needs no lab code.
    _, settings = node

    journal = _run("worker-kill.json", settings, tmp_path, chaos=user_wheel.bin / "chaos")

    _replaced(journal, "delete-worker-pod", "worker")
    traffic = _traffic(journal)
    # A worker kill on this node is not free: 1-2 lost requests in most runs, and in 6 of 80
    # campaign runs a surviving proxy lost 7-16 in a row for 12-30 s (docs/findings.md,
    # "Measured again (2026-12-05, night)"). More than that is an outage we have not seen.
    assert traffic["failures"] <= WORST_WORKER_KILL, traffic


def test_redis_kill_on_the_real_node_loses_the_state_as_the_doctor_predicts(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node

    journal = _run("redis-kill.json", settings, tmp_path)

    # the ReplicaSet's new Redis, a new cluster, Serve back
    recovery = _replaced(journal, "delete-redis-pod", "redis")["recovery"]
    # The sample's Redis has no volume (the doctor's gcs-storage-ephemeral): the GCS state goes
    # with it, the head starts a new cluster and Serve is redeployed, so requests fail.
    traffic = _traffic(journal)
    assert journal["deviated"] is True and traffic["failures"] > 0, traffic
    print("redis-kill on the real node:", recovery["seconds_to"], traffic["failures"], "of",
          traffic["requests"])  # fmt: skip


def test_an_upgrade_under_traffic_moves_everything_to_the_new_cluster(
    node: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings = node

    # KubeRay deletes the old cluster 60 s after the switch: about 3 min in all, idle.
    journal = _run("upgrade.json", settings, tmp_path, 900, RAYSVC_UPGRADE_TIMEOUT="600")

    upgraded = _action(journal, "upgrade-rayservice")
    old, new = upgraded["upgraded"]["from_cluster"], upgraded["upgraded"]["to_cluster"]
    assert new and new != old  # the real operator rolled out a new RayCluster
    recovery = upgraded["recovery"]
    assert recovery["recovered"] is True
    assert {*rollout.MILESTONES, "old_cluster_deleted"} <= set(recovery["seconds_to"])
    # The kubernetes target follows the active cluster: its pods and serve endpoints.
    for key in ("KUBECONFIG", "RAYSVC_TARGET", "RAYSVC_NAME", "RAYSVC_NAMESPACE"):
        monkeypatch.setenv(key, settings[key])
    target = resolve_target({}, None)
    assert target.ray_clusters() == (new, "")
    ray_pods = [p for p in target.pods() if p.role != "redis"]
    assert ray_pods and {p.labels["ray.io/cluster"] for p in ray_pods} == {new}
    names = {p.name for p in ray_pods}
    assert {e.pod_name for e in target.serve_endpoints() if e.ready} <= names
    assert not target.cluster_pods(old)
    traffic = _traffic(journal)
    assert traffic["requests"] > 500
    assert traffic["failures"] <= traffic["requests"] // 100, traffic
    print("upgrade on the real node:", recovery["seconds_to"], traffic["failures"], "failed of",
          traffic["requests"])  # fmt: skip


def _apply_deploy(api: Any) -> None:
    from kubernetes import utils

    for name in ("serviceaccount", "role", "rolebinding", "pvc", "cronjob"):
        for doc in (
            d for d in yaml.safe_load_all((REPO / "deploy" / f"{name}.yaml").read_text()) if d
        ):
            utils.create_from_dict(api, doc, namespace="default")


def test_the_cronjob_runs_head_kill_in_the_cluster_and_leaves_a_report_on_the_pvc(
    node: tuple[Path, dict[str, str]],
) -> None:
    from kubernetes import client

    state_dir, settings = node
    api = kubeconfig.api_client(Path(settings["KUBECONFIG"]))
    _apply_deploy(api)
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job("chaosraysvc-head-kill", "default")
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name="head-kill-now",
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[client.V1OwnerReference(
                api_version="batch/v1", kind="CronJob", name=cron.metadata.name,
                uid=cron.metadata.uid, controller=True)],
        ),
        spec=cron.spec.job_template.spec,
    )  # fmt: skip
    # The CronJob's 180 s recovery budget is for a cluster; this node under a full test run
    # has taken 17-146 s to bring a new head to Ready (docs/findings.md: two head restarts of
    # ten with a 70-92 s stall in `ray start` before gcs_server started), and one fresh-clone
    # `make test` ran out of the 180 s (issue 25 item 13). The budget here follows the node.
    (container,) = job.spec.template.spec.containers
    budget = next(e for e in container.env if e.name == "RAYSVC_RECOVERY_TIMEOUT")
    budget.value = str(NODE_RECOVERY_BUDGET_S)
    batch.create_namespaced_job("default", job)

    def finished() -> str:
        status = batch.read_namespaced_job("head-kill-now", "default").status
        for condition in status.conditions or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return str(condition.type)
        return ""

    job_budget = 300 + 2 * NODE_RECOVERY_BUDGET_S  # the action's wait, then the rollback's
    outcome = wait_for(finished, job_budget, interval=2, what="the Job to finish")

    runs = sorted((state_dir / "node" / "pvc" / "default" / "chaosraysvc-artifacts").iterdir())
    assert len(runs) == 1, runs
    journal = json.loads((runs[0] / "journal.json").read_text())
    assert (runs[0] / "journal-traffic.jsonl").stat().st_size > 0
    deleted = _action(journal, "delete-head-pod")
    report = (runs[0] / "report.html").read_text()
    assert journal["experiment"]["title"] in report
    # The target the in-cluster run used, as the report's configuration table shows it.
    assert deleted["target"] == "kubernetes"
    assert ">kubernetes<" in report, journal["experiment"].get("configuration")
    assert deleted["recovery"]["recovered"] is True
    assert outcome == ("Failed" if journal["deviated"] else "Complete")
    seconds = deleted["recovery"]["seconds_to"]["applications_running"]
    print("CronJob run:", outcome, _traffic(journal)["requests"], _traffic(journal)["failures"],
          f"recovered in {seconds:.1f} s")  # fmt: skip


def test_prometheus_and_the_pushgateway_started_beside_the_running_node(
    node: tuple[Path, dict[str, str]],
) -> None:
    """`node metrics` on this node (up without them): both answer, every Ray pod and the
    Pushgateway are scraped, kube.env names them; the fixture's `node down` must end them
    (it asserts nothing is left). Last in the module: the other tests ran without them."""
    from chaosraysvc_lab import prometheus

    state_dir, settings = node
    assert "RAYSVC_PROMETHEUS_URL" not in settings
    started = subprocess.run(
        [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "metrics", "--state-dir",
         str(state_dir), "--prometheus-scrape-interval", "5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    now = _settings(state_dir / "kube.env")
    assert {k: v for k, v in now.items() if k in settings} == settings  # kept as they were
    url, gateway = now["RAYSVC_PROMETHEUS_URL"], now["RAYSVC_METRICS_PUSHGATEWAY"]
    assert prometheus.ready(url) and prometheus.ready(gateway)
    assert prometheus.ray_targets_up(url, 3) and prometheus.target_up(url, "pushgateway")
    again = subprocess.run(
        [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "metrics", "--state-dir",
         str(state_dir)], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode != 0 and "already runs beside the node" in again.stderr, again
