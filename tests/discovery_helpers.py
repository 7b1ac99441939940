"""Builders for the discovery tests."""

from __future__ import annotations

from typing import Any

from helpers import parse_config

from probe.config import Config
from probe.config.model import Endpoint
from probe.discovery.listing import Listed

API = "http://api.test/v2"
ENV = {"RUNPOD_API_KEY": "k-123456"}


def api_endpoint() -> Endpoint:
    return Endpoint(name="runpod-api", kind="runpod_api", openai_base=API, root_url=API,
                    interval_s=60.0, timeout_s=5.0, tries=1, retry_delay_s=0.0,
                    checks=("discovery",), api_key_env="RUNPOD_API_KEY")


def config(discovery: str = "{}", endpoints: str = "", head: str = "") -> Config:
    text = (head + 'runpod: {proxy_url: "http://proxy.test/{pod_id}-{port}", '
            'api_base: "http://queue.test/v2"}\n'
            f'discovery: {discovery}\n')
    if endpoints:
        text += "endpoints:\n" + endpoints
    return parse_config(text, env=ENV)


def pod(pod_id: str, name: str | None = None, status: str = "RUNNING",
        ports: tuple[str, ...] = ("8000/http", "22/tcp")) -> Listed:
    return Listed("pod", pod_id, name or pod_id, status, None, ports)


def serverless(endpoint_id: str, name: str | None = None, type_: str = "QUEUE") -> Listed:
    return Listed("serverless", endpoint_id, name or endpoint_id, None, type_)


def names(endpoints: Any) -> list[str]:
    return [e.name for e in endpoints]
