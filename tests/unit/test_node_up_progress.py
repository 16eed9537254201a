"""What `chaosraysvc-lab node up` shows while pods fail to start (issue 25 item 2): the pod,
the container, the reason and its log's last line, and the path of that log."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from chaosraysvc_lab import stack


def _pod(uid: str, status: client.V1ContainerStatus) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="rayservice-ha-head-x", uid=uid),
        status=client.V1PodStatus(phase="Running", container_statuses=[status]),
    )


def test_a_crash_looping_container_is_named_with_its_reason_and_last_log_line(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "u1" / "logs" / "ray-head"
    logs.mkdir(parents=True)
    (logs / "2.log").write_text(
        "2026-12-05T01:00:00.1Z stdout F starting\n"
        "2026-12-05T01:00:00.2Z stderr F /bin/sh: 1: ray: not found\n"
    )
    stack._pod_logs[0] = tmp_path
    crashing = client.V1ContainerStatus(
        name="ray-head", image="rayproject/ray", image_id="", ready=False, restart_count=2,
        state=client.V1ContainerState(
            waiting=client.V1ContainerStateWaiting(reason="CrashLoopBackOff")),
        last_state=client.V1ContainerState(
            terminated=client.V1ContainerStateTerminated(exit_code=127)),
    )  # fmt: skip
    running = client.V1ContainerStatus(
        name="ray-head", image="rayproject/ray", image_id="", ready=True, restart_count=0,
        state=client.V1ContainerState(running=client.V1ContainerStateRunning()),
    )  # fmt: skip

    troubles = stack._troubles(_pod("u1", crashing))

    assert troubles == [
        "rayservice-ha-head-x/ray-head CrashLoopBackOff: '/bin/sh: 1: ray: not found' "
        f"(log: {logs / '2.log'})"
    ]
    assert stack._troubles(_pod("u2", running)) == []
