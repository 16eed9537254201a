#!/usr/bin/env python3
"""Run the experiments several times against one sandbox and tabulate what they found.

    .venv/bin/python benchmarks/experiment_campaign.py --runs 5 [--experiments head-kill,...]
        [--redis-storage persistent|ephemeral] [--exclude-head-from-serve-svc]
        [--endpoint-ports] [--traffic-endpoints serve_endpoints] [--kubernetes] [--work-dir DIR]
        [--redis single|sentinel] [--hang-duration S] [--nodes N]
        [--node-delete-after S] [--recovery-timeout S]
        [--out benchmarks/results/campaign.json]

Brings a sandbox up (its own state dir and free ports), or with `--kubernetes` the one-machine
Kubernetes node with the real KubeRay operator (run as root; experiments through the kubernetes
target), runs `chaos run` for each
experiment `--runs` times, and prints one row per run (requests, failures, failure
classes, longest failure window, brownout, time to new pod ready / endpoints restored /
applications RUNNING, wall time), then a row per experiment with the medians and the
spread of the failures (min / median / max). The sandbox is brought down at the end,
also on Ctrl-C or SIGTERM, after its Ray logs (`logs/` of every pod's temp dir, sockets
and files over 50 MB left out) are copied to `<work dir>/ray-logs`. Results are written
as JSON as they come, with the machine, the commit the code ran at, the doctor's risks
for the sandbox, and per run the load average before and after and every failed request
(its time after the deletion, error, endpoint, latency and request id). On the sandbox,
each failed request is then traced: `seen_in` lists the lines of the copied Ray logs
(Serve proxy and replica logs) that carry its request id, with the exception a logged
traceback ends in, so which proxy and replica had it can be read off the results (an empty
list: no searched Ray log names it, i.e. no proxy logged it; `logs_not_searched` lists the
files left out, over 50 MB or unreadable). On `--kubernetes` the logs of the pods still
there are copied after every run and searched (a deleted pod's /tmp, hence its Ray logs,
goes with it, as on Kubernetes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from common import machine_info

from chaosraysvc.config import Settings
from chaosraysvc.recovery import wait_until_healthy
from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import load_run
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.supervisor import temp_root
from chaosraysvc.targets.base import Target
from chaosraysvc.targets.kubernetes import KubernetesTarget
from chaosraysvc.targets.sandbox import SandboxTarget
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize
from chaosraysvc_lab.redis_ha import DOWN_AFTER_MS
from chaosraysvc_lab.stack import KubeNode

ROOT = Path(__file__).resolve().parents[1]
CHAOS = Path(sys.executable).parent / "chaos"
ACTIONS = {
    "head-kill": "delete-head-pod",
    "worker-kill": "delete-worker-pod",
    "redis-kill": "delete-redis-pod",
    "redis-hang": "hang-redis",
    "redis-partition": "partition-redis",
    "redis-failover": "kill-redis-primary",
    "drain-head-node": "drain-head-node",
    "lose-head-node": "lose-head-node",
}
# Env for every run of an experiment (the campaign's knobs for its fault), from --hang-duration.
FAULT_ENV: dict[str, dict[str, str]] = {}
RECOVERY_TIMEOUT = [240.0]  # --recovery-timeout


def ray_pods(kubeconfig: str) -> dict[str, dict[str, Any]]:
    """Return each Ray and Redis pod of the node (name -> uid, node type, restart count), so a
    run can tell whether its fault restarted a container (the GCS exiting restarts the head's)."""
    from kubernetes import client, config  # the lab's node only

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    found: dict[str, dict[str, Any]] = {}
    for pod in api.list_namespaced_pod("default").items:
        labels = pod.metadata.labels or {}
        role = labels.get("ray.io/node-type") or ("redis" if "redis" in pod.metadata.name else "")
        if not role:
            continue
        statuses = (pod.status and pod.status.container_statuses) or []
        found[pod.metadata.name] = {
            "uid": pod.metadata.uid,
            "role": role,
            "restarts": sum(c.restart_count or 0 for c in statuses),
        }
    return found


def fresh_head(target: Target) -> float:
    """Delete the head pod whose container restarted (its GCS exited in the run before) and
    wait until the RayService is healthy again; return the seconds that took (0: no restart).

    The kubelet delays a container's next restart 10 s, doubling up to 300 s, until it has run
    10 minutes: runs a few minutes apart that each end the GCS add up that back-off (seen:
    the GCS back on the new primary 8, 18, 28, 50, 90 then 174 s after the fault). A new pod
    starts with none, so each run measures one failover, not the history before it.
    """
    heads = [p for p in target.pods() if p.role == "head" and p.restarts > 0]
    if not heads:
        return 0.0
    started = time.monotonic()
    old = heads[0]
    target.delete_pod(old, grace_period=0)

    def new_head_ready() -> bool:
        return any(p.role == "head" and p.uid != old.uid and p.ready for p in target.pods())

    while not new_head_ready():  # not the old head's last status, read before it was gone
        if time.monotonic() - started > 300:
            raise RuntimeError("no new head pod was Ready 300 s after the old one's deletion")
        time.sleep(1)
    wait_until_healthy(target, 300)
    warm_up(target.settings.serve_url)
    return round(time.monotonic() - started, 1)


def warm_up(serve_url: str, steady_s: float = 30, timeout: float = 180) -> float:
    """Send the runs' request, one after another, until every one has been answered within
    the runs' 2 s for `steady_s` seconds in a row; return the seconds that took.

    A new head is Ready (and its proxy in the serve Service) before the service is steady:
    in a first campaign on Redis 7.0 (2026-12-06) the first request of 3 of 7 runs after a
    fresh head timed out, failing the steady state before the fault (not tested), and again
    in 3 of 10 runs after 10 answers in a row (most likely the new Serve controller draining
    the proxies as it recovers: "Losing the head's node", docs/findings.md). A run measures a
    fault, not the head replaced before it."""
    import urllib.error
    import urllib.request

    from chaosraysvc.traffic.settings import DEFAULT_BODY

    started = time.monotonic()
    since = started
    while time.monotonic() - since < steady_s:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the service did not answer every request within 2 s for "
                               f"{steady_s:g} s in a row in {timeout:g} s")  # fmt: skip
        request = urllib.request.Request(f"{serve_url.rstrip('/')}/fruit/",
                                         data=DEFAULT_BODY.encode(), method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=2.0) as answer:
                if answer.status != 200:
                    since = time.monotonic()
        except (OSError, urllib.error.URLError):
            since = time.monotonic()
            time.sleep(0.2)
    return round(time.monotonic() - started, 1)


