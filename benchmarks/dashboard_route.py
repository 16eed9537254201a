#!/usr/bin/env python3
"""What a dashboard read costs through the API server's service proxy, next to a direct URL.

    .venv/bin/python benchmarks/dashboard_route.py [--probes 300]
    .venv/bin/python benchmarks/dashboard_route.py --quick        # smoke run, 10 probes

Needs root (a network namespace and a veth) and the control-plane binaries
(`make controlplane`; built on first use). Starts the real control plane (etcd,
kube-apiserver, kube-controller-manager: `chaosraysvc_lab.controlplane`), a Ray dashboard
double in a network namespace of its own on an address of 198.18.0.0/15
(`tests/support/dashboard_head.py`, run as a script), a head pod on that address and its
head Service `bench-head-svc` (port `dashboard` 8265, as KubeRay names it), and waits for
the real endpoints controller to list it. Then, interleaved round by round (so load on the
machine falls on every route alike), one Serve details read (`GET
/api/serve/applications/?api_type=declarative`, what `serve_applications_healthy` and the
recovery wait read) per route and round:

- **direct**: `http://<address>:8265`, a new TCP connection per read (what a configured
  `dashboard_url` does);
- **API server proxy, admin (client certificate), warm**: one `KubernetesTarget`, its
  client's TLS connection kept between reads (within one activity, after `validate()`);
- **API server proxy, deploy/'s ServiceAccount (token, RBAC), warm**: the same as the Role's
  account, so the RBAC authorizer runs on every read;
- **API server proxy, ServiceAccount, cold**: a new client each read (TLS handshake
  included: an upper bound for a probe whose target resolution did not open the connection);
- **the probe** `serve_applications_healthy` as `chaos run` calls it (a new target each call:
  kubeconfig, client, `validate()` reading the RayService as the ServiceAccount, then the
  read), once with `dashboard_url` set to the direct address and once through the API server.

Reports median, p90, p99, mean and max in ms per route and the overhead over direct
(difference of medians, reads against the direct read, probes against the direct probe).
The double answers at once: the overhead is the API server's, not Ray's. Prints a markdown
table and writes JSON to benchmarks/results/dashboard_route.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, default_out, describe_machine, machine_info, markdown_table, write_result

sys.path.insert(0, str(ROOT / "lab"))

from kubernetes import client

from chaosraysvc.activities import serve_probes
from chaosraysvc.config import Settings
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.kube.proxy import ApiServerProxyDashboard
from chaosraysvc.serve import rest
from chaosraysvc.serve.dashboard import Dashboard
from chaosraysvc.targets.kubernetes import KubernetesTarget
from chaosraysvc_lab import kubeconfig
from chaosraysvc_lab.controlplane import ControlPlane
from chaosraysvc_lab.network import used_subnets
from chaosraysvc_lab.node import NodeHeartbeat

NAMESPACE = "bench"
NAME = "bench"  # the RayService name the Services are named after
HEAD_SVC = f"{NAME}-head-svc"
NODE = "bench-node"
DASHBOARD_HEAD = ROOT / "tests" / "support" / "dashboard_head.py"
DEPLOY = ROOT / "deploy"


def _manifest(name: str) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return dict(doc)


def _start_head() -> tuple[subprocess.Popen[str], str, tuple[str, str]]:
    third = next(n for n in range(249, 100, -1) if n not in used_subnets())
    tag = os.getpid() % 100000
    netns, host_if = f"crs-dashb-{tag}", f"crsdb{tag}"
    cmd = [sys.executable, str(DASHBOARD_HEAD), "--netns", netns, "--host-if", host_if,
           "--host-address", f"198.18.{third}.1/30", "--address", f"198.18.{third}.2/30",
           "--node-id", "bench-head"]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("ready "):
        process.terminate()
        raise SystemExit(f"the dashboard double did not start: {line!r}")
    return process, line.split()[1], (netns, host_if)


def _stop_head(process: subprocess.Popen[str], names: tuple[str, str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    subprocess.run(["ip", "link", "delete", names[1]], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "delete", names[0]], capture_output=True, check=False)


def _seed(api: client.ApiClient, address: str) -> None:
    """Create the namespace, a Ready head pod at `address` and its head Service."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    deadline = time.monotonic() + 15
    while not core.list_namespaced_service_account(
        NAMESPACE, field_selector="metadata.name=default"
    ).items:
        if time.monotonic() > deadline:
            raise SystemExit("ServiceAccount default never appeared")
        time.sleep(0.1)
    labels = {"ray.io/cluster": f"{NAME}-x1", "ray.io/node-type": "head"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{NAME}-x1-head-abcde", "labels": labels},
        "spec": {
            "nodeName": NODE,
            "containers": [
                {
                    "name": "ray-head",
                    "image": "rayproject/ray:2.52.0",
                    "ports": [{"name": "dashboard", "containerPort": 8265}],
                }
            ],  # fmt: skip
        },
    }
    core.create_namespaced_pod(NAMESPACE, pod)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "phase": "Running",
        "hostIP": "198.18.0.2",
        "podIP": address,
        "podIPs": [{"ip": address}],
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
    }
    core.patch_namespaced_pod_status(pod["metadata"]["name"], NAMESPACE, {"status": status})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": HEAD_SVC},
        "spec": {
            "selector": labels,
            "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265}],
        },
    }
    core.create_namespaced_service(NAMESPACE, service)
    rayservice = {  # what `validate()` reads; nothing reconciles it here
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": NAME},
        "spec": {
            "rayClusterConfig": {
                "headGroupSpec": {
                    "rayStartParams": {},
                    "template": {
                        "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray"}]}
                    },
                }
            }
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", rayservice
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            endpoints = core.read_namespaced_endpoints(HEAD_SVC, NAMESPACE)
            ready = {a.ip for s in endpoints.subsets or [] for a in s.addresses or []}
        except client.ApiException:
            ready = set()
        if address in ready:
            return
        if time.monotonic() > deadline:
            raise SystemExit("the endpoints controller never listed the head")
        time.sleep(0.1)


