"""Work around Ray's short, fixed wait for the dashboard agent on a loaded machine.

When a Ray node starts, its raylet waits for the dashboard agent (a Python process)
to write `dashboard_agent_listen_port_<node id>` in the session directory, and aborts
the whole node after about 15 s (not configurable in Ray 2.60). On one machine whose
two cores are shared by every pod, a restarting head's agent can need longer than
that to import, and the head then crash-loops. The sandbox chose that port itself
(`--dashboard-agent-listen-port`), so it writes the file for the agent as soon as the
raylet has logged its node id; the agent later writes the same value.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

NODE_ID = re.compile(r"Initializing NodeManager node_id=([0-9a-f]+)")


def write_agent_port(temp_dir: Path, port: int, timeout: float = 90.0) -> bool:
    """Write the agent's port file once the raylet in `temp_dir` logged its node id."""
    raylet_log = temp_dir / "session_latest" / "logs" / "raylet.out"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            match = NODE_ID.search(raylet_log.read_text(errors="replace"))
        except OSError:
            match = None
        if match:
            session = (temp_dir / "session_latest").resolve()
            target = session / f"dashboard_agent_listen_port_{match.group(1)}"
            if not target.exists():
                tmp = session / f".agent_port_{match.group(1)}.tmp"
                tmp.write_text(str(port))
                os.replace(tmp, target)
            return True
        time.sleep(0.05)
    return False


def write_agent_port_in_background(temp_dir: Path, port: int) -> threading.Thread:
    """Run `write_agent_port` in a daemon thread and return it."""
    thread = threading.Thread(
        target=write_agent_port, args=(temp_dir, port), name="agent-port", daemon=True
    )
    thread.start()
    return thread
