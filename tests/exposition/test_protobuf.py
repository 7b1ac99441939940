"""The protobuf page: the wire-format writer against known bytes, native (exponential)
buckets against their definition, and a whole page read back by an independent reader
(``wire``) holding exactly the text page's samples, plus the native buckets."""

from __future__ import annotations

import math
import random
import struct

import pytest
from helpers import config_of, endpoint, plan, role_of
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from test_text import NAMES, registry, result
from wire import HISTOGRAM, families, fields, native, samples

from probe.exposition import protobuf
from probe.exposition.protobuf import Spec, family, metric_of, spans, varint, zigzag
from probe.exposition.text import render
from probe.metrics import ProbeCollector, make_registry
from probe.outcome import Outcome
from probe.prompts.metrics import PromptMetrics
from probe.serverless.metrics import ServerlessMetrics
from probe.state import NATIVE_ZERO_THRESHOLD, Exponential, FleetState, native_index

PROMETHEUS_ACCEPT = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                     "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def test_varints_and_zigzag_are_the_wire_formats() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"  # an int64's two's complement, 10 bytes
    assert [zigzag(n) for n in (0, -1, 1, -2, 2147483647, -2147483648)] == \
        [0, 1, 2, 3, 4294967294, 4294967295]


def test_a_counter_family_is_these_bytes() -> None:
    metric = metric_of(Spec("counter", ("a",)), (("v",), 1))
    page = family("x_total", "h", "counter", metric)
    label = b"\x0a\x06" + b"\x0a\x01a" + b"\x12\x01v"  # Metric.label: LabelPair{name, value}
    counter = b"\x1a\x09" + b"\x09" + b"\x00" * 6 + b"\xf0\x3f"  # Metric.counter{value: 1.0}
    body = b"\x0a\x07x_total" + b"\x12\x01h" + b"\x18\x00" + b"\x22\x13" + label + counter
    assert page == bytes([len(body)]) + body


def test_a_histogram_with_native_buckets_is_these_bytes() -> None:
    buckets = Exponential()
    for value in (1.0, 1.05, 1.06, 4.0):  # buckets 0, 1, 1 and 16
        buckets.observe(value)
    metric = metric_of(Spec("histogram", ()), ((), [("1.0", 1.0), ("+Inf", 4.0)], 7.11,
                                                buckets))
    h = (b"\x08\x04"  # sample_count 4
         + b"\x11" + struct.pack("<d", 7.11)  # sample_sum
         + b"\x1a\x0b" + b"\x08\x01" + b"\x11" + struct.pack("<d", 1.0)  # bucket le=1: 1
         + b"\x28\x06"  # schema 3 (zigzag 6)
         + b"\x31" + struct.pack("<d", 2.0 ** -128)  # zero_threshold
         + b"\x38\x00"  # zero_count 0
         + b"\x62\x04\x08\x00\x10\x02"  # positive_span {offset 0, length 2}: buckets 0, 1
         + b"\x62\x04\x08\x1c\x10\x01"  # positive_span {offset 14, length 1}: bucket 16
         + b"\x68\x02" + b"\x68\x02" + b"\x68\x01")  # positive_delta 1, +1, -1
    assert metric == b"\x22" + bytes([len(h) + 2]) + b"\x3a" + bytes([len(h)]) + h


def test_spans_and_deltas_of_sparse_buckets() -> None:
    assert spans({}) == ([], [])
    assert spans({-2: 1, -1: 3, 3: 2}) == ([(-2, 2), (3, 1)], [1, 2, -1])
    assert spans({5: 4}) == ([(5, 1)], [4])


def test_a_value_falls_in_the_schema_3_bucket_whose_bounds_hold_it() -> None:
    assert [native_index(v) for v in (1.0, 1.05, 2.0, 0.5, 0.25, 1024.0)] == \
        [0, 1, 8, -8, -16, 80]
    rng = random.Random(7)
    for _ in range(2000):
        value = math.exp(rng.uniform(-9, 6))  # 0.1 ms to 400 s
        i = native_index(value)
        assert 2 ** ((i - 1) / 8) < value * (1 + 1e-12) and value <= 2 ** (i / 8) * (1 + 1e-12)


def test_the_zero_bucket_holds_what_is_not_above_its_threshold() -> None:
    buckets = Exponential()
    for value in (0.0, NATIVE_ZERO_THRESHOLD, 0.3, 0.3):
        buckets.observe(value)
    assert buckets.zero_count == 2
    assert buckets.positive == {native_index(0.3): 2}
    copy = buckets.copy()
    copy.observe(0.3)
    assert buckets.positive == {native_index(0.3): 2}, "a copy's observations are its own"