def _account_kubeconfig(plane: ControlPlane, api: client.ApiClient, work: Path) -> Path:
    """Install deploy/'s ServiceAccount, Role and RoleBinding; return a token kubeconfig."""
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    account = _manifest("serviceaccount.yaml")
    core.create_namespaced_service_account(NAMESPACE, account)
    rbac.create_namespaced_role(NAMESPACE, _manifest("role.yaml"))
    binding = _manifest("rolebinding.yaml")
    for subject in binding["subjects"]:
        subject["namespace"] = NAMESPACE
    rbac.create_namespaced_role_binding(NAMESPACE, binding)
    token = core.create_namespaced_service_account_token(
        account["metadata"]["name"], NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    state = plane.state()
    assert state is not None
    return kubeconfig.write(
        work / "sa.kubeconfig",
        server=state.server,
        ca=plane.pki_dir / "ca.crt",
        token=token,
        namespace=NAMESPACE,
    )


def _target(config: Path) -> KubernetesTarget:
    api = KubeApi(kubeconfig.api_client(config))
    settings = Settings(target="kubernetes", rayservice_name=NAME, rayservice_namespace=NAMESPACE)
    return KubernetesTarget(settings, api=api)


def _stats(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples), 3),
        "p90_ms": round(pct(0.90), 3),
        "p99_ms": round(pct(0.99), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


def _read(dashboard: Callable[[], Dashboard]) -> Callable[[], bool]:
    def read() -> bool:
        details = rest.get_serve_details(dashboard())
        return bool(details["applications"]["fruit_app"]["status"] == "RUNNING")

    return read


def _probe(configuration: dict[str, Any], kubeconfig_path: Path) -> Callable[[], bool]:
    """The probe as `chaos run` calls it: a new target (kubeconfig, client, validate) each time."""

    def probe() -> bool:
        os.environ["KUBECONFIG"] = str(kubeconfig_path)
        return serve_probes.serve_applications_healthy(configuration=configuration)

    return probe


def measure(routes: dict[str, Callable[[], bool]], probes: int) -> dict[str, list[float]]:
    """Call each route once per round, `probes` rounds; return the wall times in ms."""
    times: dict[str, list[float]] = {name: [] for name in routes}
    for name, call in routes.items():  # once each first: connections, caches, imports
        assert call() is True, name
    for _ in range(probes):
        for name, call in routes.items():
            started = time.perf_counter()
            answered = call()
            times[name].append((time.perf_counter() - started) * 1000)
            assert answered is True, name
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--probes", type=int, default=300, help="reads per route")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 reads per route")
    parser.add_argument("--out", type=Path, default=default_out("dashboard_route"))
    args = parser.parse_args()
    probes = 10 if args.quick else args.probes
    if os.geteuid() != 0:
        print("needs root: a network namespace and a veth for the dashboard double")
        return 2
    info = machine_info()
    print(describe_machine(info))
    work = Path(tempfile.mkdtemp(prefix="crs-bench-dash-"))
    plane = ControlPlane(work / "plane")
    heartbeat: NodeHeartbeat | None = None
    head: tuple[subprocess.Popen[str], str, tuple[str, str]] | None = None
    targets: list[KubernetesTarget] = []
    try:
        plane.up(progress=print)
        admin = kubeconfig.api_client(plane.kubeconfig)
        heartbeat = NodeHeartbeat(admin, NODE, "198.18.0.2").start()
        head = _start_head()
        address = head[1]
        _seed(admin, address)
        account = _account_kubeconfig(plane, admin, work)
        admin_target, account_target = _target(plane.kubeconfig), _target(account)
        targets += [admin_target, account_target]
        warm_admin, warm_account = admin_target.dashboard(), account_target.dashboard()
        assert isinstance(warm_admin, ApiServerProxyDashboard)
        direct = Dashboard(f"http://{address}:8265", route="direct")

        def cold() -> Dashboard:
            target = _target(account)
            targets.append(target)
            return target.dashboard()

        conf = {
            "raysvc_target": "kubernetes",
            "rayservice_name": NAME,
            "rayservice_namespace": NAMESPACE,
        }
        routes: dict[str, Callable[[], bool]] = {
            "read: direct (new TCP connection per read)": _read(lambda: direct),
            "read: API server proxy, admin client certificate, warm": _read(lambda: warm_admin),
            "read: API server proxy, ServiceAccount token + RBAC, warm": _read(
                lambda: warm_account
            ),
            "read: API server proxy, ServiceAccount token + RBAC, cold (new client)": _read(cold),
            "probe serve_applications_healthy: dashboard_url direct": _probe(
                {**conf, "dashboard_url": f"http://{address}:8265"}, account
            ),
            "probe serve_applications_healthy: through the API server": _probe(conf, account),
        }
        load_before = os.getloadavg()[0]
        times = measure(routes, probes)
        load_after = os.getloadavg()[0]
    finally:
        for target in targets:
            target.close()
        if head is not None:
            _stop_head(head[0], head[2])
        if heartbeat is not None:
            heartbeat.stop()
        result = plane.down()
        shutil.rmtree(work, ignore_errors=True)
        if result.leftovers:
            print(f"control-plane processes left behind: {result.leftovers}")

    rows = [{"route": name, **_stats(samples)} for name, samples in times.items()]
    for row in rows:  # each against the direct row of its kind (read or probe)
        kind = row["route"].split(":")[0]
        base = next(r for r in rows if r["route"].startswith(kind) and "direct" in r["route"])
        row["overhead_vs_direct_ms"] = round(row["median_ms"] - base["median_ms"], 3)
    print(
        markdown_table(
            [
                ("route", "route"),
                ("n", "calls"),
                ("median_ms", "median ms"),
                ("p90_ms", "p90 ms"),
                ("p99_ms", "p99 ms"),
                ("mean_ms", "mean ms"),
                ("max_ms", "max ms"),
                ("overhead_vs_direct_ms", "median - direct ms"),
            ],
            rows,
            {
                k: (lambda v: f"{v:.2f}")
                for k in (
                    "median_ms",
                    "p90_ms",
                    "p99_ms",
                    "mean_ms",
                    "max_ms",
                    "overhead_vs_direct_ms",
                )
            },  # fmt: skip
        )
    )
    path = write_result(
        args.out,
        {
            "benchmark": "dashboard_route",
            "machine": info,
            "quick": args.quick,
            "probes_per_route": probes,
            "read": "GET /api/serve/applications/?api_type=declarative (rest.get_serve_details)",
            "probe": "serve_probes.serve_applications_healthy(configuration) with KUBECONFIG "
            "the ServiceAccount's token: a new target per call, validate() then the read",
            "dashboard": "tests/support/dashboard_head.py in its own network namespace "
            "(answers at once: the overhead measured is the route's)",
            "load_1m_before": round(load_before, 2),
            "load_1m_after": round(load_after, 2),
            "rows": rows,
            "work_dir": str(work),
        },
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
