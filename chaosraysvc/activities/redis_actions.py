"""Actions that make the GCS's Redis stop answering for a while, without closing a connection.

::

    {"type": "action", "name": "hang-redis",
     "provider": {"type": "python", "module": "chaosraysvc.activities.redis_actions",
                  "func": "hang_redis", "arguments": {"duration": 15}}}
    ...
    "rollbacks": [{"type": "action", "name": "unpause-redis",
                   "provider": {"type": "python",
                                "module": "chaosraysvc.activities.redis_actions",
                                "func": "unpause_redis"}}]

`hang_redis` sends Redis `CLIENT PAUSE <ms> ALL` (Redis 6.2 or later): every client's next
command, the GCS's included, waits until the pause ends; no connection is closed, so the GCS
sees a Redis that hangs, not one that is gone. The command goes as a new client authenticated
with the GCS's own password: on the sandbox to its Redis on loopback (the password of its state
directory); on Kubernetes through `redis-cli` in the Redis pod behind the GCS fault-tolerance
address, through `pods/exec`, which chaosraysvc's Role does not grant: apply the opt-in
`deploy/exec-role.yaml` and `deploy/exec-rolebinding.yaml` (the password, the head's
`REDIS_PASSWORD`, is read through `pods/exec` too and sent on the command's stdin).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors, target_for
from chaosraysvc.activities.pod_actions import setup_facts
from chaosraysvc.config import number
from chaosraysvc.errors import (
    ChaosRaySvcError,
    ConfigurationError,
    FaultNotEffectiveError,
    NotFoundError,
    RefusedError,
)
from chaosraysvc.model import RedisReply
from chaosraysvc.targets.base import Target, pods_of_role
from chaosraysvc.traffic.registry import mark

__all__ = ["hang_redis", "unpause_redis"]
logger = logging.getLogger("chaostoolkit")

MAX_DURATION_S = 3600.0  # CLIENT PAUSE cannot be cut short (see unpause_redis): bound it
PAUSE_REPLY_TIMEOUT_S = 10.0
EXEC_SLACK_S = 0.5  # an answer this close to the pause's end was held for the whole pause
AFTER_PAUSE_WAIT_S = 30.0


def hang_arguments(duration: Any, check_timeout: Any) -> tuple[float, float]:
    """Return `duration` and `check_timeout` as seconds, or raise `ConfigurationError`."""
    hang = number(duration, "hang_redis `duration`")
    check = number(check_timeout, "hang_redis `check_timeout`")
    problems = []
    if not 0 < hang <= MAX_DURATION_S:
        problems.append(f"duration must be > 0 and <= {MAX_DURATION_S:g} s (got {duration})")
    if check <= 0:
        problems.append(f"check_timeout must be > 0 (got {check_timeout})")
    elif check >= hang:
        problems.append(
            f"check_timeout ({check:g} s) must be shorter than duration ({hang:g} s): the "
            "check waits that long for a PING that must stay unanswered while Redis is paused"
        )
    if problems:
        raise ConfigurationError(f"hang_redis: {'; '.join(problems)}")
    return hang, check


def _redis_to_hang(target: Target) -> tuple[str, str]:
    """Return the GCS's Redis address and the pod it runs in ("" when unknown), or refuse."""
    ft = target.gcs_fault_tolerance()
    if ft.backend != "redis" or not ft.redis_address:
        raise RefusedError(
            f"refusing to hang the GCS's Redis: the GCS fault-tolerance backend is "
            f"{ft.backend!r}, so there is no Redis ({ft.source or 'no GCS FT settings'})"
        )
    running = [p for p in pods_of_role(target, "redis") if p.phase == "Running"]
    return ft.redis_address, running[0].name if running else ""


def _answer(reply: RedisReply | None) -> str:
    if reply is None:
        return "no answer"
    return f"error {reply.text!r}" if reply.error else repr(reply.text)


