"""Whether a network cut took effect, seen from inside a pod: new and established connections.

A NetworkPolicy is only an object: the cluster's network plugin enforces it, or not (kindnet
and flannel alone do not), and most plugins let a connection established before the policy
go on. So a partition is checked from the pod that should be cut off (the head: its GCS is
Redis' client), through `Target.exec_in_pod`, with Python (every Ray image has it):

- `hold(...)` before the fault: opens a connection to Redis and checks Redis answers it
  (`PING`: "+PONG", or "-NOAUTH ..." when Redis wants a password, never sent: an answer
  either way), then leaves a process in the pod that keeps that connection and PINGs it
  every 0.5 s for a while, logging each answer (or its absence) to a file in the pod;
- `wait_new_connection(...)` after it: opens new connections until one fails (the cut holds
  for new connections) or, after healing, until one succeeds;
- `held_outcome(...)` then reads the held connection's log: "kept" when Redis still
  answered on it after the cut took effect, "cut" when it did not.

The held connection goes from the same pod to the same Redis address as the GCS's own, in the
same conntrack state (ESTABLISHED): what happens to it is what happens to the GCS's.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosraysvc.errors import ChaosRaySvcError, NotFoundError
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Target

__all__ = [
    "HeldConnection",
    "NewConnection",
    "classify_held",
    "held_outcome",
    "hold",
    "redis_endpoint",
    "release",
    "wait_new_connection",
]

logger = logging.getLogger("chaostoolkit")
PING_EVERY_S = 0.5
PYTHON = "python"  # on PATH in rayproject/ray images (and the lab's)

# argv: host port seconds log-path. Prints "held <pid> <first byte of Redis' answer>".
HOLD = """
import os, socket, sys, time
host, port, seconds, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
conn = socket.create_connection((host, port), timeout=3)
conn.sendall(b"PING\\r\\n")
first = conn.recv(256)[:1].decode() or "closed"
pid = os.fork()
if pid:
    print("held", pid, first, flush=True)
    os._exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
end = time.time() + seconds
with open(path, "w", buffering=1) as log:
    while time.time() < end:
        at = time.time()
        try:
            conn.settimeout(1.0)
            conn.sendall(b"PING\\r\\n")
            word = "ok" if conn.recv(256) else "closed"
        except socket.timeout:
            word = "noreply"
        except OSError as exc:
            word = type(exc).__name__
        # when it was seen, to the microsecond: a ping answered "closed" in the same
        # millisecond as the cut would round to before it
        log.write(f"{time.time():.6f} {word}\\n")
        if word not in ("ok", "noreply"):
            break
        time.sleep(max(0.0, PING_EVERY - (time.time() - at)))
""".replace("PING_EVERY", repr(PING_EVERY_S))

# argv: host port wait-seconds want ("fail" | "connect"). Prints one JSON line.
NEW = """
import json, socket, sys, time
host, port, wait, want = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
end = time.time() + wait
tries = 0
while True:
    at = time.time()
    tries += 1
    try:
        socket.create_connection((host, port), timeout=1).close()
        error = ""
    except ConnectionRefusedError:
        error = "refused"
    except socket.timeout:
        error = "timed out"
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"[:160]
    if (want == "fail") == bool(error) or time.time() >= end:
        print(json.dumps({"at": at, "error": error, "tries": tries}))
        break
    time.sleep(0.2)
"""

# argv: log-path pid. Prints the held connection's log, then ends its process and the log.
READ = """
import contextlib, os, signal, sys
print(open(sys.argv[1]).read(), end="")
with contextlib.suppress(OSError):
    os.kill(int(sys.argv[2]), signal.SIGTERM)
with contextlib.suppress(OSError):
    os.remove(sys.argv[1])
