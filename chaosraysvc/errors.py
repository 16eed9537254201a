"""Exception types of chaosraysvc.

Every error a user can meet is a `ChaosRaySvcError` whose message says what was
looked for, where, and what to do. Activities turn them into Chaos Toolkit's
`ActivityFailed` at the boundary (see `chaosraysvc.activities.common`).
"""

from __future__ import annotations


class ChaosRaySvcError(Exception):
    """Base class of every error raised by chaosraysvc."""


class ConfigurationError(ChaosRaySvcError):
    """A configuration value is missing or wrong (names the key and what to do)."""


class TargetNotReadyError(ChaosRaySvcError):
    """The target exists but cannot be used now (sandbox not up, no active cluster)."""


class SandboxError(TargetNotReadyError):
    """The sandbox could not be brought up, or is not in a state for what was asked."""


class NotFoundError(ChaosRaySvcError):
    """An object the experiment needs does not exist (RayService, pod, application)."""


class RefusedError(ChaosRaySvcError):
    """A fault was refused because it would be unsafe or meaningless."""


class FaultNotEffectiveError(ChaosRaySvcError):
    """A fault was applied but did not take effect (e.g. a NetworkPolicy nobody enforces)."""


class RecoveryTimeoutError(ChaosRaySvcError):
    """Recovery did not complete in time; the message names what was awaited."""


class ServeApiError(ChaosRaySvcError):
    """The Ray dashboard's Serve REST API could not be read."""


class KubernetesApiError(ChaosRaySvcError):
    """The Kubernetes API could not be used: unreachable, timed out, 401, 403 or a server error.

    `status` is the HTTP status (None when no answer came), `verb` and `resource` name the call
    that failed (e.g. "delete", "pods").
    """

    def __init__(
        self, message: str, *, status: int | None = None, verb: str = "", resource: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.verb = verb
        self.resource = resource
