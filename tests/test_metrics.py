"""The collector renders state at scrape time on a registry we pass in."""

from __future__ import annotations

from datetime import UTC, datetime

from helpers import config_of, endpoint, fleet_state
from prometheus_client import generate_latest

from probe.config.model import Config
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult


def config() -> Config:
    return config_of(endpoint(name="a"), endpoint(name="b"))


def result(name: str, outcome: Outcome, attempts: int = 1) -> ProbeResult:
    return ProbeResult(endpoint=name, kind="pod", check="models", outcome=outcome,
                       started_at=datetime(2026, 1, 1, tzinfo=UTC), latency_s=0.3,
                       attempts=attempts, url="http://x", http_status=404 if not outcome else 200,
                       details={"model": "Q", "max_model_len": 8192})


def test_never_probed_endpoint_is_not_up_and_outcome_unknown() -> None:
    registry = make_registry(ProbeCollector(fleet_state(config())))
    labels = {"endpoint": "a", "check": "models"}
    assert registry.get_sample_value("runpod_probe_up", labels) == 0
    assert registry.get_sample_value("runpod_probe_outcome", {**labels, "outcome": "unknown"}) == 1
    assert registry.get_sample_value("runpod_probe_endpoint_up", {"endpoint": "a",
                                                                  "kind": "pod"}) == 0


def test_results_drive_up_counters_histogram_and_context() -> None:
    state = fleet_state(config())
    registry = make_registry(ProbeCollector(state))
    state.update(result("a", Outcome.OK, attempts=2))
    state.update(result("b", Outcome.HTTP_404))
    a = {"endpoint": "a", "check": "models"}
    b = {"endpoint": "b", "check": "models"}
    assert registry.get_sample_value("runpod_probe_up", a) == 1
    assert registry.get_sample_value("runpod_probe_up", b) == 0
    assert registry.get_sample_value("runpod_probe_results_total", {**b, "outcome": "http_404"}) == 1
    assert registry.get_sample_value("runpod_probe_retried_successes_total", a) == 1
    assert registry.get_sample_value("runpod_probe_latency_seconds_count", a) == 1
    assert registry.get_sample_value("runpod_probe_latency_seconds_bucket", {**a, "le": "0.5"}) == 1
    assert registry.get_sample_value("runpod_probe_latency_seconds_bucket", {**a, "le": "0.25"}) == 0
    assert registry.get_sample_value("runpod_probe_max_model_len",
                                     {"endpoint": "a", "model": "Q"}) == 8192
    assert registry.get_sample_value("runpod_probe_last_success_timestamp_seconds", a) == \
        datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert registry.get_sample_value("runpod_probe_last_success_timestamp_seconds", b) is None


def test_exposition_parses_and_follows_naming_rules() -> None:
    state = fleet_state(config())
    state.update(result("a", Outcome.OK))
    text = generate_latest(make_registry(ProbeCollector(state))).decode()
    from prometheus_client.parser import text_string_to_metric_families

    names = [f.name for f in text_string_to_metric_families(text)]
    ours = [n for n in names if not n.startswith(("process_", "python_"))]
    assert ours and all(n.startswith("runpod_probe_") for n in ours)
    assert "runpod_probe_scheduler_lag_seconds" in names
    # the process's own series, for memory against the unit's MemoryMax
    assert {"process_resident_memory_bytes", "python_info"} <= set(names)
