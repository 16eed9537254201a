"""The sample's own client as a service's traffic (not ours), and reading a journal's
hypothesis, for the node tests judged by Serve's metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaosraysvc_lab import binaries
from tests.support.polling import wait_for

WARM_UP_S = 105  # the first check compares the last 30 s with the minute before them, + a scrape


class QueryLoop:
    """The sample's query.py running in the ray-pod through `kubectl exec` (not our traffic)."""

    def __init__(self, settings: dict[str, str], out: Path) -> None:
        kubectl = binaries.binary_dir(build=False) / "kubectl"
        self.env = {**os.environ, **settings}
        self.kubectl = str(kubectl)
        self.out = out
        with open(out, "wb") as sink:
            self.proc = subprocess.Popen(
                [self.kubectl, "exec", "ray-pod", "--", "python3", "-u", "samples/query.py"],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def longest_without_answer(self, seconds: float) -> float:
        """Watch query.py for `seconds`; return the longest time it got no successful answer:
        a request held by the outage (it has no timeout) or refused one after another (each
        failure advances its index too: CI saw 36 refusals split a 56 s outage into 38 s)."""
        last, last_answer, longest = self.sent(), time.monotonic(), 0.0
        deadline = last_answer + seconds
        while (now := time.monotonic()) < deadline:
            seen = self.sent()
            if seen[0] - last[0] > seen[1] - last[1]:  # at least one request not failed
                last_answer = now
            last = seen
            longest = max(longest, now - last_answer)
            time.sleep(0.5)
        return longest

    def error_answers(self) -> list[str]:
        """The answers that were not the app's ("12"): Serve's 5xx bodies ("Internal Server
        Error"), which query.py prints and counts as sent, not failed (no raise_for_status)."""
        answers = re.findall(r"^response: (.*)$", self.out.read_text(), re.M)
        return [a for a in answers if a.strip() != "12"]

    def sent(self) -> tuple[int, int]:
        found = re.findall(r"req_index : (\d+), num_fail: (\d+)", self.out.read_text())
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def left_in_pod(self) -> str:
        found = subprocess.run(
            [self.kubectl, "exec", "ray-pod", "--", "pgrep", "-af", "samples/query.py"],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return found.stdout.strip()

    def stop(self) -> None:
        """End kubectl; its exec's query.py ends with the stream (checked)."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        wait_for(lambda: not self.left_in_pod(), 30, what="query.py to end in the ray-pod")


def looping(settings: dict[str, str], out: Path) -> Iterator[QueryLoop]:
    """query.py running (its first answers in) until the generator is closed."""
    loop = QueryLoop(settings, out)
    try:
        wait_for(lambda: loop.sent()[0] > 10, 60, what="query.py's first answers")
        yield loop
    finally:
        loop.stop()


def probe_outputs(journal: dict[str, Any], phase: str, name: str) -> list[Any]:
    """The outputs (or errors) of a hypothesis probe, before then after the method."""
    return [
        r.get("output", r.get("exception"))
        for run in (journal["steady_states"].get(p) or {} for p in phase.split(","))
        for r in run.get("probes", [])
        if r["activity"]["name"] == name
    ]
