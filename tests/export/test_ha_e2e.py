"""An HA pair end to end: two replicas of the real daemon with the same fleet, one real
Prometheus scraping both (one job, two instances) with the generated rules, a real
Alertmanager with the shipped example, and a webhook receiver counting the pages.

Two pods are broken (pod-b stopped, pod-c's server down); one replica's network is broken
too: its config sends every request (RunPod's proxy and API, or the proxy alone) to a closed
port, so it sees every endpoint fail. The rules' quorum (``ha.quorum: all``, the default) pages each broken
pod once and nothing for the healthy pod-a that only the cut-off replica sees failing; the
cut-off replica's own trouble pages RunpodProbeOffline, once. Time is scaled down as in
test_paging_e2e.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from export_servers import WebhookSink, free_port, running, wait_for
from helpers import tool
from test_paging_e2e import KEY, QUIET_S, Daemon, daemon_config, scaled_rules, summary

from probe.export import ALERTS_FILE

pytestmark = pytest.mark.xdist_group("ha-e2e")

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"
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
    prom_port, am_port, closed = free_port(), free_port(), free_port()
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
        am = yaml.safe_load(EXAMPLE.read_text())
        am["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
        for route in am["route"].get("routes", []):
            route["repeat_interval"] = "1h"
        for receiver in am["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = f"{sink.url}/{receiver['name']}"
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am))
        rules = tmp_path / "rules.yml"
        rules.write_text(scaled_rules((ROOT / ALERTS_FILE).read_text()))
        targets = [f"127.0.0.1:{p}" for p in ports]
        prom_config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "runpod-probe",
                                "static_configs": [{"targets": targets}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        alertmanager = [tool("prometheus-alertmanager"),
                        f"--config.file={tmp_path / 'alertmanager.yml'}",
                        f"--storage.path={tmp_path / 'am'}",
                        f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="]
        prometheus = [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                      f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{prom_port}",
                      "--query.lookback-delta=10s", "--rules.alert.resend-delay=2s",
                      "--web.enable-lifecycle"]
        for daemon in daemons:
            daemon.start()
        try:
            for daemon in daemons:
                wait_for(lambda d=daemon: httpx.get(d.metrics_url,  # type: ignore[misc]
                                                    timeout=2).status_code == 200,
                         30, f"the replica's {daemon.metrics_url}")
            with running(alertmanager, f"http://127.0.0.1:{am_port}/-/ready",
                         tmp_path / "alertmanager.log"), \
                    running(prometheus, f"http://127.0.0.1:{prom_port}/-/ready",
                            tmp_path / "prometheus.log"):
                api = f"http://127.0.0.1:{prom_port}"
                wait_for(lambda: len(httpx.get(f"{api}/api/v1/query", params={
                    "query": 'up{job="runpod-probe"} == 1'}, timeout=5).json()["data"][
                    "result"]) == 2, 30, "the first scrape of both replicas")
                (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(
                    {**prom_config, "rule_files": [str(rules)]}))
                httpx.post(f"{api}/-/reload", timeout=10).raise_for_status()
                yield targets, sink, request.param
        finally:
            for daemon in daemons:
                daemon.stop()


def pages_by_endpoint(sink: WebhookSink) -> dict[str, list[str]]:
    """Firing page notifications: the endpoint (or the instance) -> each one's alert names."""
    out: dict[str, list[str]] = {}
    for n in sink.received:
        if n["path"] != "/page" or n["status"] != "firing":
            continue
        labels = n["alerts"][0]["labels"]
        key = labels.get("endpoint") or labels.get("instance", "")
        out.setdefault(key, []).append(" ".join(sorted({a["labels"]["alertname"]
                                                        for a in n["alerts"]})))
    return out


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