"""


@dataclass(frozen=True)
class HeldConnection:
    """A connection to Redis held open in `pod` by process `pid`, logging to `log_path`."""

    pod: Pod
    pid: int
    log_path: str
    first_answer: str  # "+" (PONG) or "-" (an error reply, e.g. NOAUTH): Redis answered


@dataclass(frozen=True)
class NewConnection:
    """The last new connection tried: at `at` (the pod's clock), failed with `error` or not."""

    at: float
    error: str  # "" when it connected; "refused", "timed out", "gaierror: ..." otherwise
    tries: int


def redis_endpoint(address: str) -> tuple[str, int]:
    """Return (host, port) of a Redis address ("redis:6379", "redis://h:p", "h"; port 6379)."""
    text = address.strip()
    if "://" not in text:
        text = f"redis://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port or 6379
    except ValueError as exc:
        raise ValueError(f"cannot read host and port from Redis address {address!r}") from exc
    if not parts.hostname:
        raise ValueError(f"no host in Redis address {address!r}")
    return parts.hostname, port


def _exec(target: Target, pod: Pod, argv: Sequence[str], timeout: float) -> str:
    code, output = target.exec_in_pod(pod, argv, timeout=timeout)
    if code != 0:
        raise ChaosRaySvcError(
            f"`{argv[0]}` in pod '{pod.name}' exited with {code}: {output.strip()[-300:]}"
        )
    return output


def hold(target: Target, pod: Pod, host: str, port: int, seconds: float) -> HeldConnection:
    """Open a connection from `pod` to Redis at `host`:`port` and keep it for `seconds`.

    Raises `NotFoundError` when Redis cannot be reached from `pod` now (nothing to cut), or
    `KubernetesApiError` when the account may not exec (deploy/exec-role.yaml).
    """
    path = f"/tmp/chaosraysvc-held-{uuid.uuid4().hex[:12]}.log"
    argv = [PYTHON, "-c", HOLD, host, str(port), f"{seconds:g}", path]
    code, output = target.exec_in_pod(pod, argv, timeout=15)
    words = output.split()
    if code != 0 or len(words) < 3 or words[0] != "held" or words[2] not in "+-":
        raise NotFoundError(
            f"Redis at {host}:{port} does not answer pod '{pod.name}' before the fault "
            f"(exit code {code}: {output.strip()[-300:] or 'no output'}): nothing to cut off"
        )
    return HeldConnection(pod, int(words[1]), path, words[2])


def wait_new_connection(
    target: Target, pod: Pod, host: str, port: int, want: str, wait: float
) -> NewConnection:
    """Try new connections from `pod` to `host`:`port` until one fails (`want` "fail") or
    succeeds ("connect"), for at most `wait` seconds; return the last one tried."""
    argv = [PYTHON, "-c", NEW, host, str(port), f"{wait:g}", want]
    output = _exec(target, pod, argv, timeout=wait + 15)
    try:
        found = json.loads(output.strip().splitlines()[-1])
        return NewConnection(float(found["at"]), str(found["error"]), int(found["tries"]))
    except (ValueError, KeyError, IndexError) as exc:
        raise ChaosRaySvcError(
            f"the connection check in pod '{pod.name}' printed no result: {output[-300:]!r}"
        ) from exc


def classify_held(lines: Sequence[str], made: float, since: float) -> tuple[str, dict[str, int]]:
    """Say what happened to the held connection once the cut was `made` and seen to hold
    for new connections at `since` (the pod's clock).

    "kept" when Redis answered on it after `since`; else "cut" when it went unanswered or
    closed after `made` (a plugin that cuts established flows may do it before a new
    connection is seen to fail); "unknown" when it was not tried after `made`. Returns that
    and the count of each answer after `since` (ok, noreply, closed, ...).
    """
    counts: dict[str, int] = {}
    failed_after_made = False
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            continue
        at, word = float(parts[0]), parts[1]
        if at >= since:
            counts[word] = counts.get(word, 0) + 1
        if at >= made and word != "ok":
            failed_after_made = True
    if counts.get("ok"):
        return "kept", counts
    return ("cut" if failed_after_made else "unknown"), counts


def held_outcome(
    target: Target, held: HeldConnection, made: float, since: float, window: float
) -> tuple[str, dict[str, int]]:
    """Let the held connection be tried for `window` seconds more, then read its log and end
    its process; return `classify_held`'s answer (`made`: when the cut was made, `since`:
    when it was seen to hold, the pod's clock)."""
    time.sleep(window + PING_EVERY_S)
    return classify_held(release(target, held).splitlines(), made, since)


def release(target: Target, held: HeldConnection) -> str:
    """End the held connection's process and remove its log; return the log."""
    argv = [PYTHON, "-c", READ, held.log_path, str(held.pid)]
    return _exec(target, held.pod, argv, timeout=15)
