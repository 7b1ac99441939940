"""A fleet incident and the probe offline, end to end (the stack of paging.py: the real
daemon, Prometheus with the shipped rules, Alertmanager with the shipped example, a
webhook receiver; time scaled down 30 times): each pages exactly once, no endpoint pages,
and each resolves once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from export_servers import wait_for
from paging import QUIET_S, arrives, paging_stack, summary

PODS = {f"pod-{c}": "healthy" for c in "abcd"}


def all_up(metrics: str) -> bool:
    text = httpx.get(metrics, timeout=2).text
    return all(f'runpod_probe_endpoint_state{{endpoint="{p}",state="up"}} 1' in text
               for p in PODS)


def test_every_pod_failing_at_once_is_one_page_and_no_endpoint_page(tmp_path: Path) -> None:
    with paging_stack(tmp_path, PODS) as (daemon, sink, sim):
        wait_for(lambda: all_up(daemon.metrics_url), 60, "every pod up")
        for pod in PODS:  # RunPod's proxy answers 502 for every pod at once
            sim.fleet.set_pod_behaviour(pod, "server_down")
        incident = ("/page", "firing", "RunpodFleetIncident::firing")
        arrives(sink, {incident}, 60)
        time.sleep(QUIET_S)
        assert summary(sink.received) == [incident]
        for pod in PODS:
            sim.fleet.set_pod_behaviour(pod, "healthy")
        resolved = ("/page", "resolved", "RunpodFleetIncident::resolved")
        arrives(sink, {resolved}, 60)
        time.sleep(QUIET_S)
        assert summary(sink.received) == [incident, resolved]


def test_the_probe_offline_is_one_page_and_no_endpoint_page(tmp_path: Path) -> None:
    with paging_stack(tmp_path, PODS) as (daemon, sink, sim):
        wait_for(lambda: all_up(daemon.metrics_url), 60, "every pod up")
        sim.stop()  # the probe's host loses the network: no pod, no API answers
        offline = ("/page", "firing", "RunpodProbeOffline::firing")
        arrives(sink, {offline}, 60)
        time.sleep(QUIET_S)
        assert summary(sink.received) == [offline]
        text = httpx.get(daemon.metrics_url, timeout=2).text
        assert all(f'runpod_probe_endpoint_state{{endpoint="{p}",state="unknown"}} 1' in text
                   for p in PODS), text
        sim.start()
        resolved = ("/page", "resolved", "RunpodProbeOffline::resolved")
        arrives(sink, {resolved}, 60)
        time.sleep(QUIET_S)
        assert summary(sink.received) == [offline, resolved]
