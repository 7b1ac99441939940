"""Serverless series on /metrics: job and worker gauges from the latest queue reading, and
round-trip histograms split by cold and warm start."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from helpers import config_of, plan, role_of
from prometheus_client import CollectorRegistry
from serverless_helpers import health_json, serverless

from probe.outcome import Outcome, ProbeResult
from probe.serverless.health import parse_health
from probe.serverless.metrics import ServerlessMetrics


def fleet() -> ServerlessMetrics:
    metrics = ServerlessMetrics()
    config = config_of(serverless(name="ep1"))
    metrics.on_plan(config, plan(config))
    return metrics


def result(check: str, outcome: Outcome, details: dict[str, Any]) -> ProbeResult:
    return ProbeResult(endpoint="ep1", kind="serverless", check=check, outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.1, attempts=1,
                       url="http://x/v2/ep1", details=details, role=role_of(check))


def registry(metrics: ServerlessMetrics) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(metrics)
    return reg


def test_jobs_and_workers_by_state_from_the_latest_reading() -> None:
    state = fleet()
    details = parse_health({"jobs": {"inQueue": 7, "completed": 3},
                            "workers": {"unhealthy": 1, "running": 0, "outdated": 2}}).as_details()
    state.observe(result("queue", Outcome.CRASH_LOOPING, details))
    reg = registry(state)
    assert reg.get_sample_value("runpod_probe_serverless_jobs",
                                {"endpoint": "ep1", "state": "inQueue"}) == 7
    assert reg.get_sample_value("runpod_probe_serverless_workers",
                                {"endpoint": "ep1", "state": "unhealthy"}) == 1
    # A counter the API did not send is not exported as 0; an unknown one is exported.
    assert reg.get_sample_value("runpod_probe_serverless_workers",
                                {"endpoint": "ep1", "state": "idle"}) is None
    assert reg.get_sample_value("runpod_probe_serverless_workers",
                                {"endpoint": "ep1", "state": "outdated"}) == 2


def test_an_unknown_reading_exports_no_stale_counts() -> None:
    state = fleet()
    state.observe(result("queue", Outcome.OK, parse_health(health_json(in_queue=2)).as_details()))
    state.observe(result("queue", Outcome.UNKNOWN, {"reason": "rate_limited"}))
    reg = registry(state)
    assert reg.get_sample_value("runpod_probe_serverless_jobs",
                                {"endpoint": "ep1", "state": "inQueue"}) is None


def test_round_trips_fill_cold_and_warm_histograms_separately() -> None:
    state = fleet()
    stats = state
    stats.observe(result("roundtrip", Outcome.OK, {"start": "cold", "delay_s": 42.0,
                                                   "execution_s": 0.5, "roundtrip_s": 43.0}))
    for delay in (0.2, 0.3):
        stats.observe(result("roundtrip", Outcome.OK, {"start": "warm", "delay_s": delay,
                                                       "execution_s": 0.5, "roundtrip_s": 1.0}))
    stats.observe(result("roundtrip", Outcome.OK, {"start": "unknown", "delay_s": 9.0}))
    stats.observe(result("queue", Outcome.OK, {"start": "warm", "delay_s": 9.0}))
    reg = registry(state)
    cold = {"endpoint": "ep1", "start": "cold"}
    warm = {"endpoint": "ep1", "start": "warm"}
    assert reg.get_sample_value("runpod_probe_serverless_delay_seconds_count", cold) == 1
    assert reg.get_sample_value("runpod_probe_serverless_delay_seconds_sum", cold) == 42.0
    assert reg.get_sample_value("runpod_probe_serverless_delay_seconds_count", warm) == 2
    assert reg.get_sample_value("runpod_probe_serverless_delay_seconds_bucket",
                                {**warm, "le": "0.5"}) == 2
    assert reg.get_sample_value("runpod_probe_serverless_execution_seconds_count", warm) == 2
    assert reg.get_sample_value("runpod_probe_serverless_roundtrip_seconds_sum", cold) == 43.0


def test_an_endpoint_no_longer_planned_is_forgotten() -> None:
    state = fleet()
    state.observe(result("queue", Outcome.OK, parse_health(health_json(in_queue=2)).as_details()))
    reg = registry(state)
    labels = {"endpoint": "ep1", "state": "inQueue"}
    assert reg.get_sample_value("runpod_probe_serverless_jobs", labels) == 2
    state.on_plan(config_of(), [])
    assert reg.get_sample_value("runpod_probe_serverless_jobs", labels) is None
