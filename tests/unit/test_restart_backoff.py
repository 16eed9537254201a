"""The kubelet's crash-loop back-off, as the runtime counts it for every container."""

from __future__ import annotations

from chaosraysvc.runtime.containers import RestartBackoff


def test_first_restart_at_once_then_10_s_doubling_to_300_s() -> None:
    backoff = RestartBackoff()
    delays = []
    t = 0.0
    for _ in range(8):
        delay = backoff.delay(t)
        delays.append(delay)
        backoff.restarted(t)
        t += delay + 1  # each restarted container crashes 1 s after it started
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]


def test_the_back_off_is_forgotten_after_10_minutes_without_a_crash() -> None:
    backoff = RestartBackoff()
    for t in (0.0, 1.0, 12.0, 33.0):
        backoff.restarted(t)
    assert backoff.delay(40.0) == 80
    assert backoff.delay(33.0 + 601) == 0
    backoff.restarted(33.0 + 601)
    assert backoff.delay(33.0 + 602) == 10