@pytest.mark.parametrize(("header", "protobuf_first"), [
    (PROMETHEUS_ACCEPT, True),
    ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
     "encoding=delimited", True),
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", False),
    ("", False), (None, False), ("text/plain", False),
    ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=text", False),  # only the delimited encoding is written
    ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=delimited;q=0,text/plain", False),
    ("text/plain;q=0.9,application/vnd.google.protobuf;"
     "proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5", False),
    ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=delimited;q=nonsense", False),
])
def test_protobuf_is_written_when_asked_for_first(header: str | None,
                                                  protobuf_first: bool) -> None:
    assert protobuf.wanted(header) is protobuf_first
    _, content_type = render(CollectorRegistry(), header, offer_protobuf=True)
    assert (content_type == protobuf.CONTENT_TYPE) is protobuf_first
    # not offered (native histograms off): the text formats, as before
    assert render(CollectorRegistry(), header)[1] != protobuf.CONTENT_TYPE


def text_samples(page: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for fam in text_string_to_metric_families(page.decode())
            for s in fam.samples}


@pytest.mark.parametrize("write_ahead", [True, False])
def test_the_protobuf_page_holds_the_text_pages_samples(write_ahead: bool) -> None:
    reg = registry(write_ahead)
    text, _ = render(reg, "text/plain; version=0.0.4")
    page, content_type = render(reg, PROMETHEUS_ACCEPT, True)
    assert content_type == protobuf.CONTENT_TYPE
    # the CPU the two scrapes took differs, and the memory may
    moving = ("process_cpu_seconds_total", "process_resident_memory_bytes")
    expected = {s for s in text_samples(text) if s[0] not in moving}
    assert len(expected) > 100
    assert {s for s in samples(page) if s[0] not in moving} == expected
    assert {s[0] for s in samples(page)} >= set(moving)
    written = {f["name"] for f in families(page)}
    assert "runpod_probe_observations_total" in written, "counters named as their series"
    assert "runpod_probe_latency_seconds" in written and "process_open_fds" in written


def probes(page: bytes) -> list[dict]:
    """The page's families but the process's own (its memory and CPU move between scrapes)."""
    return [f for f in families(page) if not f["name"].startswith("process_")]


def test_the_page_written_ahead_is_the_page_written_at_scrape() -> None:
    ahead = probes(render(registry(True), PROMETHEUS_ACCEPT, True)[0])
    assert len(ahead) > 20
    assert ahead == probes(render(registry(False), PROMETHEUS_ACCEPT, True)[0])


def native_fleet(native_on: bool, write_ahead: bool = True) -> tuple[FleetState,
                                                                     CollectorRegistry]:
    config = config_of(*(endpoint(name=n, checks=("models", "health")) for n in NAMES))
    state = FleetState(role_of, native=native_on)
    reg = make_registry(ProbeCollector(state, write_ahead=write_ahead, per_check=True))
    state.configure(config, plan(config))
    for name in NAMES:
        for i in range(6):
            state.update(result(name, "models", Outcome.OK, i))
            state.update(result(name, "health", Outcome.TIMEOUT, i))
    return state, reg


def latencies(page: bytes, family_name: str) -> dict[tuple[tuple[str, str], ...], dict]:
    out = {}
    for fam in families(page):
        if fam["name"] == family_name:
            assert fam["type"] == HISTOGRAM
            for m in fam["metrics"]:
                out[tuple(sorted(m["labels"].items()))] = native(fields(m["histogram"][0]))
    return out


def test_native_buckets_hold_each_observation_where_schema_3_puts_it() -> None:
    _, reg = native_fleet(True)
    page, _ = render(reg, PROMETHEUS_ACCEPT, True)
    # each endpoint's api checks: latencies 0.0123 * i for i in 0..5, twice (two checks)
    want: dict[int, int] = {}
    for i in range(1, 6):
        want[native_index(0.0123 * i)] = want.get(native_index(0.0123 * i), 0) + 2
    kinds = latencies(page, "runpod_probe_latency_seconds")
    assert len(kinds) == len(NAMES)
    for buckets in kinds.values():
        assert buckets == {"schema": 3, "zero_threshold": NATIVE_ZERO_THRESHOLD,
                           "zero_count": 2, "positive": want}
    checks = latencies(page, "runpod_probe_check_latency_seconds")
    assert len(checks) == 2 * len(NAMES)
    assert all(b is not None and sum(b["positive"].values()) == 5 for b in checks.values())


def test_without_native_histograms_only_classic_buckets_are_sent() -> None:
    _, reg = native_fleet(False)
    page, _ = render(reg, PROMETHEUS_ACCEPT, True)
    kinds = latencies(page, "runpod_probe_latency_seconds")
    assert kinds and all(b is None for b in kinds.values())


@pytest.mark.parametrize("accept", ["", "text/plain; version=0.0.4",
                                    "application/openmetrics-text; version=1.0.0"])
