"""The node's pod networks on the real kernel: a slot can be reused at once.

`ip netns delete` returns before the kernel destroys the namespace's devices; under load the
host end of the old veth was still there when a replacement pod (or the next node) took the
same slot, and the pod failed with "File exists".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosraysvc_lab.network import NodeNetwork, ip

from .conftest import requires_namespaces

pytestmark = [pytest.mark.node, requires_namespaces]


@pytest.fixture
def net() -> Iterator[NodeNetwork]:
    net = NodeNetwork.pick()
    net.create()
    try:
        yield net
    finally:
        net.destroy()
        assert net.netns_prefix not in ip("netns", "list", check=False)
        assert f"crsv{net.index}x" not in ip("link", "show", check=False)
        assert net.bridge not in ip("link", "show", check=False)


def test_a_slot_whose_old_veth_is_still_there_gets_its_pod_network(net: NodeNetwork) -> None:
    # What the kernel had not destroyed yet: the slot's host veth, its peer elsewhere.
    peer = f"crsst{net.index}"
    ip("link", "add", net.host_if(3), "type", "veth", "peer", "name", peer)

    netns, pod_ip = net.add_pod(3)

    assert f"inet {pod_ip}/24" in ip("addr", "show", "eth0", netns=netns)
    assert f"master {net.bridge}" in ip("link", "show", net.host_if(3))
    assert peer not in ip("link", "show", check=False)  # the stale pair went as a whole


def test_a_slot_reused_at_once_gets_its_pod_network_every_time(net: NodeNetwork) -> None:
    for _ in range(10):
        netns, pod_ip = net.add_pod(4)
        assert f"inet {pod_ip}/24" in ip("addr", "show", "eth0", netns=netns)
        net.remove_pod(4)
        assert not ip("link", "show", net.host_if(4), check=False)


def test_down_of_a_stale_directory_leaves_the_running_nodes_network(
    net: NodeNetwork, tmp_path: Path
) -> None:
    # A node's `up` failed or crashed earlier in `stale/`, which still names network index N;
    # the node running now (it holds the machine's lock) got the same index.
    import json

    from chaosraysvc_lab.agent import try_lock
    from chaosraysvc_lab.stack import KubeNode

    lock = try_lock()
    if lock is None:
        pytest.skip("a lab node runs on this machine now: it holds the lock this test needs")
    try:
        stale = tmp_path / "stale"
        stale.mkdir()
        (stale / "node.json").write_text(json.dumps({"node_index": net.index}))

        KubeNode(stale).down()

        assert net.bridge in ip("link", "show", check=False)  # the running node's, untouched
    finally:
        lock.close()
