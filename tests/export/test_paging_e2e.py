"""One page per incident, end to end: the real daemon against the simulated fleet, a real
Prometheus with the shipped rules, a real Alertmanager with the shipped example, and a
webhook receiver counting what a person on call would get (the stack in paging.py; time
scaled down 30 times).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from export_servers import WebhookSink
from paging import QUIET_S, Daemon, arrives, paging_stack, scaled, scaled_rules, summary


def test_scaling_keeps_the_rules_but_their_durations() -> None:
    assert scaled("1m") == "2000ms" and scaled("15m") == "30000ms" and scaled("0m") == "0ms"
    assert scaled("2m30s") == "5000ms" and scaled("7200s") == "240000ms"
    text = "    expr: rate(x[5m]) and slo:sli_error:ratio_rate5m\n    for: 1m\n"
    assert scaled_rules(text) == \
        "    expr: rate(x[10000ms]) and slo:sli_error:ratio_rate5m\n    for: 2000ms\n"
    group = "- name: runpod-probe-slo-long\n  interval: 2m30s\n"
    assert scaled_rules(group) == "- name: runpod-probe-slo-long\n  interval: 5000ms\n"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Daemon, WebhookSink, Any]]:
    """pod-a healthy, pod-b stopped (a dead pod), pod-c answering wrongly (degraded)."""
    with paging_stack(tmp_path, {"pod-a": "healthy", "pod-b": "stopped",
                                 "pod-c": "wrong_answer"}) as running_stack:
        yield running_stack


def test_a_dead_pod_pages_once_a_degraded_one_tickets_and_a_restart_pages_once(
        stack: tuple[Daemon, WebhookSink, Any]) -> None:
    daemon, sink, _ = stack
    page_b = ("/page", "firing", "RunpodEndpointDown:pod-b:firing")
    ticket_c = ("/ticket", "firing", "RunpodEndpointDegraded:pod-c:firing")
    arrives(sink, {page_b, ticket_c}, 90)
    time.sleep(QUIET_S)
    before = summary(sink.received)
    assert sorted(before) == sorted([page_b, ticket_c]), before

    stopped = time.monotonic()
    daemon.stop()
    down = ("/page", "firing", "RunpodProbeDown::firing")
    arrives(sink, {down}, 30)
    time.sleep(max(0.0, stopped + 6 - time.monotonic()))  # stopped 3 scaled minutes
    daemon.start()
    resolved = ("/page", "resolved", "RunpodProbeDown::resolved")
    arrives(sink, {resolved}, 30)
    time.sleep(QUIET_S)
    after = summary(sink.received)[len(before):]
    assert after == [down, resolved], after
