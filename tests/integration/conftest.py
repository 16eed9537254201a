"""Integration fixtures: one real sandbox (Redis + Ray head + 2 workers + Serve) per session.

The sandbox uses free ports and a temporary state directory, and is always brought
down at the end of the session, even when tests fail; the teardown fails the run if
any of its processes is left.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.engine import TrafficEngine
from tests.support.wheel import WheelVenv, installed_wheel


@contextmanager
def running_sandbox(**settings: Any) -> Iterator[Sandbox]:
    """Bring a sandbox up on free ports in a temporary directory; always bring it down.

    `settings` change the `SandboxSpec` (2 workers, 2 s restart delay by default). Fails
    if any of its processes is left behind.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="crs-test-"))
    spec = SandboxSpec(
        state_dir=state_dir,
        serve_port=free_port(),
        dashboard_port=free_port(),
        **({"workers": 2, "restart_delay": 2.0} | settings),
    )
    box = Sandbox(state_dir)
    try:
        box.up(spec, timeout=300, progress=print)
        yield box
    finally:
        result = box.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not result.leftovers, f"sandbox processes left behind: {result.leftovers}"


@pytest.fixture(scope="session")
def user_wheel(tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    """The extension's wheel installed in a fresh venv (built once per session, ~2 min)."""
    root = Path(__file__).resolve().parents[2]
    return installed_wheel(root, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def start_sandbox() -> Callable[..., AbstractContextManager[Sandbox]]:
    """`running_sandbox`, for modules that need a sandbox of their own."""
    return running_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as box:
        yield box


@pytest.fixture()
def healthy_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox, once every pod, endpoint and application is back to ready."""
    from chaosraysvc.config import Settings
    from chaosraysvc.recovery import wait_until_healthy
    from chaosraysvc.targets.sandbox import SandboxTarget

    wait_until_healthy(SandboxTarget(Settings(sandbox_state_dir=sandbox.state_dir)), 240)
    return sandbox


@pytest.fixture()
def configuration(sandbox: Sandbox) -> dict[str, str]:
    """Chaos Toolkit configuration pointing activities at the session sandbox."""
    return {"raysvc_target": "sandbox", "sandbox_state_dir": str(sandbox.state_dir)}


@pytest.fixture
def engines() -> Iterator[list[TrafficEngine]]:
    """Engines a test starts; all are stopped, whatever happens."""
    started: list[TrafficEngine] = []
    try:
        yield started
    finally:
        for engine in started:
            engine.stop(timeout=5)
        registry.stop_engine()
        assert not [t for t in threading.enumerate() if t.name == "chaosraysvc-traffic"]
