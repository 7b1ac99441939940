"""/metrics written by ``probe.exposition.text`` is byte for byte what prometheus_client writes
for the same families, in every format it negotiates; samples read through the registry are
the same too. Label values that need escaping and every collector with per-endpoint series
are in the fleet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from helpers import config_of, endpoint, plan, role_of
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from probe.exposition.text import Kept, go_number, histogram_lines, make_wsgi_app, render
from probe.job import Job
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome, ProbeResult
from probe.prompts.metrics import PromptMetrics
from probe.serverless.metrics import ServerlessMetrics
from probe.state import CHECK_LATENCY_BUCKETS, FleetState, les_of
from probe.verdict import EndpointVerdict, Hysteresis, Window
from probe.vllm.metrics import EngineMetrics

NAMES = ("a", 'we"ird\\na\nme', "z")
ACCEPT = ["", "text/plain; version=0.0.4", "application/openmetrics-text",
          "application/openmetrics-text; version=1.0.0; charset=utf-8",
          "text/plain;version=1.0.0;escaping=allow-utf-8"]


def result(name: str, check: str, outcome: Outcome, i: int = 0, **details: object) -> ProbeResult:
    return ProbeResult(name, "pod", check, outcome, datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
                       0.0123 * i, 1 + i % 2, "http://p", "m",
                       200 if outcome is Outcome.OK else None, dict(details), role=role_of(check))


def watched(write_ahead: bool) -> tuple[FleetState, CollectorRegistry]:
    """A state and its registry, whose core collector writes the checks' and endpoints' lines
    as they change, as the daemon's does (``write_ahead``), or at each scrape."""
    state = FleetState(role_of)
    return state, make_registry(ProbeCollector(state, write_ahead=write_ahead,
                                               per_check=True))


def registry(write_ahead: bool = False) -> CollectorRegistry:
    """A fleet's registry; ``write_ahead``: lines written as the state changes (``watched``)."""
    config = config_of(*(endpoint(name=n, checks=("models", "health", "vllm_metrics",
                                                  "context_active"), min_context=1000)
                         for n in NAMES))
    state, reg = watched(write_ahead)
    state.configure(config, plan(config))
    for name in NAMES:
        for check, outcome in (("models", Outcome.OK), ("health", Outcome.TIMEOUT),
                               ("vllm_metrics", Outcome.OK),
                               ("context_active", Outcome.BAD_RESPONSE)):
            for i in range(4):
                state.update(result(name, check, outcome, i, model='m"x', max_model_len=4096))
    # a standing pseudo-endpoint (no kind: only its state), and an endpoint in a window
    state.declare_standing("runpod-api", "discovery")
    state.update(result("runpod-api", "discovery", Outcome.UNAUTHORIZED))
    at = datetime(2026, 1, 1, 1, tzinfo=UTC)
    state.set_maintenance("z", Window("w1", "upgrade", 'new "image"', "config", at, None), at)
    engine, prompts, serverless = EngineMetrics(), PromptMetrics(), ServerlessMetrics()
    for collector in (engine, prompts, serverless):
        reg.register(collector)
    for name in NAMES:
        engine.observe(result(name, "vllm_metrics", Outcome.OK, waiting=3, running=2,
                              kv_cache_usage=0.5))
    prompts.on_plan(config_of(endpoint(name="a")),
                    [Job("a/prompt:arith", endpoint(name="a"), ("prompt:arith",), 300.0)])
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


@pytest.mark.parametrize("write_ahead", [False, True], ids=["at-scrape", "written-ahead"])
@pytest.mark.parametrize("accept", ACCEPT)
def test_the_page_is_what_prometheus_client_writes(accept: str, write_ahead: bool) -> None:
    reg = registry(write_ahead)
    encoder, content_type = choose_encoder(accept)
    expected = encoder(reg)
    body, ours = render(reg, accept)
    assert ours == content_type
    assert without_process(body) == without_process(expected)
    assert b"runpod_probe_latency_seconds_bucket" in body and b"serverless" in body
    # discovery's pseudo-endpoint is no endpoint: no state (RunpodEndpointUnknown would
    # repeat RunpodDiscoveryFailing, issue 24)
    assert b'runpod_probe_endpoint_state{endpoint="runpod-api"' not in body
    for line in (b'runpod_probe_maintenance{endpoint="z"} 1.0', b"runpod_probe_endpoint_cause{",
                 b'runpod_probe_max_model_len{endpoint="a",model="m\\"x"} 4096.0'):
        assert line in body


