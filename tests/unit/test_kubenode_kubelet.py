"""The process kubelet's pure parts: the image table, probe thresholds and commands, mounts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chaosraysvc.runtime import container_probes, containers, pid1
from chaosraysvc.runtime.executables import HOST_PATH
from chaosraysvc_lab import images
from chaosraysvc_lab.podrun import _mount_script


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("rayproject/ray:2.46.0", "rayproject/ray"),
        ("docker.io/rayproject/ray:2.46.0-py311", "rayproject/ray"),
        ("redis:7.4.0", "redis"),
        ("docker.io/library/redis@sha256:abc", "redis"),
        ("localhost:5000/chaosraysvc:0.1.0", "chaosraysvc"),
        ("quay.io/kuberay/operator:v1.5.0", "kuberay/operator"),
    ],
)
def test_the_repository_drops_registry_library_tag_and_digest(image: str, repository: str) -> None:
    assert images.repository(image) == repository


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ["/agnhost", "pause"]),  # the image's ENTRYPOINT and CMD
        ([], ["netexec", "--http-port=8080"], ["/agnhost", "netexec", "--http-port=8080"]),
        (["/bin/sh", "-c"], [], ["/bin/sh", "-c"]),  # command drops the image's CMD too
        (["/bin/sh", "-c"], ["exit 3"], ["/bin/sh", "-c", "exit 3"]),
    ],
)
def test_command_replaces_the_entrypoint_and_args_replace_the_cmd(
    command: list[str], args: list[str], argv: list[str]
) -> None:
    agnhost = images.Runtime("agnhost", (), entrypoint=("/agnhost",), cmd=("pause",))

    assert agnhost.argv(command, args) == argv


def test_the_project_image_runs_chaos_as_its_containerfile_says() -> None:
    project = images.runtime_for("chaosraysvc:0.1.0")
    containerfile = (images.SOURCE / "deploy" / "Containerfile").read_text()

    assert f"ENTRYPOINT {list(project.entrypoint)}".replace("'", '"') in containerfile
    assert f"CMD {list(project.cmd)}".replace("'", '"') in containerfile
    assert project.argv([], ["run", "x.json"]) == ["chaos", "run", "x.json"]


def test_images_map_to_local_runtimes_and_others_fail_to_pull() -> None:
    ray = images.runtime_for("rayproject/ray:2.46.0")
    redis = images.runtime_for("redis:7.4.0")

    assert ray.name == "ray" and ray.workdir == "/home/ray"
    assert (redis.name, redis.volumes, redis.workdir) == ("redis", ("/data",), "/data")
    assert (Path(redis.bin_dirs[0]) / "redis-server").is_file()
    assert images.runtime_for("rayproject/ray-ml:2.9.0").name == "ray"
    with pytest.raises(images.ImagePullError, match=r'Failed to pull image "nginx:1.27"') as err:
        images.runtime_for("nginx:1.27")
    assert err.value.reason == "ErrImagePull"
    assert "rayproject/ray*" in str(err.value)


def test_a_redis_70_image_runs_debians_redis_70_or_fails_to_pull_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "redis-check-rdb"  # what Debian's redis-tools installs, answering 7.0.15
    fake.write_text("#!/bin/sh\necho redis-check-rdb 7.0.15\n")
    fake.chmod(0o755)
    monkeypatch.setattr(images, "DEBIAN_REDIS", fake)
    monkeypatch.setattr(images, "REDIS7_DIR", tmp_path / "redis-7.0" / "bin")

    redis = images.runtime_for("docker.io/library/redis:7.0.15")

    assert redis.bin_dirs[0] == str(tmp_path / "redis-7.0" / "bin")
    for name in ("redis-server", "redis-sentinel"):  # the binary picks its role by name
        assert (Path(redis.bin_dirs[0]) / name).resolve() == fake
    assert str(images.REDIS7_DIR) in images.host_paths()  # seen by pods with a private /tmp
    assert images.runtime_for("redis:7.4.0").bin_dirs[0] != redis.bin_dirs[0]  # the wheel's
    fake.write_text("#!/bin/sh\necho redis-check-rdb 6.0.16\n")
    with pytest.raises(images.ImagePullError, match=r"found Redis 6\.0\.16.*redis-tools"):
        images.runtime_for("redis:7.0")
    monkeypatch.setattr(images, "DEBIAN_REDIS", tmp_path / "absent")
    with pytest.raises(images.ImagePullError, match=r"no .*absent.*redis-tools"):
        images.runtime_for("redis:7.0.15")


def test_readiness_flips_at_its_thresholds() -> None:
    probe = container_probes.ProbeState({"successThreshold": 2, "failureThreshold": 3})

    probe.record(True, "")
    assert probe.passed is False  # one success of two
    probe.record(True, "")
    assert probe.passed is True
    probe.record(False, "")
    probe.record(False, "")
    assert probe.passed is True and not probe.failed_out()
    probe.record(False, "boom")
    assert probe.passed is False and probe.failed_out()
    assert probe.last_output == "boom"


def test_probe_commands_for_each_handler() -> None:
    container = {"ports": [{"name": "dashboard", "containerPort": 8265}]}

    assert container_probes.command(
        {"exec": {"command": ["bash", "-c", "true"]}}, container, "1.2.3.4"
    ) == [
        "bash",
        "-c",
        "true",
    ]
    http = container_probes.command(
        {"httpGet": {"path": "/-/healthz", "port": "dashboard"}, "timeoutSeconds": 2},
        container,
        "198.18.10.12",
    )
    assert http[-1] == "http://198.18.10.12:8265/-/healthz" and "-T" in http
    # the kubelet's own HTTP and TCP checks: the host's tools, not the image's (busybox's
    # wget takes other flags) however the container's PATH begins
    assert http[0] == shutil.which("wget", path=HOST_PATH)
    tcp = container_probes.command({"tcpSocket": {"port": 6379}}, container, "198.18.10.12")
    assert tcp == [shutil.which("bash", path=HOST_PATH), "-c", "exec 3<>/dev/tcp/198.18.10.12/6379"]
    with pytest.raises(ValueError, match="no container port named 'metrics'"):
        container_probes.command({"httpGet": {"port": "metrics"}}, container, "x")


def test_a_container_s_setup_and_netns_use_the_host_s_tools_not_its_image_s() -> None:
    """The e2e images put busybox first on PATH: its `ip` printed usage and every pod failed.
    The set-up script goes to the launcher, which runs it with the host's PATH; no shell
    stands between the launcher and the container's command."""
    argv = containers.command(["sleep", "1"], setup_script="mount --bind /a /b", netns="crs1-2",
                              workdir="/w")  # fmt: skip

    assert argv[0] == shutil.which("ip", path=HOST_PATH)
    assert argv[argv.index("--") :] == ["--", "sleep", "1"]
    assert "--setup=mount --bind /a /b" in argv and "--workdir=/w" in argv
    assert pid1.HOST_PATH == HOST_PATH  # the launcher runs isolated: its own copy


