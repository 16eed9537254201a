"""Name the likely cause of failed (or slowed) requests when it matches a known pattern.

Patterns (each seen in sandbox runs during faults):

- `deleted-pod-proxy`: the failures hit the deleted pod's own proxy (its endpoint label),
  or, through a shared Service, happened within a second of the deletion as refused or
  dropped connections or 5xx answers: requests in flight on the pod that went away (its
  proxy, or one of its replicas behind another proxy).
  Linked to the doctor's `head-in-serve-svc` risk when the head was deleted.
- `surviving-proxy-stall`: after a head or worker deletion, timeouts through other
  proxies. Head: an ingress replica still holds a request from the dead head proxy and
  the proxies trust their cached queue lengths (`RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S`,
  10 s) for a while; linked to `head-in-serve-svc`. Worker: requests routed to the dead
  pod's replicas hang until Serve learns they are gone.
- `cluster-restart-after-redis-loss`: after the Redis pod was deleted, failures on every
  endpoint at once (or on the Service for more than a second): the GCS state was lost and
  the cluster restarted from scratch. Linked to `gcs-storage-ephemeral`.
- `head-restart-after-redis-loss`: failures after a Redis deletion that did not take the
  whole cluster down: the GCS exits without Redis and restarts the head, and requests
  through the head's proxy fail meanwhile. Linked to `head-in-serve-svc`.
- `lost-node-silence` (a lost node, `lose_node`): failures from the loss until the serve
  Service dropped the endpoints on the node (its `endpoints_dropped` mark): a lost machine
  answers nothing, so requests routed to it wait for the client's timeout instead of being
  refused; a worker's endpoint stays until the Node is NotReady (the node-monitor grace).
- `lost-node-stall` (a lost node): failures after the Service dropped them: requests through
  surviving proxies routed to replicas on the lost node, until Serve learns the node is dead
  (with the head lost too, only once a new GCS runs). Linked to the doctor's
  `replicas-one-node` risk when the doctor's risks are given and include it.
- `brownout-without-errors`: no failure, but throughput fell below the brownout ratio of the
  baseline while the fault lasted.

A cause names a doctor risk only when the run's set-up is known to have it; otherwise its
`risk` is None (and, when the set-up is unknown, the evidence says which risk it would be).
What the set-up has is taken from, first, `risks` (the doctor's risk ids for the target,
e.g. read at summary time), then the facts the delete actions record in the `fault` mark's
detail just before the deletion:

    {"pod": "head-0", "role": "head", "serve_endpoints": ["worker-1", "worker-2"],
     "head_in_serve_svc": false, "gcs_storage_persistent": true}

`head_in_serve_svc` decides `head-in-serve-svc`, `gcs_storage_persistent` (false)
`gcs-storage-ephemeral`. With the head known to be out of the serve Service, failures
right after a head deletion cannot be on its proxy: they are named
`in-flight-at-head-deletion` (requests in flight on a worker proxy, lost when the head
went away), without a risk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chaosraysvc.traffic.log import RequestRecord, TrafficLog, injected_fault

DISCONNECTS = {"connect_refused", "connect_error", "disconnected"}
NEAR_FAULT_S = 1.0
# `pod_terminated` is recorded when the recovery watcher's poll (0.5 s apart, each poll
# reading pods, endpoints and Serve) first misses the pod: up to this long after its end.
OBSERVED_END_LAG_S = 2.0
HEAD_IN_SVC = "head-in-serve-svc"
ONE_NODE = "replicas-one-node"
EPHEMERAL = "gcs-storage-ephemeral"
# The doctor risk each recorded set-up fact decides, and the value that means "present".
FACTS = {HEAD_IN_SVC: ("head_in_serve_svc", True), EPHEMERAL: ("gcs_storage_persistent", False)}


def _mark(log: TrafficLog, event: str) -> dict[str, Any] | None:
    return next((m for m in log.marks if m["event"] == event), None)


def setup_risks(detail: dict[str, Any], risks: Iterable[str] | None = None) -> dict[str, bool]:
    """Return, for each risk the set-up is known to have (True) or not (False), its id.

    `risks`, when given, is the doctor's complete list for the target and decides every
    risk in `FACTS`; otherwise the `fault` mark's recorded facts (`detail`) decide those
    they cover. A risk missing from the result is unknown.
    """
    if risks is not None:
        present = set(risks)
        return {risk: risk in present for risk in FACTS}
    known: dict[str, bool] = {}
    for risk, (fact, when_present) in FACTS.items():
        value = detail.get(fact)
        if isinstance(value, bool):
            known[risk] = value == when_present
    return known


def _risk(risk: str, known: dict[str, bool]) -> str | None:
    return risk if known.get(risk) else None


def _unverified(risk: str, known: dict[str, bool], condition: str) -> str:
    if risk in known:
        return ""
    return f" (the doctor's `{risk}` risk if {condition}; the run did not record its set-up)"


def likely_causes(
    log: TrafficLog, summary: dict[str, Any], risks: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Return the known patterns the log matches, each with its evidence and linked risk.

    `risks`: the doctor's risk ids for the target, when known; otherwise the set-up facts
    recorded in the `fault` mark decide which risk a cause may name (none when unknown).
    """
    fault = injected_fault(log)
    if fault is None:
        return []
    detail = fault.get("detail") or {}
    known = setup_risks(detail, risks)
    failed = [r for r in log.requests if not r["ok"] and r["t"] >= fault["t"] - 0.5]
    if detail.get("action") == "lose_node":
        causes = _node_loss_causes(log, failed, fault, risks)
    else:
        causes = _deletion_causes(log, summary, failed, fault, known)
    brownout = summary.get("brownout")
    if not failed and brownout:
        causes.append(
            {
                "pattern": "brownout-without-errors",
                "failures": 0,
                "evidence": f"throughput below {summary.get('brownout_ratio', 0.5):.0%} of the "
                f"baseline for {brownout.get('duration_s', 0):.1f} s with no failed request",
                "risk": None,
            }
        )
    return causes


