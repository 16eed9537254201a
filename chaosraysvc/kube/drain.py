"""Drain a Kubernetes node as `kubectl drain` does, and undo the cordon.

`cordon` marks the node unschedulable and notes who did it (the annotation `CORDONED_BY`, so
the rollback uncordons only the nodes this RayService's run cordoned, never one an operator
had cordoned before). `evict` asks the Eviction API for every pod on the node except
DaemonSet pods (their controller ignores cordons: kubectl drain's --ignore-daemonsets) and
static (mirror) pods (a pod no controller owns is refused unless forced, as kubectl drain
does), honouring PodDisruptionBudgets: a pod whose budget forbids the eviction
now (429) is asked again every `RETRY_S` until the deadline. Unlike kubectl drain, a pod with
an emptyDir volume is evicted without asking (its data goes, as with any deletion). A grace
period of 0 is the API's immediate deletion: the pod object goes at once, its processes when
the kubelet ends them (kubectl turns 0 into 1 unless --force). It then waits until every
evicted pod is gone (deleted, or replaced by a pod of another uid), as kubectl drain does.
Every step is timed (epoch seconds) for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from chaosraysvc.errors import FaultNotEffectiveError, RefusedError
from chaosraysvc.kube.client import KubeApi

CORDONED_BY = "chaosraysvc.io/cordoned-by"
MIRROR = "kubernetes.io/config.mirror"
RETRY_S = 5.0
POLL_S = 1.0


@dataclass(frozen=True)
class Planned:
    """One pod on the node, and whether the drain evicts it (else `skipped` says why)."""

    namespace: str
    name: str
    uid: str
    skipped: str = ""
    unmanaged: bool = False  # no controller would make it again (kubectl drain's --force)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Drained:
    """What a drain did, with when (epoch seconds)."""

    node: str
    cordoned: bool  # False: it was cordoned already (the rollback leaves it so)
    cordoned_at: float
    evicted: dict[str, float] = field(default_factory=dict)  # pod -> eviction accepted
    vanished: list[str] = field(default_factory=list)  # gone before its eviction (404)
    gone: dict[str, float] = field(default_factory=dict)  # pod -> seen deleted
    blocked: dict[str, str] = field(default_factory=dict)  # pod -> the last 429's message
    # pod -> its first 429, kept once evicted: how long a budget held it (evicted - held)
    held: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # pod -> why not evicted

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "cordoned": self.cordoned,
            "cordoned_at": self.cordoned_at,
            "evicted": dict(self.evicted),
            "vanished": list(self.vanished),
            "gone": dict(self.gone),
            "blocked": dict(self.blocked),
            "held": dict(self.held),
            "skipped": dict(self.skipped),
        }


def plan(api: KubeApi, node: str) -> list[Planned]:
    """The pods on `node`, each marked with why it is not evicted (if it is not)."""
    return [_planned(pod) for pod in api.list_pods_on_node(node)]


def _planned(pod: client.V1Pod) -> Planned:
    meta = pod.metadata or client.V1ObjectMeta()
    why = ""
    owners = meta.owner_references or []
    if any(o.kind == "DaemonSet" and o.controller for o in owners):
        why = "a DaemonSet's pod (its controller ignores the cordon)"
    elif MIRROR in (meta.annotations or {}):
        why = "a static pod (its kubelet's, not the API server's)"
    elif pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
        why = f"finished ({pod.status.phase})"
    elif meta.deletion_timestamp is not None:
        why = "already being deleted"
    unmanaged = not any(o.controller for o in owners)
    return Planned(str(meta.namespace), str(meta.name), str(meta.uid or ""), why, unmanaged)


def refuse_unmanaged(node: str, pods: list[Planned]) -> None:
    """Refuse, as kubectl drain does without --force, when a pod to evict has no controller:
    nothing would make it again (`RefusedError` naming them)."""
    bare = sorted(p.key for p in pods if p.unmanaged and not p.skipped)
    if bare:
        raise RefusedError(
            f"refusing to drain node '{node}': {', '.join(bare)} has no controller (a bare "
            "pod: evicted, nothing makes it again), as kubectl drain refuses without --force. "
            "Move or delete it first, or pass force=true to evict it anyway"
        )


def cordon(api: KubeApi, node: str, owner: str, dry_run: bool = False) -> bool:
    """Mark `node` unschedulable, noting `owner`; return False if it was already cordoned
    (then it is left as it was, and `uncordon` will not touch it)."""
    found = api.get_node(node)
    if found.spec is not None and found.spec.unschedulable:
        return False
    api.patch_node(
        node, {"spec": {"unschedulable": True}, "metadata": {"annotations": {CORDONED_BY: owner}}},
        dry_run,
    )  # fmt: skip
    return True


def uncordon(api: KubeApi, owner: str) -> list[str]:
    """Make schedulable again every node `owner` cordoned; return their names."""
    done = []
    for node in api.list_nodes():
        meta = node.metadata or client.V1ObjectMeta()
        if (meta.annotations or {}).get(CORDONED_BY) != owner:
            continue
        patch = {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY: None}}}
        api.patch_node(str(meta.name), patch)
        done.append(str(meta.name))
    return done


def evict(
    api: KubeApi,
    node: str,
    pods: list[Planned],
    deadline: float,
    grace_period: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    drained: Drained | None = None,
) -> Drained:
    """Evict `pods` (those not skipped), then wait until each is gone; by `deadline` (epoch
    seconds) or raise `RefusedError` (a budget still forbids one: named with its message)
    or `FaultNotEffectiveError` (evicted, not gone: a node that does not end its pods)."""
    result = drained or Drained(node, True, clock())
    result.skipped.update({p.key: p.skipped for p in pods if p.skipped})
    waiting = {p.key: p for p in pods if not p.skipped}
    while waiting:
        for key, pod in list(waiting.items()):
            refused = api.evict_pod(pod.namespace, pod.name, grace_period)
            if not refused:
                result.evicted[key] = clock()
            elif refused == "gone":
                result.vanished.append(key)
            else:
                result.blocked[key] = refused
                result.held.setdefault(key, clock())
                continue
            result.blocked.pop(key, None)
            del waiting[key]
        if waiting and clock() + RETRY_S > deadline:
            names = "; ".join(f"{k}: {result.blocked[k]}" for k in waiting)
            raise _partial(RefusedError(
                f"drain of node '{node}' not finished: a PodDisruptionBudget still forbids "
                f"evicting {names}. The node is uncordoned again at once when no pod was "
                "evicted, else by the rollback (uncordon_node); raise the budget's allowance "
                "or the timeout"
            ), result)  # fmt: skip
        if waiting:
            sleep(RETRY_S)
    try:
        _await_gone(api, node, [p for p in pods if not p.skipped], deadline, clock, sleep, result)
    except FaultNotEffectiveError as exc:
        raise _partial(exc, result) from None
    return result


def _partial(error: Exception, result: Drained) -> Exception:
    """`error` carrying what the drain did before it (`error.drained`, JSON): whether the
    pod it was for was evicted decides whether its fault happened."""
    error.drained = result.to_json()  # type: ignore[attr-defined]
    return error


def partial(error: BaseException) -> dict[str, Any]:
    """What a failed drain did before failing ({} when it got to no eviction)."""
    found = getattr(error, "drained", None)
    return found if isinstance(found, dict) else {}


def _await_gone(
    api: KubeApi,
    node: str,
    pods: list[Planned],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    result: Drained,
) -> None:
    left = {p.uid: p for p in pods}
    while left:
        present = {str(p.metadata.uid) for p in api.list_pods_on_node(node) if p.metadata}
        for uid in [u for u in left if u not in present]:
            result.gone[left.pop(uid).key] = clock()
        if not left:
            return
        if clock() > deadline:
            names = ", ".join(sorted(p.key for p in left.values()))
            raise FaultNotEffectiveError(
                f"node '{node}' drained but {names} still there at the deadline: evicted "
                "pods that do not end (a grace period longer than the timeout, or a node "
                "whose kubelet does not run): raise the timeout or look at the node"
            )
        sleep(POLL_S)
