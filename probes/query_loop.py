#!/usr/bin/env python3
"""KubeRay's HA sample query loop as a standalone probe: count failed requests.

Sends `POST <url>/fruit/` with `["PEAR", 12]`, one request in flight, for `--duration`
seconds or `--requests` requests, and prints JSON with `req_index` and `num_fail`
(the sample's names) plus latency figures. Exits 1 when any request failed, 2 on bad
arguments. As a Chaos Toolkit `process` probe::

    {"type": "probe", "name": "query-loop", "tolerance": 0,
     "provider": {"type": "process", "path": "python3",
                  "arguments": "probes/query_loop.py --duration 10"}}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--url", default=os.environ.get("RAYSVC_SERVE_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--path", default="/fruit/")
    parser.add_argument("--body", default='["PEAR", 12]', help="JSON body")
    parser.add_argument("--expected", default="12", help="expected JSON answer")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--requests", type=int, default=0, help="stop after N requests")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout")
    args = parser.parse_args(argv)
    try:
        body = json.loads(args.body)
        expected = json.loads(args.expected)
    except ValueError as exc:
        parser.error(f"--body and --expected must be JSON: {exc}")
    url = args.url.rstrip("/") + args.path
    session = requests.Session()
    req_index = num_fail = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    end = time.monotonic() + args.duration
    while (args.requests and req_index < args.requests) or (
        not args.requests and time.monotonic() < end
    ):
        req_index += 1
        start = time.perf_counter()
        try:
            response = session.post(url, json=body, timeout=args.timeout)
            ok = response.status_code == 200 and response.json() == expected
            error = (
                ""
                if ok
                else f"http_{response.status_code}"
                if response.status_code != 200
                else "wrong_answer"
            )
        except (requests.RequestException, ValueError) as exc:
            ok, error = False, type(exc).__name__
        latencies.append((time.perf_counter() - start) * 1000)
        if not ok:
            num_fail += 1
            errors[error] = errors.get(error, 0) + 1
    latencies.sort()
    pick = (
        (lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3))
        if latencies
        else (lambda q: None)
    )
    print(
        json.dumps(
            {
                "url": url,
                "req_index": req_index,
                "num_fail": num_fail,
                "errors": errors,
                "p50_ms": pick(0.5),
                "p99_ms": pick(0.99),
            }
        )
    )
    return 1 if num_fail else 0


if __name__ == "__main__":
    sys.exit(main())
