"""The serverless feature's start-up hook, on a fake host: its series are declared and fed
every published result, and forget an endpoint the new plan drops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fake_host import FakeHost, start
from helpers import config_of, plan, role_of
from prometheus_client import CollectorRegistry
from serverless_helpers import health_json, serverless

from probe.outcome import Outcome, ProbeResult
from probe.serverless.health import parse_health
from probe.serverless.metrics import ServerlessMetrics
from probe.serverless.plugin import FEATURE


def queue_reading() -> ProbeResult:
    return ProbeResult(endpoint="ep1", kind="serverless", check="queue", outcome=Outcome.OK,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.1, attempts=1,
                       url="http://x/v2/ep1",
                       details=parse_health(health_json(in_queue=5)).as_details(), role=role_of("queue"))


def test_start_declares_the_queue_series_that_every_result_feeds() -> None:
    config = config_of(serverless(name="ep1"))
    host = FakeHost(config, plan(config))
    attachment = asyncio.run(start(FEATURE.startup[0], host))
    assert attachment is not None and attachment.close is None and attachment.on_plan
    assert [type(c) for c in attachment.collectors] == [ServerlessMetrics]
    assert len(attachment.observers) == 1 and not attachment.routes | attachment.status_parts
    attachment.observers[0](queue_reading(), None)
    registry = CollectorRegistry()
    registry.register(attachment.collectors[0])
    in_queue = {"endpoint": "ep1", "state": "inQueue"}
    assert registry.get_sample_value("runpod_probe_serverless_jobs", in_queue) == 5

    attachment.on_plan(config_of(), [])
    assert registry.get_sample_value("runpod_probe_serverless_jobs", in_queue) is None
