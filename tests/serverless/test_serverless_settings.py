"""Serverless config keys: defaults, parsed values, and the round trip's own schedule."""

from __future__ import annotations

from helpers import parse_config, plan

from probe.serverless.settings import (
    QueueSettings,
    RoundTripSettings,
    queue_settings,
    roundtrip_settings,
)

ENV = {"RUNPOD_API_KEY": "test-key-0000"}


def test_serverless_defaults_to_the_free_queue_check_and_runpod_budgets() -> None:
    config = parse_config("endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n",
                          env=ENV)
    endpoint = config.endpoints[0]
    assert endpoint.checks == ("queue",)
    assert queue_settings(endpoint) == QueueSettings(initializing_budget_s=420.0,
                                                     stall_checks=3, failure_threshold=3,
                                                     failure_window_s=600.0)
    assert roundtrip_settings(endpoint) is None
    assert [job.id for job in plan(config)] == ["s/checks"]


def test_thresholds_are_read() -> None:
    config = parse_config(
        "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e, initializing_budget: 12m,"
        " stall_checks: 5, failure_threshold: 2, failure_window: 1h}\n", env=ENV)
    assert queue_settings(config.endpoints[0]) == QueueSettings(720.0, 5, 2, 3600.0)


def test_roundtrip_gets_its_own_job_tried_once_with_a_covering_deadline() -> None:
    config = parse_config(
        "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e, timeout: 5s,"
        " roundtrip: {interval: 15m, input: {prompt: '2+2'}, wait: 20s, deadline: 90s}}\n",
        env=ENV)
    endpoint = config.endpoints[0]
    assert roundtrip_settings(endpoint) == RoundTripSettings(900.0, 20.0, 90.0,
                                                             {"prompt": "2+2"}, False)
    jobs = {job.id: job for job in plan(config)}
    assert set(jobs) == {"s/checks", "s/roundtrip"}
    job = jobs["s/roundtrip"]
    assert (job.checks, job.interval_s, job.attempts.tries) == (("roundtrip",), 900.0, 1)
    assert job.attempts.timeout_s == 100.0  # deadline + /health before + cancel after
    assert job.bound_s == 100.0  # how long a shutdown waits for it
    assert jobs["s/checks"].endpoint.checks == ("queue",)  # the queue check stays cheap


def test_roundtrip_defaults() -> None:
    config = parse_config(
        "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e, model: Q,"
        " roundtrip: {openai: true}}\n", env=ENV)
    assert roundtrip_settings(config.endpoints[0]) == RoundTripSettings(600.0, 30.0, 60.0,
                                                                        None, True)


def test_openai_roundtrip_model_may_come_from_the_environment() -> None:
    config = parse_config(
        "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e, roundtrip: {openai: true}}\n",
        env={**ENV, "RUNPOD_MODEL": "m/one"})
    assert config.endpoints[0].model == "m/one"
