"""The vLLM feature's start-up hook, on a fake host: the engine gauges are declared and
fed every published result, and follow each new plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fake_host import FakeHost, start
from helpers import config_of, endpoint, plan, role_of
from prometheus_client import CollectorRegistry

from probe.outcome import Outcome, ProbeResult
from probe.vllm.metrics import EngineMetrics
from probe.vllm.plugin import FEATURE

LOAD = {"waiting": 2.0, "running": 4.0, "kv_cache_usage": 0.25,
        "generation_tokens_per_s": 31.5, "stuck_streak": 1, "generation_tokens_total": 133.0}


def scrape(name: str) -> ProbeResult:
    return ProbeResult(endpoint=name, kind="pod", check="vllm_metrics", outcome=Outcome.OK,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.01, attempts=1,
                       url="http://x", details=dict(LOAD), role=role_of("vllm_metrics"))


def test_start_declares_the_engine_gauges_that_every_result_feeds() -> None:
    config = config_of(endpoint(name="pod", checks=("models", "health", "vllm_metrics")))
    host = FakeHost(config, plan(config))
    attachment = asyncio.run(start(FEATURE.startup[0], host))
    assert attachment is not None and attachment.close is None and attachment.on_plan
    assert [type(c) for c in attachment.collectors] == [EngineMetrics]
    assert len(attachment.observers) == 1 and not attachment.routes | attachment.status_parts
    attachment.on_plan(config, host.jobs)
    attachment.observers[0](scrape("pod"), 7)
    registry = CollectorRegistry()
    registry.register(attachment.collectors[0])
    pod = {"endpoint": "pod"}
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting", pod) == 2

    gone = config_of(endpoint(name="other", checks=("models", "health", "vllm_metrics")))
    attachment.on_plan(gone, plan(gone))
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting", pod) is None