def hang_redis(
    duration: float = 15,
    check_timeout: float = 2,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Make the GCS's Redis stop answering for `duration` seconds, keeping every connection.

    Sends `CLIENT PAUSE <duration in ms> ALL` (Redis 6.2 or later) as a new client with the
    GCS's password, then checks it took effect: a `PING` from another new connection must stay
    unanswered for `check_timeout` seconds, else `ActivityFailed` says no hang happened. Then
    waits until Redis answers again (the pause ends by itself) and returns when the hang
    started, how long the check waited and when Redis answered again. Redis is asked to
    answer a `PING` first; `dry_run` stops there. Refuses without a Redis backend. On the
    kubernetes target it runs `redis-cli` in the Redis pod behind the GCS fault-tolerance
    address and reads the head's `REDIS_PASSWORD`, both through `pods/exec`: it needs the
    opt-in deploy/exec-role.yaml, else `ActivityFailed` names it.
    """
    with activity_errors():
        hang, check = hang_arguments(duration, check_timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        address, pod = _redis_to_hang(target)
        before = target.redis_command(["PING"], timeout=max(check, 5.0))
        if before is None or before.error:
            raise NotFoundError(
                f"Redis at {address} gave {_answer(before)} to PING before the fault (as the "
                "GCS's client, with its password): nothing to hang; is it up, or paused "
                "already?"
            )
        result: dict[str, Any] = {
            "target": target.kind,
            "dry_run": dry_run,
            "redis_address": address,
            "duration_s": hang,
        }
        if dry_run:
            return result | {"redis_pod": pod}
        millis = max(1, round(hang * 1000))
        facts = setup_facts(target)
        mark("fault", pod=pod or address, role="redis", action="hang_redis", **facts)
        hung_at = time.time()
        try:
            paused = target.redis_command(
                ["CLIENT", "PAUSE", str(millis), "ALL"], timeout=PAUSE_REPLY_TIMEOUT_S
            )
            if paused is None or paused.error:
                raise ChaosRaySvcError(
                    f"Redis at {address} gave {_answer(paused)} to CLIENT PAUSE {millis} ALL "
                    "(it needs Redis 6.2 or later): no hang happened"
                )
        except Exception as exc:
            mark("fault_not_injected", pod=pod or address, error=type(exc).__name__)
            raise
        checked = target.redis_command(["PING"], timeout=check)
        answered_at = time.time()
        if checked is not None and answered_at < hung_at + hang - EXEC_SLACK_S:
            mark("fault_not_injected", pod=pod or address, error="FaultNotEffectiveError")
            raise FaultNotEffectiveError(
                f"Redis at {address} accepted CLIENT PAUSE {millis} ALL but answered a PING "
                f"from another connection {answered_at - hung_at:.2f} s later "
                f"({_answer(checked)}): the pause did not take effect, no hang happened"
            )
        logger.info(
            "Redis %s paused for %g s (CLIENT PAUSE ALL): a PING from another connection got "
            "no answer within %g s", pod or address, hang, check,
        )  # fmt: skip
        left = hung_at + hang - time.time()
        again = target.redis_command(["PING"], timeout=max(left, 0.0) + AFTER_PAUSE_WAIT_S)
        ended_at = time.time()
        if again is None:
            raise ChaosRaySvcError(
                f"Redis at {address} still gives no answer {ended_at - hung_at:.1f} s after "
                f"CLIENT PAUSE {millis} ALL, {AFTER_PAUSE_WAIT_S:g} s after the pause should "
                "have ended"
            )
        mark("hang_ended", pod=pod or address, after_s=round(ended_at - hung_at, 3))
        logger.info("Redis %s answers again after %.1f s", pod or address, ended_at - hung_at)
        return result | {
            "hung": {"pod": pod or address, "role": "redis", "mode": "ALL"},
            "hung_at": hung_at,
            "check": {"ping_unanswered_s": check, "answer": _answer(checked)},
            "answered_again_after_s": round(ended_at - hung_at, 3),
            "recovery": None,
        }


def unpause_redis(
    timeout: float = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Send the GCS's Redis `CLIENT UNPAUSE` and wait up to `timeout` seconds for its answer.

    The rollback of `hang_redis`. Redis holds every command of a `CLIENT PAUSE ... ALL`,
    this one too (seen on Redis 6.2), so it cannot end such a pause early: it returns once
    Redis answers again, with how long that took. Does nothing where there is no Redis
    backend. Raises `ActivityFailed` when Redis gives no answer within `timeout` seconds or
    an error; on the kubernetes target it needs `pods/exec` (deploy/exec-role.yaml).
    """
    with activity_errors():
        wait = number(timeout, "unpause_redis `timeout`")
        if wait <= 0:
            raise ConfigurationError(f"unpause_redis: timeout must be > 0 (got {timeout})")
    target = target_for(configuration, secrets)
    with activity_errors():
        ft = target.gcs_fault_tolerance()
        if ft.backend != "redis" or not ft.redis_address:
            return {"target": target.kind, "unpaused": False, "answered_after_s": None}
        sent = time.time()
        reply = target.redis_command(["CLIENT", "UNPAUSE"], timeout=wait)
        if reply is None or reply.error:
            raise ChaosRaySvcError(
                f"Redis at {ft.redis_address} gave {_answer(reply)} to CLIENT UNPAUSE within "
                f"{wait:g} s: it may still be paused"
            )
        after = round(time.time() - sent, 3)
        if after > 1:
            mark("hang_ended", pod=ft.redis_address, after_s=after, action="unpause_redis")
        return {"target": target.kind, "unpaused": True, "answered_after_s": after}