def test_samples_are_read_as_before() -> None:
    reg = registry()
    assert reg.get_sample_value("runpod_probe_results_total",
                                {"endpoint": "a", "check": "models", "outcome": "ok"}) == 4
    assert reg.get_sample_value("runpod_probe_check_latency_seconds_bucket",
                                {"endpoint": "a", "check": "models", "le": "+Inf"}) == 4
    assert reg.get_sample_value("runpod_probe_latency_seconds_bucket",
                                {"endpoint": "a", "check_kind": "api", "le": "+Inf"}) == 12
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


@pytest.mark.parametrize("value", [
    0, 1, -1, 7, 999_999, 1_000_000, 123_456_789, 2**53 - 1, 2**53, 2**60, -(2**53) + 1,
    -(2**53), -(2**60), True, False, 0.0, -0.0, 0.1, 1e-7, 0.30000000000000004, 999_999.99,
    1e6, 1.5e6, 1_764_520_000.123, 1_764_520_000.0, 1_764_520_001.5, 1e7, 9_999_999.999,
    123_456_789_012_345.6, 9_999_999_999_999_998.0, 1e16, 2.5e16, -5.5, -1e6, -1.5e9, -1e20,
    1e22, float("inf"), float("-inf"), float("nan")])
def test_numbers_are_written_as_prometheus_client_writes_them(value: float) -> None:
    assert go_number(value) == floatToGoString(value)


class _One:
    def __init__(self, family: HistogramMetricFamily) -> None:
        self.family = family

    def collect(self) -> list[HistogramMetricFamily]:
        return [self.family]


@pytest.mark.parametrize(("counts", "total"), [
    ([0] * 11, 0.0),
    ([1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3], 37.25),
    ([0] * 10 + [999_999], 1e7),  # the last count below a million: written as ints
    ([600_000, 400_000] + [0] * 9, 1_234_567.5),  # a million: Go's exponent form
    ([2**40] + [0] * 10, float("inf")),
], ids=["empty", "small", "below-a-million", "a-million", "huge"])
def test_histogram_lines_are_what_prometheus_client_writes(counts: list[int],
                                                           total: float) -> None:
    les = les_of(CHECK_LATENCY_BUCKETS)
    family = HistogramMetricFamily("x_seconds", "d", labels=["check", "endpoint"])
    running, buckets = 0, []
    for le, count in zip(les, counts, strict=True):
        running += count
        buckets.append((le, float(running)))
    family.add_metric(["c", 'e"1'], buckets, total)
    expected = generate_latest(_One(family)).decode()  # type: ignore[arg-type]
    expected = "".join(line + "\n" for line in expected.splitlines()
                       if not line.startswith("#") and "_created" not in line)
    lines = histogram_lines("x_seconds", les)
    assert lines('check="c",endpoint="e\\"1"', counts, total) == expected


def test_histogram_lines_refuse_counts_that_do_not_fit_the_bounds() -> None:
    with pytest.raises(ValueError, match="bucket counts"):
        histogram_lines("x", ("1.0", "+Inf"))("a=\"b\"", [1, 2, 3], 0.5)
    with pytest.raises(ValueError, match="bounds"):
        histogram_lines("x", ("1.0", "2.0"))


@pytest.mark.parametrize("accept", ACCEPT[:3])
def test_a_scrape_leaves_nothing_for_the_garbage_collector(accept: str) -> None:
    """What a scrape makes is freed when it is written: the daemon raises the collector's
    thresholds, so a reference cycle left by each scrape would hold its rows (and the lines
    the checks have since replaced) until a full collection, growing memory scrape by scrape."""
    import gc

    reg = registry(write_ahead=True)
    render(reg, accept)
    gc.collect()
    gc.disable()
    try:
        render(reg, accept)
        reg.get_sample_value("runpod_probe_up", {"endpoint": "a", "check": "models"})
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_kept_rows_are_made_once_whichever_reading_stops_early() -> None:
    made: list[int] = []

    def make() -> Iterator[int]:
        for i in range(5):
            made.append(i)
            yield i

    rows = Kept(make())
    first = iter(rows)
    assert [next(first), next(first)] == [0, 1]  # a reading left unfinished
    assert list(rows) == [0, 1, 2, 3, 4]  # the next one goes on from there
    assert list(rows) == [0, 1, 2, 3, 4]
    assert made == [0, 1, 2, 3, 4]  # each row made once


