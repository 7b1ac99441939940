"""The runpod_probe_vllm_* gauges (the feature's collector) and the endpoint up gauge (the
core collector), fed the same results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from helpers import config_of, endpoint, fleet_state, plan, role_of

from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.verdict import Hysteresis
from probe.vllm.metrics import EngineMetrics

POD_CHECKS = ("models", "health", "vllm_metrics")
LOAD = {"waiting": 2.0, "running": 4.0, "kv_cache_usage": 0.25,
        "generation_tokens_per_s": 31.5, "stuck_streak": 1, "generation_tokens_total": 133.0}


class Fed:
    """The core state and the engine collector, fed each result like the prober feeds them."""

    def __init__(self) -> None:
        config = config_of(endpoint(name="pod", checks=POD_CHECKS))
        self.state = fleet_state(config)
        self.state.hysteresis = Hysteresis(down_after=1, up_after=1)  # judge each result
        self.engine = EngineMetrics(per_check=True)
        self.engine.on_plan(config, plan(config))

    def update(self, r: ProbeResult) -> None:
        self.state.update(r)
        self.engine.observe(r)


def registry_and_state() -> tuple[Any, Fed]:
    fed = Fed()
    registry = make_registry(ProbeCollector(fed.state))
    registry.register(fed.engine)
    return registry, fed


def result(check: str, outcome: Outcome, details: dict[str, Any] | None = None) -> ProbeResult:
    return ProbeResult(endpoint="pod", kind="pod", check=check, outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.01, attempts=1,
                       url="http://x", details=details or {}, role=role_of(check))


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


def test_the_tokens_rate_gauge_is_opt_in_the_counter_is_not() -> None:
    engine = EngineMetrics()
    engine.observe(result("vllm_metrics", Outcome.OK, {**LOAD, "generation_tokens_total": 90}))
    samples = {s.name: s.value for m in engine.collect() for s in m.samples}
    assert "runpod_probe_vllm_generation_tokens_per_second" not in samples
    assert samples["runpod_probe_vllm_generation_tokens_total"] == 90


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


def test_the_engines_token_counter_is_exported_for_rate() -> None:
    registry, state = registry_and_state()
    state.update(result("vllm_metrics", Outcome.OK, LOAD))
    assert registry.get_sample_value("runpod_probe_vllm_generation_tokens_total",
                                     {"endpoint": "pod"}) == 133.0
