"""The discovery feature's start-up hook and sweep step, on a fake host and a scripted RunPod
API on 127.0.0.1 (reached through the production client): the fleet is listed before the first probes and applied, its own result is published
once the daemon is ready, and closing stops the listing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from discovery_helpers import ENV, config, names
from fake_host import FakeHost, start
from local_server import answering

from probe.config.model import StorageSettings
from probe.discovery.metrics import DiscoveryMetrics
from probe.discovery.plugin import FEATURE, prepare_sweep, stopped_pods
from probe.net import ProbeClient
from probe.outcome import Outcome, ProbeResult

LISTING: dict[str, Any] = {
    "/v2/pods": {"pods": [{"id": "p1", "name": "qwen", "status": "RUNNING",
                           "ports": ["8000/http"]},
                          {"id": "p2", "name": "idle", "status": "EXITED",
                           "ports": ["8000/http"]}]},
    "/v2/serverless": {"endpoints": [{"id": "e1", "name": "queue", "type": "QUEUE"}]},
}


def runpod_api(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(LISTING[request.url.path]).encode())


def test_without_a_discovery_section_the_hook_adds_nothing() -> None:
    host = FakeHost(replace(config('{api: "http://api.test/v2"}'), sections={}), env=ENV)
    assert asyncio.run(start(FEATURE.startup[0], host)) is None
    assert (host.standing_declared, host.expanders, host.applied) == ([], [], [])


def test_start_lists_the_fleet_first_publishes_when_ready_and_stops_at_close(
        tmp_path: Path) -> None:
    cfg = replace(config('{api: "http://api.test/v2", timeout: 2s}',
                         endpoints="  - {name: mine, kind: pod, pod_id: p9}\n"),
                  storage=StorageSettings(tmp_path / "probe.db"))

    async def main() -> FakeHost:
        async with answering(runpod_api) as client:
            host = FakeHost(cfg, env=ENV, client=client)
            attachment = await start(FEATURE.startup[0], host)
            assert attachment is not None and attachment.close is not None
            assert [type(c) for c in attachment.collectors] == [DiscoveryMetrics]
            assert host.standing_declared == [("runpod-api", "discovery")]
            assert len(host.expanders) == 1 and len(host.applied) == 1
            assert host.published == [], "published once every observer is attached"
            host.ready.set()
            for _ in range(10):
                await asyncio.sleep(0)
            attachment.close()
            await asyncio.sleep(0)
            left = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                    and t.get_coro().__name__ != "_connection"}  # the local API's own
            assert left == set(), "closing stops the listing"
            return host

    host = asyncio.run(main())
    assert sorted(names(host.applied[0].endpoints)) == ["mine", "queue-e1", "qwen-p1"]
    assert [(r.endpoint, r.check, r.outcome) for r in host.published] == [
        ("runpod-api", "discovery", Outcome.OK)]


class Sweep:
    """What a sweep hands its preparers (``probe.features.Publisher``)."""

    def __init__(self, client: ProbeClient) -> None:
        self.client, self.env, self.max_body_bytes = client, ENV, 1 << 20
        self.published: list[ProbeResult] = []

    def publish(self, result: ProbeResult) -> ProbeResult:
        self.published.append(result)
        return result


def test_a_sweep_probes_what_discovery_found_and_a_stopped_pod_is_in_maintenance() -> None:
    cfg = config('{api: "http://api.test/v2", stopped_pods_are_maintenance: true}',
                 endpoints="  - {name: held, kind: pod, pod_id: p2}\n")

    async def main() -> tuple[Any, list[ProbeResult], Sweep]:
        async with answering(runpod_api) as client:
            sweep = Sweep(client)
            found, produced = await prepare_sweep(cfg, sweep)
            return found, produced, sweep

    found, produced, sweep = asyncio.run(main())
    assert sorted(names(found.endpoints)) == ["held", "queue-e1", "qwen-p1"]
    assert produced == sweep.published and [r.outcome for r in produced] == [Outcome.OK]
    windows = stopped_pods(found, datetime(2026, 12, 1, tzinfo=UTC))
    assert [(w.targets, w.origin, w.end) for w in windows] == [(("held",), "discovery", None)]