@pytest.mark.parametrize("write_ahead", [False, True], ids=["at-scrape", "written-ahead"])
def test_each_scrape_shows_the_fleet_as_it_is_then(write_ahead: bool) -> None:
    """Lines kept from one scrape to the next (a check's, an endpoint's) follow every change:
    after results that move an endpoint down and back up, a model change and a window, each
    page is still what prometheus_client writes from the state at that time."""
    config = config_of(*(endpoint(name=n, checks=("models", "health")) for n in NAMES))
    state, reg = watched(write_ahead)
    state.configure(config, plan(config))
    encoder, _ = choose_encoder("")
    at = datetime(2026, 1, 1, 1, tzinfo=UTC)
    changes = [
        [("a", "models", Outcome.OK, "m1"), ("a", "health", Outcome.OK, "m1")],
        [("a", "health", Outcome.TIMEOUT, "m1")] * 3,
        [("a", "models", Outcome.OK, "m2"), ("z", "models", Outcome.HTTP_404, "m1")],
        [("a", "health", Outcome.OK, "m2")] * 3,
    ]
    pages = []
    for i, step in enumerate(changes):
        for n, (name, check, outcome, model) in enumerate(step):
            state.update(result(name, check, outcome, i * 10 + n, model=model,
                                max_model_len=1000 * (i + 1)))
        if i == 2:
            state.set_maintenance("z", Window("w", "w", "r", "config", at, None), at)
        body, _ = render(reg, "")
        assert without_process(body) == without_process(encoder(reg))
        pages.append(body)
    assert len(set(pages)) == len(pages)
    assert b'runpod_probe_endpoint_up{endpoint="a",kind="pod"} 1.0' in pages[-1]
    assert b'state="down"} 1.0' in pages[1] and b'model="m2"} 3000.0' in pages[-1]
    assert b'runpod_probe_maintenance{endpoint="z"} 1.0' in pages[-1]


def test_every_verdict_is_encoded_as_its_json() -> None:
    # verdicts of every shape a daemon makes or reads back: governed answers, a window,
    # durable memory with nested mappings, lists and tuples, a restored one with the
    # fields' usual types changed (the text written field by field must stay the JSON's)
    import json
    import random

    pick = random.Random(25)
    checks = ["models", "health", "prompt:x", "prompt:a"]
    outcomes = [Outcome.OK, Outcome.OK, Outcome.TIMEOUT, Outcome.EXPECTATION_FAILED,
                Outcome.UNKNOWN]
    for round_ in range(40):
        verdict = EndpointVerdict()
        verdict.plan(set(checks), ("models", "health"))
        for i in range(pick.randrange(1, 30)):
            verdict.observe(result("e", pick.choice(checks), pick.choice(outcomes), i % 60,
                                   model=pick.choice(["m", "n"]), max_model_len=5), i,
                            Hysteresis())
        if round_ % 3 == 0:
            at = datetime(2026, 1, 1, tzinfo=UTC)
            verdict.enter_maintenance("e", Window("w", "n", 'r"x', "cli (a)", at, None), at)
            verdict.maintenance.last.update({"b": "ok", "a": "timeout"})  # type: ignore
        verdict.durable = {"z": {"b": [3, {"y": 1, "x": (2, None)}], "a": "é"},
                           "a": {"s": 1.5, "t": [True, False]}} if round_ % 2 else {}
        if round_ % 5 == 0:
            verdict = EndpointVerdict.from_json(json.loads(json.dumps(verdict.to_json())))
            verdict.subject, verdict.incident = "Endpoint é", "inc-1"
        assert verdict.encoded().text == json.dumps(verdict.to_json(), sort_keys=True), round_
