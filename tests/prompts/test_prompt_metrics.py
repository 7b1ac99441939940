"""Prompt metrics: the feature's own collector, fed results and the plan, on a fresh
registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import config_of, endpoint, role_of
from prometheus_client import CollectorRegistry

from probe.config.model import Config
from probe.job import Job
from probe.outcome import Outcome, ProbeResult
from probe.prompts.metrics import PromptMetrics

PLANNED = ("prompt:arith", "prompt:gov")


def config() -> Config:
    return config_of(endpoint(name="a"))


def result(check: str, outcome: Outcome, **details: Any) -> ProbeResult:
    return ProbeResult(endpoint="a", kind="pod", check=check, outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.3, attempts=1,
                       url="http://x", details=details, role=role_of(check))


def registry_with(*results: ProbeResult, per_check: bool = True) -> Any:
    cfg = config()
    metrics = PromptMetrics(per_check=per_check)
    metrics.on_plan(cfg, [Job(f"a/{c}", cfg.endpoints[0], (c,), 300.0) for c in PLANNED])
    for r in results:
        metrics.observe(r, None)
    registry = CollectorRegistry()
    registry.register(metrics)
    return registry


USAGE = {"prompt_tokens": 12, "completion_tokens": 3}


def test_pass_gauge_histograms_rate_and_tokens() -> None:
    registry = registry_with(
        result("prompt:arith", Outcome.OK, usage=USAGE, ttft_s=0.2, total_s=0.5,
               tokens_per_s=10.0),
        result("prompt:gov", Outcome.EXPECTATION_FAILED, usage=USAGE, ttft_s=0.3, total_s=0.6,
               tokens_per_s=20.0),
        result("context_active", Outcome.OK, usage={"prompt_tokens": 11000,
                                                    "completion_tokens": 1}),
    )
    value = registry.get_sample_value
    assert value("runpod_probe_prompt_pass", {"endpoint": "a", "prompt": "arith"}) == 1
    assert value("runpod_probe_prompt_pass", {"endpoint": "a", "prompt": "gov"}) == 0
    arith = {"endpoint": "a", "prompt": "arith"}
    assert value("runpod_probe_prompt_ttft_seconds_count", arith) == 1
    assert value("runpod_probe_prompt_ttft_seconds_bucket", {**arith, "le": "0.25"}) == 1
    assert value("runpod_probe_prompt_ttft_seconds_bucket", {**arith, "le": "0.1"}) == 0
    assert value("runpod_probe_prompt_duration_seconds_sum", arith) == 0.5
    assert value("runpod_probe_prompt_tokens_per_second", arith) == 10.0
    assert value("runpod_probe_tokens_spent_total", {"endpoint": "a", "type": "prompt"}) == 11024
    assert value("runpod_probe_tokens_spent_total", {"endpoint": "a", "type": "completion"}) == 7


def test_by_default_a_prompt_has_its_pass_and_the_endpoint_its_tokens() -> None:
    """Each prompt's timings are opt-in (``metrics: {per_check: true}``): by default its
    latency is the endpoint's generation histogram (probe.metrics)."""
    registry = registry_with(result("prompt:arith", Outcome.OK, usage=USAGE, ttft_s=0.2,
                                    total_s=0.5, tokens_per_s=10.0), per_check=False)
    arith = {"endpoint": "a", "prompt": "arith"}
    names = {s.name for m in registry.collect() for s in m.samples}
    assert names == {"runpod_probe_prompt_pass", "runpod_probe_tokens_spent_total"}
    assert registry.get_sample_value("runpod_probe_prompt_pass", arith) == 1
    assert registry.get_sample_value("runpod_probe_tokens_spent_total",
                                     {"endpoint": "a", "type": "completion"}) == 3


def test_incomplete_answers_do_not_feed_timing_histograms() -> None:
    registry = registry_with(result("prompt:arith", Outcome.TIMEOUT),
                             result("prompt:arith", Outcome.STREAM_BROKEN, total_s=9.0))
    labels = {"endpoint": "a", "prompt": "arith"}
    assert registry.get_sample_value("runpod_probe_prompt_pass", labels) == 0
    assert registry.get_sample_value("runpod_probe_prompt_duration_seconds_count", labels) is None


def test_skipped_budget_is_not_a_pass() -> None:
    registry = registry_with(result("prompt:arith", Outcome.SKIPPED_BUDGET))
    assert registry.get_sample_value("runpod_probe_prompt_pass",
                                     {"endpoint": "a", "prompt": "arith"}) == 0


def test_a_planned_prompt_that_never_ran_is_not_passing_and_a_dropped_one_disappears() -> None:
    cfg = config()
    metrics = PromptMetrics()
    metrics.on_plan(cfg, [Job("a/prompt:arith", cfg.endpoints[0], ("prompt:arith",), 300.0)])
    registry = CollectorRegistry()
    registry.register(metrics)
    labels = {"endpoint": "a", "prompt": "arith"}
    assert registry.get_sample_value("runpod_probe_prompt_pass", labels) == 0
    metrics.observe(result("prompt:arith", Outcome.OK, usage=USAGE), None)
    assert registry.get_sample_value("runpod_probe_prompt_pass", labels) == 1
    metrics.on_plan(cfg, [])
    assert registry.get_sample_value("runpod_probe_prompt_pass", labels) is None


def test_a_planned_prompts_endpoint_has_spent_no_tokens_until_it_has() -> None:
    """The tokens-spent counters start at 0 when the plan holds a prompt: the first answer's
    tokens are an increase, and the series is there before (not appearing mid-run)."""
    cfg = config()
    metrics = PromptMetrics(per_check=False)
    metrics.on_plan(cfg, [Job("a/prompt:arith", cfg.endpoints[0], ("prompt:arith",), 300.0)])
    registry = CollectorRegistry()
    registry.register(metrics)
    spent = {"endpoint": "a", "type": "completion"}
    assert registry.get_sample_value("runpod_probe_tokens_spent_total", spent) == 0
    assert registry.get_sample_value("runpod_probe_tokens_spent_total",
                                     {"endpoint": "a", "type": "prompt"}) == 0
    metrics.observe(result("prompt:arith", Outcome.OK, usage=USAGE), None)
    assert registry.get_sample_value("runpod_probe_tokens_spent_total", spent) == 3
    metrics.on_plan(cfg, [Job("a/prompt:arith", cfg.endpoints[0], ("prompt:arith",), 300.0)])
    assert registry.get_sample_value("runpod_probe_tokens_spent_total", spent) == 3


def test_the_decode_rate_is_also_exported_as_counters() -> None:
    """A rate computed inside the exporter is a gauge of the last answer; the counters let
    Prometheus compute it over any window: rate(tokens) / rate(seconds)."""
    registry = registry_with(
        result("prompt:arith", Outcome.OK, usage=USAGE, ttft_s=0.2, total_s=0.5),
        result("prompt:arith", Outcome.OK, usage=USAGE, ttft_s=0.1, total_s=0.6),
        result("prompt:arith", Outcome.STREAM_BROKEN, ttft_s=0.1, total_s=9.0))  # no usage
    arith = {"endpoint": "a", "prompt": "arith"}
    assert registry.get_sample_value("runpod_probe_prompt_completion_tokens_total", arith) == 6
    assert registry.get_sample_value("runpod_probe_prompt_decode_seconds_total", arith) == \
        pytest.approx(0.8)