def _node_loss_causes(
    log: TrafficLog,
    failed: list[RequestRecord],
    fault: dict[str, Any],
    risks: Iterable[str] | None,
) -> list[dict[str, Any]]:
    detail = fault.get("detail") or {}
    nodes = ", ".join(str(n) for n in detail.get("nodes") or []) or "?"
    dropped = _mark(log, "endpoints_dropped")
    until = dropped["t"] + NEAR_FAULT_S if dropped else float("inf")
    silent = [r for r in failed if r["t"] <= until]
    stalled = [r for r in failed if r["t"] > until]
    causes: list[dict[str, Any]] = []

    def span(rows: list[RequestRecord]) -> str:
        return f"{rows[0]['t'] - fault['t']:.1f}-{rows[-1]['t'] - fault['t']:.1f} s"

    if silent:
        when = (
            f"before the serve Service dropped the endpoints on it "
            f"({dropped['t'] - fault['t']:.1f} s after the loss)"
            if dropped
            else "and the serve Service never dropped the endpoints on it in the run"
        )
        causes.append(
            {
                "pattern": "lost-node-silence",
                "failures": len(silent),
                "evidence": f"{len(silent)} request(s) failed {span(silent)} after node(s) "
                f"{nodes} were lost, {when}: a lost machine answers nothing, so requests "
                "routed to it wait for the client's timeout instead of being refused",
                "risk": None,
            }
        )
    if stalled:
        if risks is None:
            risk, why = None, f" (the doctor's `{ONE_NODE}` risk if a deployment's replicas "
            why += "were all on the lost node; the run did not record its set-up)"
        else:
            risk, why = (ONE_NODE if ONE_NODE in set(risks) else None), ""
        causes.append(
            {
                "pattern": "lost-node-stall",
                "failures": len(stalled),
                "evidence": f"{len(stalled)} request(s) failed {span(stalled)} after node(s) "
                f"{nodes} were lost, after the serve Service dropped the endpoints on it: "
                "surviving proxies routing to replicas on the lost node until Serve learns "
                "the node is dead (with the head lost, once a new GCS runs)" + why,
                "risk": risk,
            }
        )
    return causes


