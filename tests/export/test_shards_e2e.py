"""Two shards end to end: two daemons split one fleet (``shard: {index, count: 2}``), one
real Prometheus scrapes both under one job with the generated rules, a real Alertmanager
with the shipped example pages a webhook receiver.

Each shard has a broken pod: each pages once, from the one shard that probes it, and no
healthy pod pages. Then one shard's daemon is stopped: its endpoints fall silent (no page
for them, not "down"), and what pages is RunpodProbeDown for that shard's instance, once.
Time is scaled down as in paging.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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

from probe.config.model import owner

pytestmark = pytest.mark.xdist_group("shards-e2e")

PODS = {"pod-a": "healthy", "pod-b": "stopped", "pod-d": "server_down", "pod-f": "healthy"}
BROKEN = {"pod-b", "pod-d"}


def test_the_fleet_is_split_so_that_each_shard_has_a_broken_and_a_healthy_pod() -> None:
    """The premise of the test below: rendezvous hashing puts pod-a and pod-b on shard 0,
    pod-d and pod-f on shard 1."""
    assert {pod: owner(pod, 2) for pod in PODS} == \
        {"pod-a": 0, "pod-b": 0, "pod-d": 1, "pod-f": 1}


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[tuple[list[Daemon], list[str], WebhookSink, str]]:
    from probe.simulator import Fleet, PodSpec, Simulator

    fleet = Fleet()
    for pod, behaviour in PODS.items():
        fleet.add_pod(pod, PodSpec(behaviour))
    ports = [free_port(), free_port()]
    with Simulator(fleet, api_key=KEY) as sim, WebhookSink() as sink:
        daemons = []
        for index, port in enumerate(ports):
            state = tmp_path / f"shard-{index}"
            state.mkdir()
            config = state / "config.yaml"
            config.write_text(daemon_config(sim, state, port, list(PODS))
                              + f"shard: {{index: {index}, count: 2}}\n")
            daemons.append(Daemon(config, state / "daemon.log",
                                  f"http://127.0.0.1:{port}/metrics"))
        targets = [f"127.0.0.1:{p}" for p in ports]
        with paged(tmp_path, daemons, targets, sink) as api:
            yield daemons, targets, sink, api


def endpoints_of(api: str, instance: str) -> set[str]:
    """The endpoints whose verdict Prometheus has from ``instance``."""
    answer = httpx.get(f"{api}/api/v1/query", params={
        "query": f'runpod_probe_endpoint_info{{instance="{instance}"}}'}, timeout=5).json()
    return {r["metric"]["endpoint"] for r in answer["data"]["result"]}


def test_each_broken_pod_pages_once_from_its_shard_and_a_stopped_shard_pages_itself(
        shards: tuple[list[Daemon], list[str], WebhookSink, str]) -> None:
    daemons, targets, sink, api = shards
    wait_for(lambda: BROKEN <= set(pages_by_endpoint(sink)), 150,
             "a page for each broken pod")
    time.sleep(QUIET_S)
    pages = pages_by_endpoint(sink)
    assert pages == {pod: ["RunpodEndpointDown"] for pod in BROKEN}, \
        (pages, summary(sink.received))
    assert endpoints_of(api, targets[0]) == {"pod-a", "pod-b"}
    assert endpoints_of(api, targets[1]) == {"pod-d", "pod-f"}

    daemons[1].stop()
    wait_for(lambda: targets[1] in pages_by_endpoint(sink), 60,
             "a page for the stopped shard")
    time.sleep(QUIET_S)
    pages = pages_by_endpoint(sink)
    assert pages == {**{pod: ["RunpodEndpointDown"] for pod in BROKEN},
                     targets[1]: ["RunpodProbeDown"]}, (pages, summary(sink.received))
