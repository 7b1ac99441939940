"""A discovery run's own result, and what a failed run keeps (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
from discovery_helpers import ENV, config, names
from local_server import answering

from probe.config import Config
from probe.discovery.discoverer import Discoverer, Discovery
from probe.outcome import Outcome

DISCOVERY = '{api: "http://api.test/v2", timeout: 2s}'


class FakeApi:
    """RunPod's REST API with answers the test changes between runs."""

    def __init__(self) -> None:
        self.pods: Any = {"pods": [{"id": "p1", "name": "qwen", "status": "RUNNING",
                                    "ports": ["8000/http"]}]}
        self.endpoints: Any = {"endpoints": [{"id": "e1", "name": "queue", "type": "QUEUE"}]}
        self.status = {"/v2/pods": 200, "/v2/serverless": 200}
        self.headers: dict[str, str] = {}
        self.asked = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        status = self.status[request.url.path]
        body = self.pods if request.url.path == "/v2/pods" else self.endpoints
        if status != 200:
            body = {"title": "Forbidden" if status == 403 else "Error", "status": status}
        return httpx.Response(status, content=json.dumps(body).encode(), headers=self.headers)


def discover(discoverer: Discoverer, api: FakeApi, cfg: Config) -> Discovery:
    async def go() -> Discovery:
        async with answering(api) as client:
            return await discoverer.run(cfg, client)

    return asyncio.run(go())


def test_ok_then_429_then_refused_pods_keeps_what_it_cannot_list() -> None:
    cfg = config(DISCOVERY, endpoints="  - {name: mine, kind: pod, pod_id: p9}\n")
    api, discoverer = FakeApi(), Discoverer(ENV)

    first = discover(discoverer, api, cfg)
    assert first.result.endpoint == "runpod-api" and first.result.check == "discovery"
    assert (first.result.outcome, first.result.message) == (
        Outcome.OK, "discovered 1 pod, 1 serverless endpoint")
    assert first.result.details["discovered"] == {"pod": 1, "serverless": 1}
    assert first.result.details["listed"] == {"pod": 1, "serverless": 1}
    assert names(first.config.endpoints) == ["mine", "qwen-p1", "queue-e1"]

    api.status["/v2/pods"], api.headers = 429, {"retry-after": "0"}
    limited = discover(discoverer, api, cfg)
    assert limited.result.outcome is Outcome.UNKNOWN
    assert limited.result.message.startswith("RunPod's API did not answer (rate_limited: GET "
                                             "/pods: HTTP 429: Error")
    assert limited.result.message.endswith(
        "; probing the last known fleet (1 pod, 1 serverless endpoint)")
    assert limited.result.details["reason"] == "rate_limited"
    assert names(limited.config.endpoints) == names(first.config.endpoints)

    api.status["/v2/pods"], api.headers = 403, {}
    api.endpoints = {"endpoints": [{"id": "e2", "name": "new", "type": "QUEUE"}]}
    refused = discover(discoverer, api, cfg)
    assert (refused.result.outcome, refused.result.http_status) == (Outcome.UNAUTHORIZED, 403)
    assert refused.result.message == ("key lacks pod management permissions — GET /pods "
                                      "returns 403; cannot list pods programmatically")
    assert names(refused.config.endpoints) == ["mine", "qwen-p1", "new-e2"], \
        "pods kept from the last listing, serverless endpoints listed again"


def test_5xx_is_retried_then_unknown_and_nothing_was_ever_listed() -> None:
    api, discoverer = FakeApi(), Discoverer(ENV)
    api.status["/v2/pods"] = 503
    found = discover(discoverer, api, config(DISCOVERY))
    assert (found.result.outcome, found.result.attempts) == (Outcome.UNKNOWN, 2)
    assert found.result.details["reason"] == "http_5xx"
    assert found.config.endpoints == ()
    assert found.result.message.endswith("probing the last known fleet (0 pods, "
                                         "0 serverless endpoints)")


def test_expand_without_a_run_adds_only_what_was_listed_before() -> None:
    api, discoverer = FakeApi(), Discoverer(ENV)
    cfg = config(DISCOVERY)
    assert discoverer.expand(cfg).endpoints == ()
    discover(discoverer, api, cfg)
    asked = api.asked
    narrower = config('{api: "http://api.test/v2", include: "^queue"}')
    assert names(discoverer.expand(narrower).endpoints) == ["queue-e1"]
    assert api.asked == asked, "applying new filters asks nothing"
    assert discoverer.expand(replace(cfg, sections={})).endpoints == (), \
        "discovery removed from the config (a reload): nothing discovered is added"
