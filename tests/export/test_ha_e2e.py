"""An HA pair end to end: two replicas of the real daemon with the same fleet, one real
Prometheus scraping both (one job, two instances) with the generated rules, a real
Alertmanager with the shipped example, and a webhook receiver counting the pages.

Two pods are broken (pod-b stopped, pod-c's server down); one replica's network is broken
too: its config sends every request (RunPod's proxy and API, or the proxy alone) to a closed
port, so it sees every endpoint fail. The rules' quorum (``ha.quorum: all``, the default) pages each broken
pod once and nothing for the healthy pod-a that only the cut-off replica sees failing; the
cut-off replica's own trouble pages RunpodProbeOffline, once. Time is scaled down as in
paging.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from export_servers import WebhookSink, free_port, wait_for
from paging import (
    KEY,
    QUIET_S,
    Daemon,
    daemon_config,
    paged,
    pages_by_endpoint,
    summary,
)

pytestmark = pytest.mark.xdist_group("ha-e2e")

BROKEN = {"pod-b": "stopped", "pod-c": "server_down"}


def cut_off(config: str, closed: int, cut: str) -> str:
    """The same config with RunPod's proxy (``cut`` "proxy") or every URL, the API's too
    (``cut`` "network"), at ``closed``, a port nothing listens on."""
    if cut == "proxy":
        return re.sub(r'(proxy_url: "http://127\.0\.0\.1:)\d+/', rf"\g<1>{closed}/", config)
    return re.sub(r"http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{closed}/", config)


@pytest.fixture(params=["network", "proxy"])
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[
        tuple[list[str], WebhookSink, str]]:
    from probe.simulator import Fleet, PodSpec, Simulator

    fleet = Fleet()
    for pod in ("pod-a", "pod-b", "pod-c"):
        fleet.add_pod(pod, PodSpec(BROKEN.get(pod, "healthy")))
    ports = [free_port(), free_port()]
    closed = free_port()
    with Simulator(fleet, api_key=KEY) as sim, WebhookSink() as sink:
        daemons = []
        for i, port in enumerate(ports):
            state = tmp_path / f"replica-{i}"
            state.mkdir()
            text = daemon_config(sim, state, port, ["pod-a", "pod-b", "pod-c"])
            config = state / "config.yaml"
            config.write_text(cut_off(text, closed, request.param) if i == 1 else text)
            daemons.append(Daemon(config, state / "daemon.log",
                                  f"http://127.0.0.1:{port}/metrics"))
        targets = [f"127.0.0.1:{p}" for p in ports]
        with paged(tmp_path, daemons, targets, sink):
            yield targets, sink, request.param


def test_each_broken_endpoint_pages_once_and_a_cut_off_replica_pages_no_endpoint(
        pair: tuple[list[str], WebhookSink, str]) -> None:
    """Cut off from the network, the replica is offline: RunpodProbeOffline, once. Cut off
    from the proxy alone, it is online and sees every pod down (a fleet incident of the
    three): the quorum (both see it) pages only the two broken pods; with ``quorum: any``
    the same run fails (its incident holds the broken pods' pages back and pages instead)."""
    targets, sink, cut = pair
    wait_for(lambda: set(BROKEN) <= set(pages_by_endpoint(sink)), 150,
             "a page for each broken pod")
    time.sleep(QUIET_S)
    pages = pages_by_endpoint(sink)
    expected = {pod: ["RunpodEndpointDown"] for pod in BROKEN}
    if cut == "network":
        expected[targets[1]] = ["RunpodProbeOffline"]
    assert pages == expected, (pages, summary(sink.received))
