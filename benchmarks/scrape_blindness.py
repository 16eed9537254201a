#!/usr/bin/env python3
"""What a scrape interval hides from the metric probes: the shortest failure they can see.

    .venv/bin/python benchmarks/scrape_blindness.py [--scrape-interval 15] [--lanes 10]
                                                    [--out benchmarks/results/scrape-blindness.json]

The real Prometheus (the lab's pinned build, `make controlplane`) scrapes, every
`--scrape-interval` seconds, a loopback exporter standing in for Ray nodes' metrics ports and
KubeRay's operator. The exporter publishes what it counted at its last export (every 10 s at a
random phase per lane, as Ray's metrics agent does: docs/metrics.md measured 4-9 s from a
request to its export). Every lane is one independent service at 20 requests/s; after a
baseline, each suffers one failure of W seconds starting at a random time within one scrape
interval (so anywhere in the scrape and export cycles), for W in WIDTHS and four kinds:

- `hole`: no request reaches a proxy for W s (an outage before the proxies: refused
  connections). Judged as `serve_request_rate_change(worst_span=30)` judges it against
  head-kill-serve-metrics.json's bound (-75 %): seen when the lowest 30 s falls below it.
- `gone`: every proxy of the service gone for W s (their series vanish: the only head, or
  every Ray pod, deleted), then a new proxy counting from 0. Judged as `hole`.
- `errors`: a surviving proxy answers 5 requests/s with a 503 for W s: seen when
  `serve_error_ratio`'s queries count any error; also the share of the errors counted.
- `dying`: a proxy answers 5 requests/s with a 503 for W s, then dies (its series vanish,
  as a deleted pod's do): the share of its errors Prometheus ever counted.
- `not_ready`: KubeRay's Ready condition false for W s: seen when `rayservice_ready_throughout`
  would see a not-Ready scrape.

Each lane is then asked what the probes ask (the PromQL of `chaosraysvc.model.serve_metrics`,
at one evaluation time after every failure and 40 s of lag, over a 120 s window with the
60 s baseline before it). Writes per kind and width: lanes, seen, and the values' spread.
The exporter is a double of Ray's metrics port (the counters are ours); the scraping and the
queries are Prometheus' own.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab"))

from chaosraysvc.model.serve_metrics import (  # noqa: E402
    SeriesFilter,
    error_ratio_query,
    lowest_rate_query,
    not_ready_query,
    requests_query,
)
from chaosraysvc.runtime import sessions as procs  # noqa: E402
from chaosraysvc.runtime.ports import free_port  # noqa: E402
from chaosraysvc_lab import binaries, prometheus  # noqa: E402

WIDTHS = (2, 5, 10, 15, 20, 30, 45, 60)
KINDS = ("hole", "gone", "errors", "dying", "not_ready")
RATE, ERROR_RATE = 20.0, 5.0  # requests/s of a lane, 503s/s during an error failure
EXPORT_S = 10.0  # Ray's metrics agent's export period (the value a scrape reads is this old)
BASELINE_S, WINDOW_S, LAG_S = 60.0, 120.0, 40.0
BOUND = -75.0  # head-kill-serve-metrics.json: the lowest 30 s of the run vs the minute before
REQ, ERR = "ray_serve_num_http_requests_total", "ray_serve_num_http_error_requests_total"
READY = "kuberay_service_condition_ready"


@dataclass
class Lane:
    kind: str
    width: float
    index: int
    start: float  # seconds after t0 the failure begins
    export_phase: float

    @property
    def name(self) -> str:
        return f"{self.kind}-w{self.width:g}-{self.index}"

    def exported_at(self, t: float) -> float:
        """The time of the last export before `t` (what a scrape reads)."""
        k = (t - self.export_phase) // EXPORT_S
        return max(0.0, k * EXPORT_S + self.export_phase)

    def requests(self, t: float) -> float:
        if self.kind == "gone" and t >= self.start + self.width:
            return RATE * (t - self.start - self.width)  # a new proxy, from 0
        if self.kind != "hole":
            return RATE * t
        lost = min(max(t - self.start, 0.0), self.width)
        return RATE * (t - lost)

    def errors(self, t: float) -> float:
        return ERROR_RATE * min(max(t - self.start, 0.0), self.width)

    def lines(self, now: float) -> list[str]:
        t = self.exported_at(now)
        app = f'application="{self.name}",route="/x"'
        proxy = "a"
        if self.kind == "gone" and t >= self.start:
            if t < self.start + self.width:
                return []  # no proxy exports anything
            proxy = "new"
        out = [f'{REQ}{{NodeAddress="{proxy}",{app},status_code="200"}} {self.requests(t) + 1:.3f}']
        if self.kind in ("errors", "dying") and t >= self.start:
            node = "a" if self.kind == "errors" else "dying"
            if self.kind == "errors" or t < self.start + self.width:  # a dead proxy: gone
                out.append(
                    f'{ERR}{{NodeAddress="{node}",{app},error_code="503"}} {self.errors(t):.3f}'
                )
        if self.kind == "not_ready":
            down = self.start <= now < self.start + self.width  # the operator's gauge: now
            key = f'name="{self.name}",namespace="b"'
            out.append(f'{READY}{{{key},condition="false"}} {int(down)}')
            out.append(f'{READY}{{{key},condition="true"}} {int(not down)}')
        return out


class Exporter:
    def __init__(self, lanes: list[Lane], t0: float) -> None:
        self.port = free_port()
        lanes_, t0_ = lanes, t0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now = time.time() - t0_
                body = "\n".join(line for lane in lanes_ for line in lane.lines(now)) + "\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def ask(url: str, expr: str, at: float) -> float | None:
    query = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as answer:
        found = json.loads(answer.read())
    assert found["status"] == "success", found
    result = found["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def judge(url: str, lane: Lane, at: float) -> dict[str, Any]:
    """What the probes would say of `lane` at epoch `at`."""
    which = SeriesFilter(application=lane.name)
    if lane.kind in ("hole", "gone"):
        before = ask(url, requests_query(which, BASELINE_S, offset=WINDOW_S), at) or 0.0
        lowest = ask(url, lowest_rate_query(which, WINDOW_S, 30, 15), at) or 0.0
        change = 100.0 * (lowest / (before / BASELINE_S) - 1.0)
        return {"value": round(change, 2), "seen": change < BOUND}
    if lane.kind in ("errors", "dying"):
        errors_q, _ = error_ratio_query(which, WINDOW_S)
        counted = ask(url, errors_q, at) or 0.0
        share = counted / (ERROR_RATE * lane.width)
        return {"value": round(share, 3), "seen": counted > 0}
    seen = ask(url, not_ready_query(lane.name, "b", WINDOW_S), at)
    return {"value": seen, "seen": seen == 1.0}


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrape-interval", type=float, default=15.0)
    parser.add_argument("--lanes", type=int, default=10, help="lanes per kind and width")
    parser.add_argument("--seed", type=int, default=None)
    default_out = ROOT / "benchmarks" / "results" / "scrape-blindness.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    fail_at = BASELINE_S + 40.0  # the failures start after the baseline and a margin
    lanes = [
        Lane(kind, width, i, fail_at + rng.uniform(0, args.scrape_interval),
             rng.uniform(0, EXPORT_S))
        for kind in KINDS for width in WIDTHS for i in range(args.lanes)
    ]  # fmt: skip
    last_end = max(lane.start + lane.width for lane in lanes)
    evaluate_at = last_end + LAG_S
    assert evaluate_at - WINDOW_S <= fail_at, "every failure must fall in the judged window"
    folder = Path(tempfile.mkdtemp(prefix="scrape-blindness-"))
    t0 = time.time()
    exporter = Exporter(lanes, t0)
    config = {
        "global": {"scrape_interval": f"{args.scrape_interval:g}s",
                   "scrape_timeout": f"{min(args.scrape_interval, 10):g}s"},
        "scrape_configs": [{"job_name": "ray-pods",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
    }  # fmt: skip
    prometheus.write_config(folder / "prometheus.yml", config)
    port = free_port()
    cmd = [
        str(binaries.prometheus_binary()),
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = procs.spawn(cmd, {}, folder / "prometheus.log", folder)
    url = f"http://127.0.0.1:{port}"
    try:
        total = evaluate_at + 5
        print(f"{len(lanes)} lanes, scrape every {args.scrape_interval:g} s; "
              f"judging at +{evaluate_at:.0f} s ({total / 60:.1f} min)", flush=True)  # fmt: skip
        while (elapsed := time.time() - t0) < evaluate_at + 5:
            print(f"  +{elapsed:.0f} s of {total:.0f}", flush=True)
            time.sleep(min(30.0, max(0.5, evaluate_at + 5 - elapsed)))
        at = t0 + evaluate_at
        rows: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            for width in WIDTHS:
                judged = [judge(url, lane, at) for lane in lanes
                          if lane.kind == kind and lane.width == width]  # fmt: skip
                values = [j["value"] for j in judged if isinstance(j["value"], float)]
                rows[f"{kind} {width:g}s"] = {
                    "kind": kind, "width_s": width, "lanes": len(judged),
                    "seen": sum(1 for j in judged if j["seen"]), "values": spread(values),
                }  # fmt: skip
                row = rows[f"{kind} {width:g}s"]
                print(f"{kind:>9} {width:>3g} s: seen in {row['seen']}/{row['lanes']}, "
                      f"values {row['values']}", flush=True)  # fmt: skip
    finally:
        procs.kill_session(proc.pid, grace_period=5)
        proc.wait()
        exporter.server.shutdown()
    result = {
        "benchmark": "scrape_blindness",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scrape_interval_s": args.scrape_interval, "export_period_s": EXPORT_S,
        "rate_per_s": RATE, "error_rate_per_s": ERROR_RATE, "bound_pct": BOUND,
        "window_s": WINDOW_S, "baseline_s": BASELINE_S, "lag_s": LAG_S,
        "lanes_per_cell": args.lanes, "seed": args.seed,
        "prometheus": str(binaries.prometheus_binary(build=False)),
        "cells": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