def test_native_buckets_leave_the_text_pages_byte_for_byte_as_they_were(accept: str) -> None:
    with_native, without = native_fleet(True)[1], native_fleet(False)[1]
    page, content_type = render(with_native, accept)
    assert content_type != protobuf.CONTENT_TYPE
    assert b"runpod_probe_latency_seconds_bucket" in page
    assert (steady(page), content_type) == (steady(render(without, accept)[0]),
                                            render(without, accept)[1])


def steady(page: bytes) -> bytes:
    """A text page without the process's own lines (its memory and CPU move)."""
    return b"".join(line for line in page.splitlines(keepends=True)
                    if not line.split(b" ", 2)[-1 if line.startswith(b"#") else 0]
                    .startswith(b"process_"))


def test_the_cache_follows_each_new_result() -> None:
    state, reg = native_fleet(True)
    first, _ = render(reg, PROMETHEUS_ACCEPT, True)  # starts the protobuf page's cache
    state.update(result(NAMES[0], "models", Outcome.BAD_RESPONSE, 7))
    after, _ = render(reg, PROMETHEUS_ACCEPT, True)
    assert probes(after) != probes(first)
    # the same results, the page written at the scrape from the state: the same page
    at_scrape, reg_at_scrape = native_fleet(True, write_ahead=False)
    at_scrape.update(result(NAMES[0], "models", Outcome.BAD_RESPONSE, 7))
    assert probes(after) == probes(render(reg_at_scrape, PROMETHEUS_ACCEPT, True)[0])


def test_other_collectors_families_are_written_from_their_samples() -> None:
    reg = CollectorRegistry()

    class Collector:
        def collect(self):  # type: ignore[no-untyped-def]
            counter = CounterMetricFamily("jobs", "Jobs.", labels=["q"], created=12.5)
            counter.add_metric(["a"], 3, created=12.5)
            yield counter
            gauge = GaugeMetricFamily("depth", "Depth.", labels=["q"])
            gauge.add_metric(["a"], 2.5)
            yield gauge

    reg.register(Collector())
    page, _ = render(reg, PROMETHEUS_ACCEPT, True)
    fams = {f["name"]: f for f in families(page)}
    assert set(fams) == {"jobs_total", "depth"}
    jobs = fams["jobs_total"]["metrics"][0]
    counter = fields(jobs["counter"][0])
    created = fields(counter[3][0])
    assert jobs["labels"] == {"q": "a"} and created == {1: [12], 2: [500_000_000]}
    assert samples(page) == {("jobs_total", (("q", "a"),), 3.0),
                             ("depth", (("q", "a"),), 2.5)}


@pytest.mark.parametrize("native_on", [True, False])
def test_round_trip_and_prompt_histograms_carry_native_buckets_when_kept(
        native_on: bool) -> None:
    reg = CollectorRegistry()
    prompts = PromptMetrics(per_check=True, native=native_on)
    serverless = ServerlessMetrics(native=native_on)
    reg.register(prompts)
    reg.register(serverless)
    prompts.observe(result("a", "prompt:arith", Outcome.OK, ttft_s=0.2, total_s=1.0,
                           usage={"prompt_tokens": 5, "completion_tokens": 7}))
    serverless.observe(result("s", "roundtrip", Outcome.OK, start="cold", delay_s=3.5,
                              execution_s=0.2, roundtrip_s=4.0))
    text, _ = render(reg, "text/plain; version=0.0.4")
    page, _ = render(reg, PROMETHEUS_ACCEPT, True)
    assert samples(page) == text_samples(text)
    observed = {"runpod_probe_prompt_ttft_seconds": 0.2,
                "runpod_probe_prompt_duration_seconds": 1.0,
                "runpod_probe_serverless_delay_seconds": 3.5,
                "runpod_probe_serverless_execution_seconds": 0.2,
                "runpod_probe_serverless_roundtrip_seconds": 4.0}
    for name, value in observed.items():
        (buckets,) = latencies(page, name).values()
        if native_on:
            assert buckets is not None and buckets["positive"] == {native_index(value): 1}
        else:
            assert buckets is None
    # the text page is the same either way
    other = CollectorRegistry()
    other_prompts, other_serverless = PromptMetrics(per_check=True), ServerlessMetrics()
    other.register(other_prompts)
    other.register(other_serverless)
    other_prompts.observe(result("a", "prompt:arith", Outcome.OK, ttft_s=0.2, total_s=1.0,
                                 usage={"prompt_tokens": 5, "completion_tokens": 7}))
    other_serverless.observe(result("s", "roundtrip", Outcome.OK, start="cold", delay_s=3.5,
                                    execution_s=0.2, roundtrip_s=4.0))
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        assert render(reg, accept) == render(other, accept)
