"""A new `sandbox up` starts a new Ray cluster: a previous sandbox's GCS Redis data is wiped
unless `--keep-state`, and `up` says what it removed or kept, and where (issue 10). No Ray
cluster is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.cli import main
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.sandbox.carryover import settle_previous_state
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.spec import SandboxSpec

AOF = Path("redis-data/appendonlydir/appendonly.aof.1.incr.aof")


def previous_sandbox(state_dir: Path) -> Path:
    """What `sandbox down` leaves of a sandbox that ran with persistent Redis storage."""
    for path, text in (
        (AOF, "*2\r\n$6\r\nSELECT\r\n"),
        (Path("redis-data/dump.rdb"), "REDIS0011"),
        (Path("redis/redis-x2k9q.conf"), "requirepass old-password\n"),
        (Path("logs/supervisor.log"), "the previous sandbox's supervisor\n"),
    ):
        (state_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (state_dir / path).write_text(text)
    return state_dir


def test_up_wipes_the_previous_clusters_gcs_data_and_keeps_the_logs(tmp_path: Path) -> None:
    state_dir = previous_sandbox(tmp_path)

    carryover = settle_previous_state(state_dir)

    assert not (state_dir / "redis-data").exists() and not (state_dir / "redis").exists()
    assert (state_dir / "logs" / "supervisor.log").exists()
    said = "\n".join(carryover.lines())
    assert f"removed the previous sandbox's Ray cluster state (GCS Redis data) in {state_dir}" in (
        said
    )
    assert f"in {state_dir}: redis-data, redis;" in said
    assert "--keep-state keeps it" in said
    assert f"kept the previous logs in {state_dir / 'logs'}" in said


def test_keep_state_keeps_the_gcs_data_and_says_so(tmp_path: Path) -> None:
    state_dir = previous_sandbox(tmp_path)

    carryover = settle_previous_state(state_dir, keep_state=True)

    assert (state_dir / AOF).exists() and (state_dir / "redis" / "redis-x2k9q.conf").exists()
    said = "\n".join(carryover.lines())
    assert f"kept the previous sandbox's Ray cluster state (GCS Redis data) in {state_dir}" in said
    assert "redis-data, redis (--keep-state)" in said
    assert "removed" not in said


def test_a_fresh_state_dir_has_nothing_to_say(tmp_path: Path) -> None:
    assert settle_previous_state(tmp_path).lines() == []
    assert settle_previous_state(tmp_path / "not-yet", keep_state=True).lines() == []


def test_keep_state_with_an_ephemeral_redis_is_refused(tmp_path: Path) -> None:
    spec = SandboxSpec(state_dir=tmp_path, redis_storage="ephemeral")

    with pytest.raises(ConfigurationError, match="--keep-state .* ephemeral Redis starts empty"):
        Sandbox(tmp_path).up(spec, keep_state=True)


def test_up_help_says_what_persists_and_where(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "up", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--keep-state" in text
    assert "STATE_DIR/redis-data" in text and "removed first, unless --keep-state" in text
    assert "Logs (STATE_DIR/logs) are kept" in text


def test_keep_state_with_other_ports_than_the_kept_cluster_is_refused(tmp_path: Path) -> None:
    state_dir = previous_sandbox(tmp_path)
    SandboxSpec(state_dir=state_dir, serve_port=8100).save()

    with pytest.raises(ConfigurationError, match="used --serve-port 8100: start with the same"):
        Sandbox(state_dir).up(SandboxSpec(state_dir=state_dir, serve_port=8200), keep_state=True)
    assert (state_dir / AOF).exists()


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        ({}, {"head_in_serve_svc": False}, "started without --exclude-head-from-serve-svc"),
        ({"head_in_serve_svc": False}, {}, "started with --exclude-head-from-serve-svc"),
        ({}, {"endpoint_ports": True}, "started without --endpoint-ports"),
        ({"endpoint_ports": True}, {}, "started with --endpoint-ports"),
    ],
)
def test_keep_state_with_another_serve_set_up_than_the_kept_cluster_is_refused(
    tmp_path: Path, before: dict[str, bool], after: dict[str, bool], said: str
) -> None:
    # The restored Serve config keeps the head's proxy on its old port: a head moved out of
    # the Service by the flag alone would still listen on the serve port (issue 10, defect 3).
    state_dir = previous_sandbox(tmp_path)
    SandboxSpec(state_dir=state_dir, **before).save()

    with pytest.raises(ConfigurationError, match=f"{said}: its Serve config keeps the head"):
        Sandbox(state_dir).up(SandboxSpec(state_dir=state_dir, **after), keep_state=True)
    assert (state_dir / AOF).exists()


def test_keep_state_keeps_the_head_proxy_port_of_the_kept_cluster(tmp_path: Path) -> None:
    state_dir = previous_sandbox(tmp_path)
    SandboxSpec(state_dir=state_dir, head_in_serve_svc=False, head_proxy_port=28334).save()
    spec = SandboxSpec(state_dir=state_dir, head_in_serve_svc=False)

    assert Sandbox(state_dir)._kept_setup(spec).head_proxy_port == 28334
