#!/usr/bin/env python3
"""Serve health as a standalone probe: applications RUNNING, proxies HEALTHY, endpoints ready.

Resolves the target like the experiments do (`RAYSVC_TARGET`, `RAYSVC_NAME`,
`RAYSVC_NAMESPACE`, `RAYSVC_SANDBOX_DIR`, `RAYSVC_DASHBOARD_URL`, ...), prints JSON, and
exits 1 when anything is unhealthy or fewer than `--min-endpoints` endpoints are ready
(or the dashboard does not answer), 3 when the target cannot be read (or the Kubernetes
API refuses the dashboard's service proxy). As a Chaos Toolkit `process` probe::

    {"type": "probe", "name": "serve-health", "tolerance": 0,
     "provider": {"type": "process", "path": "python3",
                  "arguments": "probes/serve_health.py --min-endpoints 3"}}
"""

from __future__ import annotations

import argparse
import json
import sys

from chaosraysvc.errors import ChaosRaySvcError, ServeApiError
from chaosraysvc.serve import rest
from chaosraysvc.targets import resolve_target
from chaosraysvc.targets.base import ready_endpoint_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--min-endpoints", type=int, default=1)
    parser.add_argument("--app", default="", help="only this application")
    args = parser.parse_args(argv)
    try:
        target = resolve_target()
        endpoints = ready_endpoint_count(target)
    except ChaosRaySvcError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    report: dict[str, object] = {"target": target.kind, "endpoints_ready": endpoints}
    try:
        details = rest.get_serve_details(target.dashboard())
        apps = rest.application_statuses(details)
        proxies = rest.proxy_statuses(details)
    except ServeApiError as exc:
        report["error"] = str(exc)
        print(json.dumps(report))
        return 1
    except ChaosRaySvcError as exc:  # e.g. the API server refused its service proxy (403)
        report["error"] = str(exc)
        print(json.dumps(report))
        return 3
    if args.app:
        apps = {args.app: apps.get(args.app, "ABSENT")}
    report |= {"applications": apps, "proxies": proxies}
    healthy = (
        endpoints >= args.min_endpoints
        and bool(apps)
        and all(s == "RUNNING" for s in apps.values())
        and all(s == "HEALTHY" for s in proxies.values())
    )
    report["healthy"] = healthy
    print(json.dumps(report))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
