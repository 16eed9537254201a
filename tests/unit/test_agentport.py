from __future__ import annotations

from pathlib import Path

from chaosraysvc.sandbox.agentport import write_agent_port


def _session(tmp_path: Path) -> Path:
    session = tmp_path / "session_2026-01-01_00-00-00_000000_1"
    (session / "logs").mkdir(parents=True)
    (tmp_path / "session_latest").symlink_to(session)
    return session


def test_the_port_file_is_written_once_the_raylet_logged_its_node_id(tmp_path: Path) -> None:
    session = _session(tmp_path)
    (session / "logs" / "raylet.out").write_text(
        "[..] (raylet) node_manager.cc:293: Initializing NodeManager node_id=ab12cd\n"
    )
    assert write_agent_port(tmp_path, 23456, timeout=2)
    assert (session / "dashboard_agent_listen_port_ab12cd").read_text() == "23456"


def test_an_existing_port_file_is_left_alone(tmp_path: Path) -> None:
    session = _session(tmp_path)
    (session / "logs" / "raylet.out").write_text("Initializing NodeManager node_id=ff\n")
    (session / "dashboard_agent_listen_port_ff").write_text("11111")
    assert write_agent_port(tmp_path, 22222, timeout=2)
    assert (session / "dashboard_agent_listen_port_ff").read_text() == "11111"


def test_gives_up_when_the_raylet_never_starts(tmp_path: Path) -> None:
    _session(tmp_path)
    assert not write_agent_port(tmp_path, 1, timeout=0.2)
