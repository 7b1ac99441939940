"""The prompts feature's start-up hook, on a fake host: the prompt series are declared,
fed every published result, and cover the prompts each new plan schedules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fake_host import FakeHost, start
from helpers import config_of, endpoint, role_of
from prometheus_client import CollectorRegistry

from probe.job import Job
from probe.outcome import Outcome, ProbeResult
from probe.prompts.metrics import PromptMetrics
from probe.prompts.plugin import FEATURE


def answer(outcome: Outcome) -> ProbeResult:
    return ProbeResult(endpoint="a", kind="pod", check="prompt:arith", outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.3, attempts=1,
                       url="http://x", details={}, role=role_of("prompt:arith"))


def test_start_declares_the_prompt_series_that_every_result_feeds() -> None:
    config = config_of(endpoint(name="a"))
    jobs = [Job("a/prompt:arith", config.endpoints[0], ("prompt:arith",), 300.0)]
    host = FakeHost(config, jobs)
    attachment = asyncio.run(start(FEATURE.startup[0], host))
    assert attachment is not None and attachment.close is None and attachment.on_plan
    assert [type(c) for c in attachment.collectors] == [PromptMetrics]
    assert len(attachment.observers) == 1 and not attachment.routes | attachment.status_parts
    registry = CollectorRegistry()
    registry.register(attachment.collectors[0])
    arith = {"endpoint": "a", "prompt": "arith"}
    assert registry.get_sample_value("runpod_probe_prompt_pass", arith) is None, "not planned"

    attachment.on_plan(config, jobs)
    attachment.observers[0](answer(Outcome.OK), 3)
    assert registry.get_sample_value("runpod_probe_prompt_pass", arith) == 1
    attachment.observers[0](answer(Outcome.EXPECTATION_FAILED), 4)
    assert registry.get_sample_value("runpod_probe_prompt_pass", arith) == 0
