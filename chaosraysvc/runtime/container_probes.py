"""Container probes (exec, httpGet, tcpSocket) run inside the pod's network namespace."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.runtime.executables import host_tool


@dataclass
class ProbeState:
    """A probe's spec and its consecutive results (thresholds as the kubelet counts them)."""

    spec: dict[str, Any]
    successes: int = 0
    failures: int = 0
    passed: bool = False
    next_at: float = 0.0
    last_output: str = field(default="", repr=False)

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    @property
    def initial_delay(self) -> float:
        return float(self.spec.get("initialDelaySeconds", 0))

    def record(self, ok: bool, output: str) -> None:
        """Count one result; `passed` flips at the success/failure thresholds."""
        self.last_output = output
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.passed = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.passed = False

    def failed_out(self) -> bool:
        """Tell whether failures reached the threshold (liveness: restart the container)."""
        return self.failures >= int(self.spec.get("failureThreshold", 3))


def _port(value: Any, container: dict[str, Any]) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in container.get("ports", []):
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"no container port named {value!r}")


def command(spec: dict[str, Any], container: dict[str, Any], pod_ip: str) -> list[str]:
    """Return the command that runs the probe (inside the netns, with the container's env)."""
    timeout = int(spec.get("timeoutSeconds", 1))
    if "exec" in spec:
        return list(spec["exec"]["command"])
    if "httpGet" in spec:
        get = spec["httpGet"]
        host = get.get("host") or pod_ip
        scheme = str(get.get("scheme", "HTTP")).lower()
        url = f"{scheme}://{host}:{_port(get['port'], container)}{get.get('path', '/')}"
        return [host_tool("wget"), "--tries", "1", "-T", str(timeout), "-q", "-O", "/dev/null",
                "--no-check-certificate", url]  # fmt: skip
    if "tcpSocket" in spec:
        sock = spec["tcpSocket"]
        host = sock.get("host") or pod_ip
        port = _port(sock["port"], container)
        return [host_tool("bash"), "-c", f"exec 3<>/dev/tcp/{host}/{port}"]
    if "grpc" in spec:
        raise ValueError("grpc probes are not supported by this node")
    raise ValueError(f"a probe without a handler: {spec}")


def run(
    prefix: list[str], argv: list[str], env: dict[str, str], timeout: float
) -> tuple[bool, str]:
    """Run `prefix + argv`; return (exit code 0 within timeout, last output)."""
    try:
        done = subprocess.run(
            [host_tool(prefix[0]), *prefix[1:], *argv] if prefix else argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:g}s"
    output = (done.stdout + done.stderr).strip()[-300:]
    return done.returncode == 0, output