def _deletion_causes(
    log: TrafficLog,
    summary: dict[str, Any],
    failed: list[RequestRecord],
    fault: dict[str, Any],
    known: dict[str, bool],
) -> list[dict[str, Any]]:
    detail = fault.get("detail") or {}
    pod, role = str(detail.get("pod", "")), str(detail.get("role", ""))
    head_out = known.get(HEAD_IN_SVC) is False
    causes: list[dict[str, Any]] = []

    on_pod = [r for r in failed if r.get("ep") == pod]
    # A pod deleted with a grace period ends later than its deletion: Ray drains its node
    # after SIGTERM, then the kubelet's SIGKILL (or Ray's teardown) drops what is left.
    # (start, end) of each window: the deletion, and the pod's end as the watcher saw it.
    windows = [(fault["t"] - 0.5, fault["t"] + NEAR_FAULT_S)] + [
        (m["t"] - OBSERVED_END_LAG_S, m["t"] + NEAR_FAULT_S)
        for m in log.marks
        if m["event"] == "pod_terminated" and m["t"] >= fault["t"]
    ][:1]
    near = [
        r
        for r in failed
        if not r.get("ep")
        and any(start <= r["t"] <= end for start, end in windows)
        and (r["err"] in DISCONNECTS or str(r["err"]).startswith("http_5"))
    ]
    if role == "head" and head_out and near and not on_pod:
        causes.append(
            {
                "pattern": "in-flight-at-head-deletion",
                "failures": len(near),
                "evidence": f"{len(near)} request(s) through the serve Service failed within "
                f"{NEAR_FAULT_S:.0f} s of the deletion of the head pod {pod}, which is not a "
                "serve endpoint (its proxy takes no Service traffic): requests in flight on a "
                "worker proxy, lost when the head went away",
                "risk": None,
            }
        )
    elif role in ("head", "worker") and (on_pod or near):
        hits = on_pod or near
        evidence = (
            f"{len(hits)} failure(s) on the deleted {role} pod {pod}'s proxy"
            if on_pod
            else f"{len(hits)} request(s) in flight on, or routed to, the deleted pod {pod} "
            f"(its proxy or one of its replicas) failed within {NEAR_FAULT_S:.0f} s of its "
            + ("deletion or of its end" if len(windows) > 1 else "deletion")
        )
        if role == "head":
            evidence += _unverified(HEAD_IN_SVC, known, "the head is a serve endpoint")
        causes.append(
            {
                "pattern": "deleted-pod-proxy",
                "failures": len(hits),
                "evidence": evidence,
                "risk": _risk(HEAD_IN_SVC, known) if role == "head" else None,
            }
        )

    stalls = [r for r in failed if r["err"] == "timeout" and r.get("ep") != pod]
    if role in ("head", "worker") and stalls:
        span = f"{stalls[0]['t'] - fault['t']:.1f}-{stalls[-1]['t'] - fault['t']:.1f} s"
        if role == "worker":
            why = (
                "requests routed to the deleted pod's replicas hang until Serve learns they "
                "are gone (node death detection, queue-length cache)"
            )
        elif head_out:
            why = "the head is not a serve endpoint, so no dead head proxy's request is involved"
        else:
            why = (
                "Serve's queue-length cache trusting a route to a replica busy with the dead "
                "head proxy's request"
            )
        evidence = (
            f"{len(stalls)} timeout(s) through surviving proxies, {span} after "
            f"the {role} was deleted ({why})"
        )
        if role == "head":
            evidence += _unverified(HEAD_IN_SVC, known, "the head is a serve endpoint")
        causes.append(
            {
                "pattern": "surviving-proxy-stall",
                "failures": len(stalls),
                "evidence": evidence,
                "risk": _risk(HEAD_IN_SVC, known) if role == "head" else None,
            }
        )

    if role == "redis" and failed:
        endpoints = {r.get("ep") for r in log.requests if r.get("ep")}
        failing = {r.get("ep") for r in failed if r.get("ep")}
        window = (summary.get("longest_failure_window") or {}).get("duration_s") or 0.0
        if (endpoints and failing == endpoints) or (not endpoints and window >= 1.0):
            causes.append(
                {
                    "pattern": "cluster-restart-after-redis-loss",
                    "failures": len(failed),
                    "evidence": f"{len(failed)} failure(s) over "
                    + (f"all {len(endpoints)} endpoints" if endpoints else f"{window:.1f} s")
                    + f" after the Redis pod {pod} was deleted"
                    + _unverified(EPHEMERAL, known, "Redis keeps no data across a restart"),
                    "risk": _risk(EPHEMERAL, known),
                }
            )

    explained = {"cluster-restart-after-redis-loss"} & {c["pattern"] for c in causes}
    if role == "redis" and failed and not explained:
        causes.append(
            {
                "pattern": "head-restart-after-redis-loss",
                "failures": len(failed),
                "evidence": f"{len(failed)} failure(s) after the Redis pod {pod} was deleted: "
                "the GCS exits without Redis and takes the head pod "
                + (
                    "down until it restarts"
                    if head_out
                    else "(and its proxy) down until it restarts"
                )
                + _unverified(HEAD_IN_SVC, known, "the head is a serve endpoint"),
                "risk": _risk(HEAD_IN_SVC, known),
            }
        )

    return causes
