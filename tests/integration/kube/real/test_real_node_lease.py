"""The lab's Node heartbeat against the real API server: the Lease is renewed, as a kubelet
renews it, and a kubelet that comes back (a lost node restored) takes its Node over.

The node-lifecycle controller reads the Lease (and the Ready condition's heartbeat): a Lease
never renewed leaves the status heartbeat alone to keep a node Ready, which is not how a
kubelet does it; and a Lease refuses an update without its resourceVersion (422).
"""

from __future__ import annotations

import datetime

import pytest
from kubernetes import client

from chaosraysvc_lab.node import NODE_LEASE_NAMESPACE, NodeHeartbeat
from tests.support.polling import wait_for

from .conftest import RealPlane

pytestmark = pytest.mark.apiserver
NAME = "lease-test-node"


def _renewed(coordination: client.CoordinationV1Api) -> datetime.datetime:
    lease = coordination.read_namespaced_lease(NAME, NODE_LEASE_NAMESPACE)
    return lease.spec.renew_time


def test_the_lease_is_renewed_and_a_restarted_heartbeat_takes_the_node_over(
    real_plane: RealPlane,
) -> None:
    coordination = client.CoordinationV1Api(real_plane.api)
    core = client.CoreV1Api(real_plane.api)
    first = NodeHeartbeat(real_plane.api, NAME, "198.18.0.9", interval=0.5).start()
    try:
        created = _renewed(coordination)
        wait_for(lambda: _renewed(coordination) > created, 10, what="the Lease renewed")
        assert first.errors == []
    finally:
        first.stop()  # the kubelet is gone; its Node and Lease stay
    again = NodeHeartbeat(real_plane.api, NAME, "198.18.0.9", interval=0.5).start()
    try:
        before = _renewed(coordination)
        wait_for(lambda: _renewed(coordination) > before, 10, what="the Lease renewed again")
        assert again.errors == []
        lease = coordination.read_namespaced_lease(NAME, NODE_LEASE_NAMESPACE)
        assert lease.spec.holder_identity == NAME and lease.spec.lease_duration_seconds == 40
    finally:
        again.stop()
        core.delete_node(NAME)
        coordination.delete_namespaced_lease(NAME, NODE_LEASE_NAMESPACE)
