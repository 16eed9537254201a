"""Children of the test run get Ctrl-C as a user's shell would deliver it.

A shell starts background jobs (`make test &`, nohup, some CI runners) with SIGINT ignored,
and an ignored signal stays ignored across exec: every `chaos run`, `sandbox up` or
`controlplane up` a test starts would then shrug off the SIGINT the test sends to check
what Ctrl-C does, and the test would fail for how it was launched. A handled signal is reset
to its default at exec, so restoring Python's handler here gives each child the default.
"""

from __future__ import annotations

import signal

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
