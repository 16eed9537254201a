"""Lose Kubernetes nodes the way the cluster's owner can: a command of theirs.

Kubernetes has no API that kills a machine: a node is lost by its cloud (an instance stopped
or terminated), its power or its network. So the kubernetes target loses nodes by running
the command the user configures (`node_loss_command`, `$RAYSVC_NODE_LOSS_COMMAND`) with the
nodes' names appended, e.g. a script around `aws ec2 stop-instances`, or the lab's
`chaosraysvc-lab node lose --state-dir DIR` (its kube.env sets it); and brings them back with
`node_restore_command`. The command line is split as a shell would (`shlex`) but never run
by a shell. What the command printed goes into the action's result (the last 2,000
characters); a command that fails or outlives its timeout raises `NodeLossCommandError`
naming it, its exit status and its last words.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from chaosraysvc.config import declared
from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError

__all__ = ["NodeLossCommandError", "run_node_command"]
OUTPUT_KEPT = 2000


class NodeLossCommandError(ChaosRaySvcError):
    """The command that loses or restores nodes failed, could not run or timed out."""


def run_node_command(command: str, setting: str, nodes: Sequence[str], timeout: float) -> str:
    """Run `command` (the value of configuration key `setting`) with `nodes` appended; return
    its output (stdout then stderr, the last `OUTPUT_KEPT` characters)."""
    if not command.strip():
        raise ConfigurationError(
            f"no {setting} is configured (configuration key {setting!r} or "
            f"${declared(setting).env}): set it to the command that "
            "takes node names and "
            + (
                "loses those machines (e.g. stops their instances)"
                if "loss" in setting
                else "brings them back"
            )  # fmt: skip
            + "; the lab's kube.env sets it for its nodes"
        )
    try:
        argv = [*shlex.split(command), *nodes]
    except ValueError as exc:
        raise ConfigurationError(f"{setting} {command!r} is not a command line: {exc}") from None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise NodeLossCommandError(
            f"{setting}: {argv[0]!r} not found (PATH or an absolute path)"
        ) from None
    except subprocess.TimeoutExpired as exc:
        raise NodeLossCommandError(
            f"{setting} `{shlex.join(argv)}` did not end within {timeout:g} s"
        ) from exc
    output = (done.stdout + done.stderr).strip()[-OUTPUT_KEPT:]
    if done.returncode != 0:
        raise NodeLossCommandError(
            f"{setting} `{shlex.join(argv)}` exited with {done.returncode}: "
            f"{output[-500:] or '(it printed nothing)'}"
        )
    return output
