"""/metrics written by ``probe.exposition`` is byte for byte what prometheus_client writes
for the same families, in every format it negotiates; samples read through the registry are
the same too. Label values that need escaping and every collector with per-endpoint series
are in the fleet."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import config_of, endpoint, fleet_state
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from probe.exposition import make_wsgi_app, render
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.prompts.metrics import PromptMetrics
from probe.serverless.metrics import ServerlessMetrics
from probe.verdict import EndpointVerdict, Hysteresis
from probe.vllm.metrics import EngineMetrics

NAMES = ("a", 'we"ird\\na\nme', "z")
ACCEPT = ["", "text/plain; version=0.0.4", "application/openmetrics-text",
          "application/openmetrics-text; version=1.0.0; charset=utf-8",
          "text/plain;version=1.0.0;escaping=allow-utf-8"]


def result(name: str, check: str, outcome: Outcome, i: int = 0, **details: object) -> ProbeResult:
    return ProbeResult(name, "pod", check, outcome, datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
                       0.0123 * i, 1 + i % 2, "http://p", "m",
                       200 if outcome is Outcome.OK else None, dict(details))


def registry() -> CollectorRegistry:
    config = config_of(*(endpoint(name=n, checks=("models", "health", "vllm_metrics"))
                         for n in NAMES))
    state = fleet_state(config)
    for name in NAMES:
        for check, outcome in (("models", Outcome.OK), ("health", Outcome.TIMEOUT),
                               ("vllm_metrics", Outcome.OK)):
            for i in range(4):
                state.update(result(name, check, outcome, i, model='m"x', max_model_len=4096))
    reg = make_registry(ProbeCollector(state))
    engine, prompts, serverless = EngineMetrics(), PromptMetrics(), ServerlessMetrics()
    for collector in (engine, prompts, serverless):
        reg.register(collector)
    for name in NAMES:
        engine.observe(result(name, "vllm_metrics", Outcome.OK, waiting=3, running=2,
                              kv_cache_usage=0.5))
    prompts.passed[("a", "arith")] = True
    prompts.observe(result("a", "prompt:arith", Outcome.OK, ttft_s=0.2, total_s=1.0,
                           tokens_per_s=12.5,
                           usage={"prompt_tokens": 5, "completion_tokens": 7}))
    serverless.observe(result("s", "queue", Outcome.OK, jobs={"inQueue": 2, "failed": 0},
                              workers={"idle": 1}, absent=["jobs.failed"]))
    serverless.observe(result("s", "roundtrip", Outcome.OK, start="cold", delay_s=3.5,
                              execution_s=0.2, roundtrip_s=4.0))
    return reg


def without_process(text: bytes) -> list[bytes]:
    """The page without ``process_*`` series (CPU and memory move between two scrapes)."""
    return [line for line in text.split(b"\n") if b"process_" not in line]


@pytest.mark.parametrize("accept", ACCEPT)
def test_the_page_is_what_prometheus_client_writes(accept: str) -> None:
    reg = registry()
    encoder, content_type = choose_encoder(accept)
    expected = encoder(reg)
    body, ours = render(reg, accept)
    assert ours == content_type
    assert without_process(body) == without_process(expected)
    assert b"runpod_probe_latency_seconds_bucket" in body and b"serverless" in body


def test_samples_are_read_as_before() -> None:
    reg = registry()
    assert reg.get_sample_value("runpod_probe_results_total",
                                {"endpoint": "a", "check": "models", "outcome": "ok"}) == 4
    assert reg.get_sample_value("runpod_probe_latency_seconds_bucket",
                                {"endpoint": "a", "check": "models", "le": "+Inf"}) == 4
    assert reg.get_sample_value("runpod_probe_endpoint_state",
                                {"endpoint": NAMES[1], "state": "down"}) == 1


def test_the_server_streams_the_same_page_gzipped_or_not() -> None:
    import gzip

    reg = registry()
    app = make_wsgi_app(reg)
    for encoding in ("", "gzip"):
        started: list[str] = []

        def start(status: str, _headers: object, into: list[str] = started) -> None:
            into.append(status)

        chunks = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "",
                      "HTTP_ACCEPT_ENCODING": encoding}, start)
        body = b"".join(chunks)
        if encoding:
            body = gzip.decompress(body)
        assert started == ["200 OK"]
        assert without_process(body) == without_process(render(reg, "")[0])


def test_a_verdict_is_encoded_as_its_json() -> None:
    import json

    verdict = EndpointVerdict()
    verdict.plan({"models", "health"}, ("models", "health"))
    for i in range(5):
        for check, outcome in (("models", Outcome.OK), ("health", Outcome.TIMEOUT),
                               ("prompt:x", Outcome.EXPECTATION_FAILED)):
            verdict.observe(result("e", check, outcome, i, model="m", max_model_len=5), i,
                            Hysteresis())
    verdict.durable["vllm_metrics"] = {"streak": 3, "seen": [1, (2, 3)], "b": {"z": None}}
    encoded = verdict.encoded()
    assert encoded.text == json.dumps(verdict.to_json(), sort_keys=True)
    assert encoded.state == str(verdict.state) == "down"
