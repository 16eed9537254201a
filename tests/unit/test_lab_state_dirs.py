"""One state directory, every command understands what is in it (issue 25 item 4).

A lab node's state written by the test (no root, no node): `chaosraysvc sandbox status|logs`
name the lab's command, and the lab's `node status` / `controlplane status` take the
top-level directory as well as the node's or the control plane's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosraysvc.cli import main
from chaosraysvc_lab import cli as lab_cli

PLANE = {"api_port": 6443, "etcd_port": 2379, "bin_dir": "/nowhere", "started_at": 1.0}


def lab_node(top: Path, place: str = "kube") -> Path:
    """The files a lab node leaves in `top/place`: node.json, kube.env and cp/'s state."""
    node = top / place if place else top
    (node / "cp").mkdir(parents=True)
    (node / "node.json").write_text(json.dumps({"agent": None}))
    (node / "kube.env").write_text("export RAYSVC_TARGET=kubernetes\n")
    (node / "cp" / "controlplane.json").write_text(json.dumps(PLANE))
    return node


@pytest.mark.parametrize("place", ["kube", ""])
def test_sandbox_status_names_the_lab_node_in_its_state_dir(
    tmp_path: Path, place: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node = lab_node(tmp_path, place)
    assert main(["sandbox", "status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sandbox: absent" in out
    assert f"a lab node's state is in {node}" in out
    assert f"`chaosraysvc-lab node status --state-dir {tmp_path}`" in out
    assert main(["sandbox", "status", "--json", "--state-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["lab_node_state_dir"] == str(node)


def test_sandbox_status_without_a_node_says_nothing_of_the_lab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "status", "--state-dir", str(tmp_path)]) == 0
    assert "lab" not in capsys.readouterr().out


def test_sandbox_logs_names_the_lab_node_instead_of_no_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = lab_node(tmp_path)
    assert main(["sandbox", "logs", "--state-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert f"a lab node's state is in {node}" in err
    assert f"`chaosraysvc-lab node status --state-dir {tmp_path}`" in err


@pytest.mark.parametrize("given", ["", "kube"])
def test_lab_node_status_reads_the_node_from_the_top_dir_or_its_own(
    tmp_path: Path, given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node = lab_node(tmp_path)
    lab_cli.main(["node", "status", "--json", "--state-dir", str(tmp_path / given)])
    assert json.loads(capsys.readouterr().out)["state_dir"] == str(node.resolve())


@pytest.mark.parametrize("given", ["", "kube", "kube/cp"])
def test_lab_controlplane_status_reads_the_plane_from_any_of_its_dirs(
    tmp_path: Path, given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node = lab_node(tmp_path)
    lab_cli.main(["controlplane", "status", "--json", "--state-dir", str(tmp_path / given)])
    body = json.loads(capsys.readouterr().out)
    assert body["state_dir"] == str((node / "cp").resolve())
    assert body["server"] == "https://127.0.0.1:6443"


def test_kube_env_settings_are_read_back_as_written(tmp_path: Path) -> None:
    from chaosraysvc_lab.stack import KubeNode, _read_env

    node = KubeNode(tmp_path)
    assert _read_env(node.env_file) == {}  # none yet
    written = {"KUBECONFIG": "/x/admin.kubeconfig", "RAYSVC_SERVE_URL": "http://198.19.0.9:8000"}
    node._write_env(written)
    assert node.env_file.read_text().startswith("export KUBECONFIG=/x/admin.kubeconfig\n")
    assert _read_env(node.env_file) == written


def test_metrics_beside_a_node_need_a_running_node(tmp_path: Path) -> None:
    from chaosraysvc_lab.stack import KubeNode, NodeError

    with pytest.raises(NodeError, match="no node runs in .*: bring one up first"):
        KubeNode(tmp_path).start_metrics(15)