def test_a_probe_that_exits_non_zero_or_hangs_fails() -> None:
    assert container_probes.run([], ["true"], {"PATH": "/usr/bin:/bin"}, 5) == (True, "")
    assert container_probes.run(
        [], ["sh", "-c", "echo no; exit 1"], {"PATH": "/usr/bin:/bin"}, 5
    ) == (
        False,
        "no",
    )
    ok, output = container_probes.run([], ["sleep", "5"], {"PATH": "/usr/bin:/bin"}, 0.3)
    assert not ok and "timed out" in output


def test_the_mount_script_binds_dirs_and_files_then_execs_in_the_workdir(tmp_path: Path) -> None:
    source_dir = tmp_path / "vol"
    source_dir.mkdir()
    source_file = tmp_path / "redis.conf"
    source_file.write_text("dir /data\n")

    script = _mount_script(
        [(str(source_dir), "/data", False), (str(source_file), "/etc/redis/redis.conf", True)],
        "/data",
    )

    assert "mkdir -p /data\nmount --bind " + str(source_dir) + " /data" in script
    assert "[ -e /etc/redis/redis.conf ] ||" in script  # a file mount point for a file
    assert "mount -o remount,bind,ro /etc/redis/redis.conf" in script
    assert script.endswith("cd /data")  # the runtime then execs the container's command
    syntax = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_a_mount_over_the_directory_holding_other_sources_is_bound_last() -> None:
    script = _mount_script(
        [
            ("/tmp/node/pod/empty-dir/tmp", "/tmp", False),
            ("/tmp/node/pod/configmap/settings", "/etc/chaosraysvc", True),
        ]
    )

    assert script.index("mount --bind /tmp/node/pod/configmap/settings") < script.index(
        "mount --bind /tmp/node/pod/empty-dir/tmp /tmp"
    )


@pytest.mark.parametrize(("code", "ready"), [(0, True), (1, False)])
def test_an_init_container_that_completed_is_ready_as_the_kubelet_reports_it(
    code: int, ready: bool
) -> None:
    """Kubernetes' e2e "should invoke init containers on a RestartNever pod" failed: an init
    container that exited 0 must say `ready: true` (it said false: nothing was running)."""
    from chaosraysvc_lab.podrun import Container

    init = Container(None, "init1", "busybox", exited={"exitCode": code, "reason": "Completed"})

    status = init.status()

    assert status["ready"] is ready
    assert status["state"] == {"terminated": {"exitCode": code, "reason": "Completed"}}


def test_resolv_conf_follows_dns_policy_and_dns_config() -> None:
    """Kubernetes' e2e "should support configurable pod DNS nameservers" and "...resolv.conf"."""
    from chaosraysvc_lab.kubelet import resolv_conf

    plain = {"metadata": {"namespace": "ml"}, "spec": {}}
    custom = {
        "metadata": {"namespace": "ml"},
        "spec": {
            "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["resolv.conf.local"],
                          "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
        },
    }  # fmt: skip
    merged = {"metadata": {"namespace": "ml"},
              "spec": {"dnsConfig": {"searches": ["extra.local"],
                                     "options": [{"name": "ndots", "value": "1"}]}}}  # fmt: skip

    assert resolv_conf(plain, "198.19.0.10") == (
        "nameserver 198.19.0.10\nsearch ml.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    assert resolv_conf(custom, "198.19.0.10") == (
        "nameserver 1.1.1.1\nsearch resolv.conf.local\noptions ndots:2 edns0\n"
    )
    assert "cluster.local extra.local\noptions ndots:1\n" in resolv_conf(merged, "198.19.0.10")


def test_pod_ips_are_handed_out_in_rotation_not_reused_at_once() -> None:
    from chaosraysvc_lab.kubelet import next_slot

    assert next_slot(0, set()) == 1
    assert next_slot(3, {1, 2}) == 4  # slot 3 was just freed: not given again at once
    assert next_slot(239, {2}) == 1  # wraps round
    assert next_slot(5, {6, 7}) == 8