def sentinels_ready(target: Target, reset: bool, timeout: float = 90) -> float:
    """Wait until a Sentinel names a primary with a replica up and sees the other Sentinels
    (a failover run starts from Sentinel-backed Redis that can fail over); with `reset`, make
    every Sentinel forget and find again its replicas and peers first (`SENTINEL RESET`).
    Return the seconds that took.

    The reset is for Redis 6.2 only, what the lab ran before 2026-12-06: its Sentinel resolves
    a host name once (redis/redis#9103, fixed in 7.0 by #10146), so after a run replaced the
    old primary's pod (a new IP under its old name) the next failover found no replica. The
    lab's `--redis sentinel` now runs Redis 7.0, which resolves it again by itself: runs
    follow each other as they would for a user, without a reset.
    """
    from chaosraysvc.activities.failover_actions import sentinel_primary_of
    from chaosraysvc.errors import ChaosRaySvcError

    started = time.monotonic()
    sentinels = [p for p in target.pods() if p.role == "redis" and p.phase == "Running"]
    for pod in sentinels if reset else []:
        target.redis_command(["SENTINEL", "RESET", "*"], timeout=5, address=f"{pod.address}:26379")
    while True:
        try:
            primary = sentinel_primary_of(target)
            if primary.sentinels >= len(sentinels):
                return round(time.monotonic() - started, 1)
        except ChaosRaySvcError:
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the Sentinels did not see a replica and each other in {timeout} s")
        time.sleep(1)


