"""The runpod_probe_vllm_* gauges and the endpoint up gauge, rendered from FleetState."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers import endpoint

from probe.config.model import (
    Config,
    MetricsSettings,
    RunpodSettings,
    SchedulerSettings,
    StorageSettings,
)
from probe.engine import prometheus
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.state import FleetState

POD_CHECKS = ("models", "health", "vllm_metrics")
LOAD = {"waiting": 2.0, "running": 4.0, "kv_cache_usage": 0.25,
        "generation_tokens_per_s": 31.5, "stuck_streak": 1, "generation_tokens_total": 133.0}


def registry_and_state() -> tuple[Any, FleetState]:
    config = Config(RunpodSettings("K", "http://x/v2", "http://x/{pod_id}-{port}"),
                    StorageSettings(path=Path("x.db")), MetricsSettings("127.0.0.1", 0),
                    SchedulerSettings(), (endpoint(name="pod", checks=POD_CHECKS),))
    state = FleetState(config)
    collector = ProbeCollector(state)
    if prometheus.provide not in collector.providers:
        collector.providers.append(prometheus.provide)
    return make_registry(collector), state


def result(check: str, outcome: Outcome, details: dict[str, Any] | None = None) -> ProbeResult:
    return ProbeResult(endpoint="pod", kind="pod", check=check, outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.01, attempts=1,
                       url="http://x", details=details or {})


def test_load_gauges_come_from_the_latest_scrape() -> None:
    registry, state = registry_and_state()
    state.update(result("vllm_metrics", Outcome.OK, LOAD))
    pod = {"endpoint": "pod"}
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting", pod) == 2
    assert registry.get_sample_value("runpod_probe_vllm_requests_running", pod) == 4
    assert registry.get_sample_value("runpod_probe_vllm_kv_cache_usage_ratio", pod) == 0.25
    assert registry.get_sample_value("runpod_probe_vllm_generation_tokens_per_second",
                                     pod) == 31.5
    assert registry.get_sample_value("runpod_probe_vllm_stuck_checks", pod) == 1


def test_a_stuck_engine_still_exports_its_queue() -> None:
    registry, state = registry_and_state()
    state.update(result("vllm_metrics", Outcome.ENGINE_STUCK, {**LOAD, "stuck_streak": 3}))
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting",
                                     {"endpoint": "pod"}) == 2
    assert registry.get_sample_value("runpod_probe_vllm_stuck_checks", {"endpoint": "pod"}) == 3


def test_a_failed_scrape_leaves_no_stale_values() -> None:
    registry, state = registry_and_state()
    state.update(result("vllm_metrics", Outcome.OK, LOAD))
    state.update(result("vllm_metrics", Outcome.HTTP_502))
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting",
                                     {"endpoint": "pod"}) is None


def test_unknown_values_are_absent_not_zero() -> None:
    registry, state = registry_and_state()
    state.update(result("vllm_metrics", Outcome.OK, {**LOAD, "kv_cache_usage": None,
                                                     "generation_tokens_per_s": None}))
    pod = {"endpoint": "pod"}
    assert registry.get_sample_value("runpod_probe_vllm_kv_cache_usage_ratio", pod) is None
    assert registry.get_sample_value("runpod_probe_vllm_generation_tokens_per_second",
                                     pod) is None
    assert registry.get_sample_value("runpod_probe_vllm_requests_waiting", pod) == 2


def test_models_ok_with_a_dead_engine_is_not_up() -> None:
    registry, state = registry_and_state()
    state.update(result("models", Outcome.OK))
    state.update(result("vllm_metrics", Outcome.OK, LOAD))
    state.update(result("health", Outcome.OK))
    up = {"endpoint": "pod", "kind": "pod"}
    assert registry.get_sample_value("runpod_probe_endpoint_up", up) == 1
    state.update(result("health", Outcome.ENGINE_DEAD))
    assert registry.get_sample_value("runpod_probe_endpoint_up", up) == 0
    assert registry.get_sample_value("runpod_probe_up", {"endpoint": "pod",
                                                         "check": "models"}) == 1
