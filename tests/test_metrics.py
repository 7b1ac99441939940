"""The collector renders state at scrape time on a registry we pass in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import config_of, endpoint, fleet_state, role_of
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
                       details={"model": "Q", "max_model_len": 8192}, role=role_of("models"))


def test_never_probed_endpoint_is_not_up_and_outcome_unknown() -> None:
    registry = make_registry(ProbeCollector(fleet_state(config())))
    labels = {"endpoint": "a", "check": "models"}
    assert registry.get_sample_value("runpod_probe_up", labels) == 0
    assert registry.get_sample_value("runpod_probe_outcome", {**labels, "outcome": "unknown"}) == 1
    assert registry.get_sample_value("runpod_probe_endpoint_up", {"endpoint": "a",
                                                                  "kind": "pod"}) == 0


@pytest.mark.parametrize("per_check", [False, True], ids=["default", "per-check"])
def test_results_drive_up_counters_histogram_and_context(per_check: bool) -> None:
    state = fleet_state(config())
    registry = make_registry(ProbeCollector(state, per_check=per_check))
    state.update(result("a", Outcome.OK, attempts=2))
    state.update(result("b", Outcome.HTTP_404))
    a = {"endpoint": "a", "check": "models"}
    b = {"endpoint": "b", "check": "models"}
    a_api = {"endpoint": "a", "check_kind": "api"}
    assert registry.get_sample_value("runpod_probe_up", a) == 1
    assert registry.get_sample_value("runpod_probe_up", b) == 0
    assert registry.get_sample_value("runpod_probe_outcome", {**b, "outcome": "http_404"}) == 1
    assert registry.get_sample_value("runpod_probe_outcome", {**a, "outcome": "ok"}) is None
    assert registry.get_sample_value("runpod_probe_observations_total", a_api) == 1
    assert registry.get_sample_value("runpod_probe_observation_failures_total",
                                     {"endpoint": "b", "check_kind": "api"}) == 1
    by_outcome = "runpod_probe_failures_by_outcome_total"
    assert registry.get_sample_value(by_outcome, {"endpoint": "b", "check_kind": "api",
                                                  "outcome": "http_404"}) == 1
    assert registry.get_sample_value(by_outcome, {**a_api, "outcome": "ok"}) is None
    assert registry.get_sample_value("runpod_probe_latency_seconds_count", a_api) == 1
    assert registry.get_sample_value("runpod_probe_latency_seconds_bucket",
                                     {**a_api, "le": "1.0"}) == 1
    assert registry.get_sample_value("runpod_probe_latency_seconds_bucket",
                                     {**a_api, "le": "0.25"}) == 0
    assert registry.get_sample_value("runpod_probe_max_model_len",
                                     {"endpoint": "a", "model": "Q"}) == 8192
    if not per_check:
        assert registry.get_sample_value("runpod_probe_results_total",
                                         {**b, "outcome": "http_404"}) is None
        assert registry.get_sample_value("runpod_probe_check_interval_seconds", a) is None
        return
    assert registry.get_sample_value("runpod_probe_results_total", {**b, "outcome": "http_404"}) == 1
    assert registry.get_sample_value("runpod_probe_retried_successes_total", a) == 1
    assert registry.get_sample_value("runpod_probe_check_latency_seconds_count", a) == 1
    assert registry.get_sample_value("runpod_probe_check_latency_seconds_bucket",
                                     {**a, "le": "0.5"}) == 1
    assert registry.get_sample_value("runpod_probe_check_latency_seconds_bucket",
                                     {**a, "le": "0.25"}) == 0
    assert registry.get_sample_value("runpod_probe_max_model_len",
                                     {"endpoint": "a", "model": "Q"}) == 8192
    assert registry.get_sample_value("runpod_probe_last_success_timestamp_seconds", a) == \
        datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert registry.get_sample_value("runpod_probe_last_success_timestamp_seconds", b) is None


def test_a_failed_outcome_adds_its_counter_and_a_healthy_endpoint_has_none() -> None:
    state = fleet_state(config())
    registry = make_registry(ProbeCollector(state))
    state.update(result("a", Outcome.OK))
    for outcome in (Outcome.HTTP_404, Outcome.HTTP_404, Outcome.TIMEOUT, Outcome.ERROR,
                    Outcome.OK):
        state.update(result("b", outcome))
    page = generate_latest(registry).decode()
    name = "runpod_probe_failures_by_outcome_total"
    assert [line for line in page.splitlines() if line.startswith(name)] == [
        f'{name}{{check_kind="api",endpoint="b",outcome="error"}} 1.0',
        f'{name}{{check_kind="api",endpoint="b",outcome="http_404"}} 2.0',
        f'{name}{{check_kind="api",endpoint="b",outcome="timeout"}} 1.0']
    # an error did not observe the endpoint: it is no SLI failure
    assert registry.get_sample_value("runpod_probe_observation_failures_total",
                                     {"endpoint": "b", "check_kind": "api"}) == 3


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


def _states_on_the_page(collector: ProbeCollector) -> dict[tuple[str, str], float]:
    """endpoint_state as written (render: the page a scrape gets, texts kept between scrapes)."""
    from prometheus_client.parser import text_string_to_metric_families

    from probe.exposition.text import render

    registry = make_registry(collector)
    page, _ = render(registry, None)
    (family,) = [f for f in text_string_to_metric_families(page.decode())
                 if f.name == "runpod_probe_endpoint_state"]
    return {(s.labels["endpoint"], s.labels["state"]): s.value for s in family.samples}


def test_texts_kept_between_scrapes_follow_state_kind_and_url_changes() -> None:
    state = fleet_state(config())
    collector = ProbeCollector(state)
    page = _states_on_the_page(collector)
    assert page[("a", "unknown")] == 1 and ("a", "up") not in page, "the current state only"
    for _ in range(2):
        state.update(result("a", Outcome.OK))
    for _ in range(3):
        state.update(result("b", Outcome.HTTP_404))
    page = _states_on_the_page(collector)  # the same collector: its texts are kept
    assert page[("a", "up")] == 1 and ("a", "unknown") not in page
    assert page[("b", "down")] == 1 and sum(v for (e, _), v in page.items() if e == "b") == 1
    # a reload that changes an endpoint's kind and URL: its labels follow
    moved = config_of(endpoint(name="a", kind="openai", openai_base="http://moved.test/v1",
                                root_url="http://moved.test"))
    state.configure(moved, [])
    registry = make_registry(collector)
    assert registry.get_sample_value("runpod_probe_endpoint_info", {
        "endpoint": "a", "kind": "openai", "url": "http://moved.test"}) == 1
    assert set(_states_on_the_page(collector)) == {("a", "up")}, "b is gone"


def test_per_check_series_only_add_to_the_default_page() -> None:
    """The dashboards and rules read the default page (tests/export); ``per_check`` only
    adds families and series, so they keep working with it."""
    pages = []
    for per_check in (False, True):
        state = fleet_state(config())
        registry = make_registry(ProbeCollector(state, per_check=per_check))
        state.update(result("a", Outcome.OK, attempts=2))
        state.update(result("b", Outcome.HTTP_404))
        pages.append({(s.name, tuple(sorted(s.labels.items())))
                      for m in registry.collect() for s in m.samples
                      if s.name.startswith("runpod_probe_")})
    default, per_check = pages
    assert default < per_check
    assert {name for name, _ in per_check - default} >= {
        "runpod_probe_results_total", "runpod_probe_check_latency_seconds_bucket",
        "runpod_probe_last_probe_timestamp_seconds", "runpod_probe_check_interval_seconds"}