def restarts_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return, per role, the pods replaced (gone from `before`) and containers restarted."""
    out: dict[str, Any] = {}
    for name, pod in before.items():
        role = out.setdefault(pod["role"], {"replaced": 0, "restarted": 0})
        later = after.get(name)
        if later is None or later["uid"] != pod["uid"]:
            role["replaced"] += 1
        else:
            role["restarted"] += later["restarts"] - pod["restarts"]
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def commit_of(root: Path) -> dict[str, Any]:
    """Return the git commit the code runs at, and whether the work tree differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def doctor_risks(state_dir: Path, node_env: dict[str, str] | None = None) -> Any:
    """Return `chaosraysvc doctor --json` for the sandbox or the node (or the error it gave)."""
    where = (
        ("--target", "kubernetes", "--name", node_env["RAYSVC_NAME"], "--namespace",
         node_env["RAYSVC_NAMESPACE"])
        if node_env
        else ("--target", "sandbox", "--state-dir", str(state_dir))
    )  # fmt: skip
    done = subprocess.run(
        [str(Path(sys.executable).parent / "chaosraysvc"), "doctor", *where, "--json"],
        env=dict(os.environ) | (node_env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": (done.stderr or done.stdout).strip()[-2000:], "exit": done.returncode}


def copy_ray_logs(root: Path, pattern: str, dest: Path, max_bytes: int = 50 * 2**20) -> list[str]:
    """Copy every Ray `logs/` dir matching `pattern` under `root` (proxy, replica, controller,
    GCS logs) to `dest`, keeping the paths under `root`; return the files left out (over
    `max_bytes`, or unreadable), which a trace could not search."""
    skipped: list[str] = []
    for logs in root.glob(pattern):
        if logs.parent.is_symlink():  # session_latest
            continue
        for src in logs.rglob("*"):
            try:
                if not src.is_file():
                    continue
                if src.stat().st_size > max_bytes:
                    skipped.append(f"{src.relative_to(root)} (over {max_bytes} bytes)")
                    continue
                out = dest / src.relative_to(root)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
            except OSError as exc:
                skipped.append(f"{src.relative_to(root)} ({exc.strerror or exc})")
    return skipped


def copy_sandbox_logs(sandbox: Sandbox, dest: Path) -> list[str]:
    """Copy the Ray logs of every sandbox pod, deleted ones included (`<pod slot>/...`)."""
    current = sandbox.state()
    if current is None:  # the sandbox never came up
        return []
    return copy_ray_logs(temp_root(current.sandbox_id), "*/session_*/logs", dest)


def copy_node_logs(node: KubeNode, dest: Path) -> list[str]:
    """Copy the Ray logs of the node's pods (`<pod uid>/...`), on every node of the lab: the
    pods still there, as on Kubernetes a deleted pod's /tmp goes with it."""
    skipped = []
    for pods in [node.state_dir / "node" / "pods", *(node.state_dir / "workers").glob("*/pods")]:
        skipped += copy_ray_logs(pods, "*/tmp/ray/session_*/logs", dest)
    return skipped


def delete_bare_pods(kubeconfig: str) -> list[str]:
    """Delete the pods no controller owns (the sample's ray-pod): on the head's node one
    refuses a drain, as kubectl drain refuses without --force (our traffic is not theirs)."""
    from kubernetes import client

    from chaosraysvc_lab import kubeconfig as kc

    core = client.CoreV1Api(kc.api_client(Path(kubeconfig)))
    bare = [str(p.metadata.name) for p in core.list_namespaced_pod("default").items
            if not p.metadata.owner_references]  # fmt: skip
    for name in bare:
        core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    return bare


def ray_budget(kubeconfig: str, min_available: int) -> dict[str, Any]:
    """Create a PodDisruptionBudget over every Ray pod (`minAvailable`), wait until the
    disruption controller has computed it; return its name and first status."""
    from kubernetes import client

    from chaosraysvc_lab import kubeconfig as kc

    policy = client.PolicyV1Api(kc.api_client(Path(kubeconfig)))
    name = "rayservice-ha-ray-pods"
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {
            "minAvailable": min_available,
            "selector": {"matchLabels": {"ray.io/is-ray-node": "yes"}},
        },
    }
    policy.create_namespaced_pod_disruption_budget("default", body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = policy.read_namespaced_pod_disruption_budget(name, "default").status
        if status is not None and status.observed_generation:
            return {"name": name, "min_available": min_available,
                    "disruptions_allowed": status.disruptions_allowed,
                    "current_healthy": status.current_healthy}  # fmt: skip
        time.sleep(1)
    raise RuntimeError(f"PodDisruptionBudget {name} got no status from the disruption controller")


def placement(target: Target, kubeconfig: str) -> dict[str, Any]:
    """Where things were before a run: each pod's Kubernetes node and zone, and each Serve
    deployment's live replicas per Ray pod (or the error that kept it from being read)."""
    from kubernetes import client

    from chaosraysvc.serve import nodes, rest
    from chaosraysvc_lab import kubeconfig as kc

    api = kc.api_client(Path(kubeconfig))
    core = client.CoreV1Api(api)
    zones = {str(n.metadata.name): (n.metadata.labels or {}).get("topology.kubernetes.io/zone", "")
             for n in core.list_node().items}  # fmt: skip
    pods = {str(p.metadata.name): {"node": p.spec.node_name or "",
                                   "zone": zones.get(p.spec.node_name or "", "")}
            for p in core.list_namespaced_pod("default").items}  # fmt: skip
    found: dict[str, Any] = {"pods": pods}
    try:
        ray_nodes = nodes.list_nodes(target.dashboard())
        names = target.pod_names(ray_nodes)
        per_node = rest.replica_placement(rest.get_serve_details(target.dashboard()))
        found["replicas"] = {
            names.get(node_id) or node_id[:12]: {dep: len(ids) for dep, ids in deps.items()}
            for node_id, deps in per_node.items()
        }
    except Exception as exc:  # noqa: BLE001 - kept as the snapshot's own evidence
        found["replicas_error"] = repr(exc)[:300]
    return found


REQUEST_ID = re.compile(r"crs-[0-9a-f]{8}-[0-9]+")  # the traffic engine's X-Request-Id


LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) \d{4}-\d{2}-\d{2} ")
RAISED = re.compile(r"^[\w.]*(Error|Exception)\b[^:]*: ")


def _raised(lines: list[str], start: int) -> str:
    """Return the exception line of the traceback logged after `lines[start]`, or ""."""
    for line in lines[start + 1 : start + 200]:
        if LOG_RECORD.match(line):
            break
        if RAISED.match(line):
            return line.strip()[:300]
    return ""


FAILED_FIRST, FAILED_LAST = 250, 50  # failed requests written per run, of a long outage


def kept_failed(failed: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's `failed_requests`: all of them, or of a long outage (a zone lost: 17,176 in
    one run) the first `FAILED_FIRST` and the last `FAILED_LAST`, saying so in
    `failed_requests_kept` (every one stays in the run's journal-traffic.jsonl; the counts by
    class and endpoint and the failure windows are computed from all of them)."""
    if len(failed) <= FAILED_FIRST + FAILED_LAST:
        return {"failed_requests": failed}
    return {
        "failed_requests": failed[:FAILED_FIRST] + failed[-FAILED_LAST:],
        "failed_requests_kept": f"the first {FAILED_FIRST} and the last {FAILED_LAST} of "
        f"{len(failed)} (all in the run's journal-traffic.jsonl)",
    }


def trace_failed_requests(rows: list[dict[str, Any]], logs: Path, most: int = 20) -> int:
    """Add `seen_in` to every failed request with an id: the Ray log lines naming it.

    Each entry is "<path under logs>:<line number>: <line>", followed by " -> raised: <the
    exception line>" when the line opens a traceback; each line once, at most `most` per
    request. Nothing is added when `logs` is missing (nothing was searched). Return how
    many failed requests were looked for.
    """
    wanted: dict[str, list[str]] = {}
    for row in rows:
        for failed in row.get("failed_requests", []):
            if failed.get("id"):
                wanted.setdefault(failed["id"], [])
    if not wanted or not logs.is_dir():
        return len(wanted)
    for row in rows:
        for failed in row.get("failed_requests", []):
            if failed.get("id"):
                failed["seen_in"] = wanted[failed["id"]]
    for path in sorted(p for p in logs.rglob("*") if p.is_file()):
        try:
            with open(path, errors="replace") as handle:
                lines = handle.readlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            if "crs-" not in line:
                continue
            for found in set(REQUEST_ID.findall(line)):
                seen = wanted.get(found)
                if seen is None or len(seen) >= most:
                    continue
                entry = f"{path.relative_to(logs)}:{number}: {line.strip()[:400]}"
                raised = _raised(lines, number - 1)
                seen.append(entry + (f" -> raised: {raised}" if raised else ""))
    return len(wanted)


def run_once(
    name: str,
    target_env: dict[str, str],
    run_dir: Path,
    endpoints: int,
    traffic_endpoints: str = "",
) -> dict[str, Any]:
    """Run experiment `name` once with `target_env` (the sandbox dir, or the node's kube.env)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = (
        dict(os.environ)
        | target_env
        | {
            "RAYSVC_EXPECTED_ENDPOINTS": str(endpoints),
            "RAYSVC_RECOVERY_TIMEOUT": f"{RECOVERY_TIMEOUT[0]:g}",
        }
    )
    if traffic_endpoints:
        env["RAYSVC_TRAFFIC_ENDPOINTS"] = traffic_endpoints
    env |= FAULT_ENV.get(name, {})
    journal_path = run_dir / "journal.json"
    kubeconfig = target_env.get("KUBECONFIG", "")
    pods_before = ray_pods(kubeconfig) if kubeconfig else None
    started_at, load_before = _now(), _load()
    start = time.monotonic()
    subprocess.run(
        [
            str(CHAOS),
            "--no-version-check",
            "--log-file",
            str(run_dir / "chaos.log"),
            "run",
            "--journal-path",
            str(journal_path),
            str(ROOT / "experiments" / f"{name}.json"),
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        timeout=1200,
    )
    wall = time.monotonic() - start
    load_after = _load()
    pods_after = ray_pods(kubeconfig) if kubeconfig else None
    journal = json.loads(journal_path.read_text())
    log = read_traffic_log(run_dir / "journal-traffic.jsonl")
    summary = summarize(log)
    fault = next((m for m in log.marks if m["event"] == "fault"), None)
    fault_t = fault["t"] if fault else None
    action = next((r for r in journal["run"] if r["activity"]["name"] == ACTIONS[name]), None)
    output = (action or {}).get("output") or {}
    recovery = output.get("recovery") or {}
    seconds = recovery.get("seconds_to", {})
    window = summary.get("longest_failure_window") or {}
    brownout = summary.get("brownout") or {}
    return {
        "experiment": name,
        "status": journal["status"],
        **judged(journal_path),
        "requests": summary["requests"],
        "failures": summary["failures"],
        "failures_by_error": summary.get("failures_by_error", {}),
        "failure_window_s": window.get("duration_s", 0.0) if isinstance(window, dict) else 0.0,
        "brownout_s": brownout.get("duration_s", 0.0) if isinstance(brownout, dict) else 0.0,
        "pod_ready_s": seconds.get("pod_ready"),
        "endpoints_restored_s": seconds.get("endpoints_restored"),
        "applications_running_s": seconds.get("applications_running"),
        "wall_s": round(wall, 1),
        "run_dir": str(run_dir),
        "started_at": started_at,
        "load_1m_before": load_before,
        "load_1m_after": load_after,
        "fault_t": fault_t,
        "failures_by_endpoint": summary.get("failures_by_endpoint", {}),
        **kept_failed(
            [
                {
                    "t": r["t"],
                    "after_fault_s": round(r["t"] - fault_t, 3) if fault_t is not None else None,
                    "err": r["err"],
                    "code": r.get("code"),
                    "ep": r.get("ep"),
                    "ms": r.get("ms"),
                    "id": r.get("id"),
                }
                for r in log.requests
                if not r["ok"]
            ]
        ),
        "likely_causes": summary.get("likely_causes", []),
        "recovery": recovery,
        "fault_output": {k: v for k, v in output.items() if k != "recovery"},
        "fault_status": (action or {}).get("status"),
        "pods": (
            restarts_between(pods_before, pods_after)
            if pods_before is not None and pods_after is not None
            else None
        ),
    }


# A run counts in a cell only when its fault was tested: a run "Not tested" (the steady
# state did not hold before the fault) or inconclusive (the fault did not happen, or its
# evidence is incomplete) proves nothing, whatever chaoslib's `deviated` says.
TESTED = ("passed", "deviated")


def judged(journal_path: Path) -> dict[str, Any]:
    """Return the run's verdict as the report gives it: outcome, label, deviated."""
    verdict = run_figures(load_run(journal_path)).verdict
    return {
        "outcome": verdict.outcome,
        "verdict": verdict.label,
        "deviated": verdict.outcome == "deviated",
    }


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


COLUMNS = [
    "experiment",
    "verdict",
    "deviated",
    "requests",
    "failures",
    "failure_window_s",
    "brownout_s",
    "pod_ready_s",
    "endpoints_restored_s",
    "applications_running_s",
    "wall_s",
]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in dict.fromkeys(r["experiment"] for r in rows):
        mine = [r for r in rows if r["experiment"] == name]
        tested = [r for r in mine if r.get("outcome", "deviated") in TESTED]
        row: dict[str, Any] = {
            "experiment": f"{name} (median of {len(tested)} tested)",
            "verdict": f"{len(mine) - len(tested)} not tested",
            "deviated": f"{sum(r['deviated'] for r in tested)}/{len(tested)}",
        }
        mine = tested
        for col in COLUMNS[3:]:
            values = [r[col] for r in mine if isinstance(r.get(col), (int, float))]
            row[col] = statistics.median(values) if values else None
        out.append(row)
    return out


def spread(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return per experiment: runs, deviated, failures (min/median/max, list), milestones.

    Only tested runs (outcome passed or deviated) count; the others are listed by outcome,
    as are runs given a `left_out` reason by hand (e.g. disturbed by something else).
    """
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["experiment"] for r in rows):
        every = [r for r in rows if r["experiment"] == name]
        mine = [
            r for r in every if r.get("outcome", "deviated") in TESTED and not r.get("left_out")
        ]
        entry: dict[str, Any] = {
            "runs": len(mine),
            "not_counted": {
                r["run_dir"].rsplit("/", 1)[-1]: r.get("left_out") or r.get("verdict")
                for r in every
                if r not in mine
            },
            "deviated": sum(bool(r["deviated"]) for r in mine),
            "runs_with_failures": sum(1 for r in mine if r["failures"]),
            "failures_per_run": [r["failures"] for r in mine],
            "requests_total": sum(r["requests"] for r in mine),
            "failures_total": sum(r["failures"] for r in mine),
        }
        for col in (
            "failures",
            "requests",
            "failure_window_s",
            "brownout_s",
            "pod_ready_s",
            "endpoints_restored_s",
            "applications_running_s",
            "load_1m_before",
            "load_1m_after",
        ):
            values = [r[col] for r in mine if isinstance(r.get(col), (int, float))]
            entry[col] = (
                {"min": min(values), "median": statistics.median(values), "max": max(values)}
                if values
                else None
            )
        out[name] = entry
    return out


def leave_out(path: Path, run: str, reason: str) -> int:
    """Leave run `run` (its directory's name) of the result file `path` out of its cell's
    counts with `reason`, kept beside the run; rewrite the file's spread."""
    if not reason.strip():
        print(f"{path}: say why {run} is left out (a reason is kept in the file)", file=sys.stderr)
        return 2
    payload = json.loads(path.read_text())
    rows = [row for row in payload["runs"] if Path(row["run_dir"]).name == run]
    if not rows:
        names = ", ".join(Path(row["run_dir"]).name for row in payload["runs"])
        print(f"{path}: no run {run!r} (runs: {names})", file=sys.stderr)
        return 2
    rows[0]["left_out"] = reason.strip()
    payload.setdefault("notes", {}).setdefault("left_out", {})[run] = reason.strip()
    payload["spread"] = spread(payload["runs"])
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"{path}: {run} left out of its cell: {reason.strip()}")
    return 0


def rejudge(path: Path) -> int:
    """Judge each run of the result file `path` again from its journal; rewrite the file."""
    payload = json.loads(path.read_text())
    changed = []
    for row in payload["runs"]:
        journal = Path(row["run_dir"]) / "journal.json"
        if not journal.is_file():
            print(f"{path}: {journal} is gone: its run cannot be judged again", file=sys.stderr)
            return 1
        now = judged(journal)
        if any(row.get(k) != v for k, v in now.items()):
            changed.append(f"{Path(row['run_dir']).name}: {row.get('verdict')} -> {now['verdict']}")
        row.update(now)
    payload["spread"] = spread(payload["runs"])
    payload["rejudged"] = {"at": _now(), "code": commit_of(ROOT), "changed": changed}
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"{path}: {len(payload['runs'])} runs judged again, {len(changed)} changed")
    for line in changed:
        print(f"  {line}")
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--experiments", default="head-kill,worker-kill,redis-kill")
    parser.add_argument(
        "--redis-storage", choices=("persistent", "ephemeral"), default="persistent"
    )
    parser.add_argument("--exclude-head-from-serve-svc", action="store_true")
    parser.add_argument(
        "--no-network-policy",
        action="store_true",
        help="with --kubernetes: the node without kube-router (NetworkPolicies not enforced)",
    )
    parser.add_argument(
        "--ray-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --kubernetes: add this variable to every Ray container of the RayService "
        "(repeatable), for a measured comparison of a Ray setting",
    )
    parser.add_argument(
        "--endpoint-ports",
        action="store_true",
        help="each proxy on its own port behind the sandbox's kube-proxy-like Service",
    )
    parser.add_argument(
        "--traffic-endpoints",
        default="",
        help="RAYSVC_TRAFFIC_ENDPOINTS for the runs, e.g. serve_endpoints (one label per proxy)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=0,
        help="RAYSVC_GRACE_PERIOD for the runs: seconds the deleted pod gets (SIGTERM first)",
    )
    parser.add_argument(
        "--kubernetes",
        action="store_true",
        help="run on the one-machine Kubernetes node (real KubeRay operator, HA sample) "
        "through the kubernetes target instead of the process sandbox",
    )
    parser.add_argument(
        "--redis",
        choices=("single", "sentinel"),
        default="single",
        help="with --kubernetes: the GCS's Redis, the sample's one instance or a primary, a "
        "replica and three Sentinels (redis-failover needs sentinel)",
    )
    parser.add_argument(
        "--sentinel-down-after-ms",
        type=int,
        default=DOWN_AFTER_MS,
        help=f"with --redis sentinel: the Sentinels' down-after-milliseconds ({DOWN_AFTER_MS}; "
        "Redis' own default is 30000)",
    )
    parser.add_argument(
        "--sentinel-reset",
        action="store_true",
        help="redis-failover: `SENTINEL RESET` before each run (needed on Redis 6.2 only, "
        "whose Sentinel kept a replaced pod's old IP)",
    )
    parser.add_argument(
        "--fresh-head",
        action="store_true",
        help="before each run after the first, replace the head pod if its container "
        "restarted (the kubelet's restart back-off would carry over from run to run)",
    )
    parser.add_argument(
        "--hang-duration",
        type=float,
        default=0,
        help="redis-hang: seconds Redis stops answering (RAYSVC_HANG_DURATION; default the "
        "experiment's)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="with --kubernetes: nodes that run the pods (`node up --nodes`; drain-head-node "
        "needs 2 or more); the sample's bare ray-pod is deleted (it would refuse a drain)",
    )
    parser.add_argument(
        "--zones",
        type=int,
        default=0,
        help="with --nodes: the zones the nodes are spread over (`node up --zones`; 0: one "
        "per node)",
    )
    parser.add_argument(
        "--spread-zones",
        action="store_true",
        help="with --zones 3 or more: the Ray pods spread over the zones and Redis kept out "
        "of the head's zone (`node up --spread-zones`)",
    )
    parser.add_argument(
        "--ray-pdb-min-available",
        type=int,
        default=0,
        help="with --kubernetes: a PodDisruptionBudget over every Ray pod with this "
        "minAvailable (2 of the sample's 3: one disruption at a time); 0: none",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=0,
        help="drain-head-node: seconds the drain may take (RAYSVC_DRAIN_TIMEOUT; default "
        "the experiment's)",
    )
    parser.add_argument(
        "--lose-zone",
        action="store_true",
        help="lose-head-node: lose every node of the head's zone (RAYSVC_LOSE_ZONE=true)",
    )
    parser.add_argument(
        "--node-delete-after",
        type=float,
        default=None,
        help="lose-head-node: seconds after the loss the lost Node is deleted, as a cloud "
        "does (RAYSVC_NODE_DELETE_AFTER; -1: never, as on bare metal; default the experiment's)",
    )
    parser.add_argument(
        "--recovery-timeout",
        type=float,
        default=240,
        help="seconds each fault action waits for the recovery (RAYSVC_RECOVERY_TIMEOUT, 240)",
    )
    parser.add_argument("--work-dir", default="", help="run directories (default: a new /tmp dir)")
    parser.add_argument(
        "--rejudge",
        metavar="RESULT_JSON",
        default="",
        help="run nothing: judge again every run of a campaign's result file from its run "
        "directory with this code's verdict, and rewrite the file's outcomes and spread",
    )
    parser.add_argument(
        "--leave-out",
        nargs=3,
        metavar=("RESULT_JSON", "RUN", "REASON"),
        help="run nothing: leave RUN (e.g. head-kill-1) of a result file out of its cell's "
        "counts, with the REASON kept beside it (a run disturbed by something else)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "campaign.json"))
    args = parser.parse_args()
    if args.rejudge:
        return rejudge(Path(args.rejudge))
    if args.leave_out:
        result, run, reason = args.leave_out
        return leave_out(Path(result), run, reason)
    signal.signal(signal.SIGTERM, _terminate)
    if args.hang_duration:
        FAULT_ENV["redis-hang"] = {"RAYSVC_HANG_DURATION": f"{args.hang_duration:g}"}
    if args.node_delete_after is not None:
        FAULT_ENV.setdefault("lose-head-node", {})["RAYSVC_NODE_DELETE_AFTER"] = (
            f"{args.node_delete_after:g}"
        )
    if args.drain_timeout:
        FAULT_ENV["drain-head-node"] = {"RAYSVC_DRAIN_TIMEOUT": f"{args.drain_timeout:g}"}
    if args.lose_zone:
        FAULT_ENV.setdefault("lose-head-node", {})["RAYSVC_LOSE_ZONE"] = "true"
    RECOVERY_TIMEOUT[0] = args.recovery_timeout
    names = [n.strip() for n in args.experiments.split(",") if n.strip()]
    unknown = [n for n in names if n not in ACTIONS]
    if unknown:
        parser.error(f"unknown experiments {unknown}: choose from {', '.join(ACTIONS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="crs-campaign-"))
    spec = SandboxSpec(
        state_dir=work / "sandbox",
        serve_port=free_port(),
        dashboard_port=free_port(),
        redis_storage=args.redis_storage,
        head_in_serve_svc=not args.exclude_head_from_serve_svc,
        endpoint_ports=args.endpoint_ports,
    )
    sandbox = Sandbox(spec.state_dir)
    node = KubeNode(work / "node" / "kube") if args.kubernetes else None
    ray_env = dict(item.split("=", 1) for item in args.ray_env if "=" in item)
    if len(ray_env) != len(args.ray_env) or (ray_env and node is None):
        parser.error("--ray-env takes NAME=VALUE, and only with --kubernetes")
    if node is not None and (args.endpoint_ports or args.redis_storage != "persistent"):
        parser.error("--kubernetes runs KubeRay's HA sample as published: no --endpoint-ports, "
                     "and its Redis has no volume (--redis-storage does not apply)")  # fmt: skip
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    skipped: set[str] = set()  # Ray log files the trace could not search
    endpoints = 3 if spec.head_in_serve_svc else 2
    meta: dict[str, Any] = {
        "machine": machine_info(),
        "code": commit_of(ROOT),
        "command": sys.argv,
        "traffic_endpoints": args.traffic_endpoints,
        "grace_period": args.grace_period,
        "fault_env": FAULT_ENV,
        "recovery_timeout_s": RECOVERY_TIMEOUT[0],
        "work_dir": str(work),
    }
    print(json.dumps(meta), flush=True)

    def write() -> None:
        where = (
            {
                "node": {
                    "exclude_head": not spec.head_in_serve_svc,
                    "network_policy": not args.no_network_policy,
                    "ray_env": ray_env,
                    "redis": args.redis,
                    "nodes": args.nodes,
                    "zones": args.zones,
                    "spread_zones": args.spread_zones,
                    "sentinel_down_after_ms": args.sentinel_down_after_ms,
                }
            }
            if node
            else {"sandbox": spec.to_json()}
        )
        payload = meta | where | {"spread": spread(rows), "runs": rows}
        out.write_text(json.dumps(payload, indent=1) + "\n")

    try:
        target: Target
        if node is not None:
            env = node.up(
                exclude_head=not spec.head_in_serve_svc,
                network_policy=not args.no_network_policy,
                ray_env=ray_env or None,
                redis=args.redis,
                # no Prometheus: the node as the earlier campaigns measured it (docs/metrics.md)
                scrape_interval=0,
                timeout=600,
                progress=lambda m: print(m, flush=True),
                nodes=args.nodes,
                zones=args.zones,
                spread_zones=args.spread_zones,
                sentinel_down_after_ms=args.sentinel_down_after_ms,
            )
            os.environ["KUBECONFIG"] = env["KUBECONFIG"]  # for the target below
            if args.nodes > 1:
                meta["bare_pods_deleted"] = delete_bare_pods(env["KUBECONFIG"])
            if args.ray_pdb_min_available:
                meta["budget"] = ray_budget(env["KUBECONFIG"], args.ray_pdb_min_available)
            target = KubernetesTarget(
                Settings(
                    target="kubernetes",
                    rayservice_name=env["RAYSVC_NAME"],
                    rayservice_namespace=env["RAYSVC_NAMESPACE"],
                    serve_url=env["RAYSVC_SERVE_URL"],
                    dashboard_url=env["RAYSVC_DASHBOARD_URL"],
                )
            )
        else:
            sandbox.up(spec, timeout=300, progress=lambda m: print(m, flush=True))
            env = {"RAYSVC_SANDBOX_DIR": str(spec.state_dir)}
            target = SandboxTarget(Settings(sandbox_state_dir=spec.state_dir))
        meta["doctor"] = doctor_risks(spec.state_dir, env if node else None)
        for i in range(args.runs):
            for name in names:
                wait_until_healthy(target, 300)
                if args.fresh_head and rows:
                    meta.setdefault("fresh_head_s", []).append(fresh_head(target))
                if args.redis == "sentinel" and name == "redis-failover":
                    took = sentinels_ready(target, reset=args.sentinel_reset)
                    meta["sentinel_reset"] = args.sentinel_reset
                    meta.setdefault("sentinels_ready_s", []).append(took)
                print(f"run {i + 1}/{args.runs}: {name} ...", flush=True)
                run_dir = work / f"{name}-{i + 1}"
                before = placement(target, env["KUBECONFIG"]) if node is not None else None
                try:
                    row = run_once(
                        name,
                        env | {"RAYSVC_GRACE_PERIOD": str(args.grace_period)},
                        run_dir,
                        endpoints,
                        args.traffic_endpoints,
                    )
                except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
                    # Kept in the JSON, left out of the tables and the spread.
                    errors.append({"experiment": name, "run_dir": str(run_dir), "error": repr(exc)})
                    meta["errors"] = errors
                    print(f"run {i + 1} of {name} gave no result: {exc!r}", flush=True)
                    write()
                    continue
                if before is not None:
                    row["placement_before"] = before
                rows.append(row)
                if node is not None:  # before the next run deletes a pod that has them
                    skipped.update(copy_node_logs(node, work / "ray-logs"))
                print(table([row]).splitlines()[-1], flush=True)
                write()
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}) after {len(rows)} runs", flush=True)
        meta["interrupted"] = str(exc) or "KeyboardInterrupt"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            skipped.update(copy_node_logs(node, work / "ray-logs"))
            meta["leftovers"] = node.down()
        else:
            skipped.update(copy_sandbox_logs(sandbox, work / "ray-logs"))
            sandbox.down()
        meta["logs_not_searched"] = sorted(skipped)
        traced = trace_failed_requests(rows, work / "ray-logs")
        print(f"traced {traced} failed request(s) in {work / 'ray-logs'}", flush=True)
        meta["ended_at"] = _now()
        meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        write()
    print()
    print(table(rows + medians(rows)))
    print(f"\nresults: {out}; run directories under {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
