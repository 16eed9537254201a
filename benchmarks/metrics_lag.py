#!/usr/bin/env python3
"""How late Serve's own metrics tell a metric probe what happened (scrape-to-verdict lag).

    sudo .venv/bin/python benchmarks/metrics_lag.py [--runs 10] [--scrape-interval 15]
                                                    [--out benchmarks/results/metrics-lag-node.json]

Brings up the lab's node (KubeNode.up: KubeRay's HA sample, Prometheus scraping the Ray pods
every `--scrape-interval` seconds), then `--runs` times: waits a random 5-20 s (so the burst
falls anywhere in the export and scrape cycles), sends a burst of 50 requests to the serve
Service, and times, from the burst's last answer, when (a) the Ray pods' own metrics ports
show all of them (Ray's export to its metrics agent) and (b) an instant query of Prometheus,
the query a metric probe makes, does. (b) is the lag a probe's verdict can have: a failure
that happened is seen this late. Needs root, the machine's node lock (waits for it) and the
lab's Go builds. Brings everything down at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab"))

from chaosraysvc_lab import kubeconfig  # noqa: E402
from chaosraysvc_lab.stack import KubeNode  # noqa: E402

BURST = 50
QUERY = 'sum(ray_serve_num_http_requests_total{route="/fruit"})'
LINE = re.compile(r'^ray_serve_num_http_requests_total\{[^}]*route="/fruit"[^}]*\} (\S+)$', re.M)


def prometheus_count(url: str) -> float:
    query = urllib.parse.urlencode({"query": QUERY})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as answer:
        result = json.loads(answer.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def exported_count(pod_ips: list[str]) -> float:
    total = 0.0
    for ip in pod_ips:
        with urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=5) as answer:
            total += sum(float(v) for v in LINE.findall(answer.read().decode()))
    return total


def burst(serve_url: str) -> None:
    for _ in range(BURST):
        request = urllib.request.Request(f"{serve_url}/fruit/", data=b'["PEAR", 12]',
                                         method="POST")  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


def ray_pod_ips(api: Any) -> list[str]:
    from kubernetes import client

    pods = (
        client.CoreV1Api(api)
        .list_namespaced_pod("default", label_selector="ray.io/is-ray-node=yes")
        .items
    )
    return [p.status.pod_ip for p in pods if p.status.pod_ip]


def settle(read: Any, seconds: float = 40) -> float:
    """Wait until `read()` stops changing for two reads 3 s apart; return its value."""
    deadline = time.monotonic() + seconds
    last = read()
    while time.monotonic() < deadline:
        time.sleep(3)
        now = read()
        if now == last:
            return float(now)
        last = now
    return float(last)


def one_run(serve_url: str, prom_url: str, pod_ips: list[str], timeout: float) -> dict[str, Any]:
    exported0 = settle(lambda: exported_count(pod_ips))
    scraped0 = settle(lambda: prometheus_count(prom_url))
    time.sleep(random.uniform(5, 20))
    burst(serve_url)
    done = time.monotonic()
    seen: dict[str, float | None] = {"exported": None, "queried": None}
    while time.monotonic() - done < timeout and None in seen.values():
        t = time.monotonic() - done
        if seen["exported"] is None and exported_count(pod_ips) >= exported0 + BURST:
            seen["exported"] = round(t, 2)
        if seen["queried"] is None and prometheus_count(prom_url) >= scraped0 + BURST:
            seen["queried"] = round(t, 2)
        time.sleep(0.25)
    return {"exported_s": seen["exported"], "queried_s": seen["queried"]}


def _commit() -> dict[str, Any]:
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def spread(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "max": max(values)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scrape-interval", type=float, default=15.0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "metrics-lag-node.json"
    )
    args = parser.parse_args(argv)  # fmt: skip
    node = KubeNode(Path(tempfile.mkdtemp(prefix="crs-lag-")))
    runs: list[dict[str, Any]] = []
    try:
        settings = node.up(scrape_interval=args.scrape_interval, progress=print, timeout=600)
        api = kubeconfig.api_client(Path(settings["KUBECONFIG"]))
        pod_ips = ray_pod_ips(api)
        for i in range(args.runs):
            runs.append(one_run(settings["RAYSVC_SERVE_URL"], settings["RAYSVC_PROMETHEUS_URL"],
                                pod_ips, timeout=4 * args.scrape_interval + 60))  # fmt: skip
            print(f"run {i + 1}/{args.runs}: {runs[-1]}", flush=True)
    finally:
        leftovers = node.down()
        if leftovers:
            print(f"left behind: {leftovers}", file=sys.stderr)
    exported = [r["exported_s"] for r in runs if r["exported_s"] is not None]
    queried = [r["queried_s"] for r in runs if r["queried_s"] is not None]
    payload = {
        "benchmark": "metrics_lag",
        "what": "seconds from a burst's last answer until the Ray pods' metrics ports, then an "
        "instant Prometheus query, count all of it",
        "scrape_interval_s": args.scrape_interval,
        "burst": BURST,
        "runs": runs,
        "exported_s": spread(exported) if exported else None,
        "queried_s": spread(queried) if queried else None,
        "not_seen": sum(1 for r in runs if r["queried_s"] is None),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": _commit(),
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps({k: payload[k] for k in ("exported_s", "queried_s", "not_seen")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
