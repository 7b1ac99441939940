"""From listed pods/endpoints to probed endpoints: naming, filters, precedence, URLs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from discovery_helpers import ENV, config, names, pod, serverless
from helpers import parse_config

from probe.discovery.fleet import build_fleet, sanitise, unique_name
from probe.discovery.listing import Listed


def build(listed: dict[str, tuple[Listed, ...]], discovery: str = "{}",
          endpoints: str = "", head: str = "") -> Any:
    cfg = config(discovery, endpoints, head)
    return build_fleet(cfg, cfg.sections["discovery"], listed, ENV)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("vllm-qwen", "vllm-qwen"), ("My Qwen Pod!", "my-qwen-pod"),
     ("image generator -fb", "image-generator"), ("--weird__name..", "weird__name"),
     ("日本語", ""), ("a/b\\c", "a-b-c")],
    ids=["plain", "spaces-and-punctuation", "flashboot-suffix", "edges-trimmed", "non-ascii",
         "slashes"],
)
def test_sanitise(text: str, expected: str) -> None:
    assert sanitise(text) == expected


@pytest.mark.parametrize(
    ("item", "taken", "expected"),
    [
        (pod("xedezhzb9la3ye", "vllm-qwen"), set(), "vllm-qwen-xedezhzb9la3ye"),
        (pod("qwen-healthy"), set(), "qwen-healthy"),
        (pod("abc123", "worker abc123"), set(), "worker-abc123"),
        (pod("abc123", "日本語"), set(), "abc123"),
        (pod("abc123", "vllm"), {"vllm-abc123"}, "vllm-abc123-2"),
        (pod("abc123", "vllm"), {"vllm-abc123", "vllm-abc123-2"}, "vllm-abc123-3"),
    ],
    ids=["name-plus-id", "name-is-id", "name-carries-id", "no-usable-name", "taken",
         "taken-twice"],
)
def test_names_are_runpod_name_plus_id_and_unique(item: Listed, taken: set[str],
                                                  expected: str) -> None:
    assert unique_name(item, taken) == expected


def test_discovered_endpoints_are_built_like_configured_ones() -> None:
    fleet = build({"pod": (pod("p1", "qwen"),), "serverless": (serverless("e1", "queue"),)})
    by_hand = parse_config(
        'runpod: {proxy_url: "http://proxy.test/{pod_id}-{port}", '
        'api_base: "http://queue.test/v2"}\n'
        "endpoints:\n  - {name: qwen-p1, kind: pod, pod_id: p1, port: 8000}\n"
        "  - {name: queue-e1, kind: serverless, endpoint_id: e1}\n", env=ENV).endpoints
    assert names(fleet.endpoints) == ["qwen-p1", "queue-e1"]
    for found, expected in zip(fleet.endpoints, by_hand, strict=True):
        assert replace(found, origin="config", runpod_status=None) == expected
    assert fleet.endpoints[0].root_url == "http://proxy.test/p1-8000"
    assert fleet.endpoints[1].root_url == "http://queue.test/v2/e1"
    assert fleet.endpoints[0].origin == "discovery"
    assert fleet.endpoints[0].runpod_status == "RUNNING"
    assert fleet.counts() == {"pod": 1, "serverless": 1}


def test_discovery_defaults_beat_file_defaults_and_feature_keys_pass_through() -> None:
    fleet = build({"pod": (pod("p1", ports=("8001/http",)),)},
                  head="defaults: {interval: 1m, model: file/model}\n",
                  discovery="{port: 8001, defaults: {model: m/one, min_context: 8192, "
                            "required_context: 4096}}")
    found = fleet.endpoints[0]
    assert (found.model, found.min_context, found.interval_s, found.port) == (
        "m/one", 8192, 60.0, 8001)
    assert found.extra["required_context"] == 4096
    assert found.root_url == "http://proxy.test/p1-8001"


@pytest.mark.parametrize(
    ("discovery", "listed", "probed", "skipped"),
    [
        ('{include: "^prod-"}', {"pod": (pod("a", "prod-qwen"), pod("b", "dev-qwen"))},
         ["prod-qwen-a"], [("b", 'name does not match include "^prod-"')]),
        ("{exclude: scratch}", {"pod": (pod("a", "qwen"), pod("b", "my-scratch"))},
         ["qwen-a"], [("b", 'name matches exclude "scratch"')]),
        ("{}", {"pod": (pod("a", status="EXITED"), pod("b", status="STARTING"))}, [],
         [("a", "pod EXITED per RunPod API (only RUNNING pods are probed)"),
          ("b", "pod STARTING per RunPod API (only RUNNING pods are probed)")]),
        ("{}", {"pod": (pod("a", ports=("8888/http", "22/tcp")), pod("b", ports=("8000/tcp",)),
                        pod("c", ports=()))}, [],
         [("a", "port 8000 not exposed as http (ports: 8888/http, 22/tcp)"),
          ("b", "port 8000 not exposed as http (ports: 8000/tcp)"),
          ("c", "port 8000 not exposed as http (ports: none)")]),
        ("{}", {"serverless": (serverless("a", type_="LOAD_BALANCER"), serverless("b"))},
         ["b"], [("a", "LOAD_BALANCER endpoint (only queue-based endpoints are probed)")]),
        ("{pods: false}", {"pod": (pod("a"),), "serverless": (serverless("b"),)}, ["b"], []),
    ],
    ids=["include", "exclude", "not-running", "port-not-http", "load-balancer", "kind-off"],
)
def test_what_is_not_probed_is_reported_with_its_reason(
        discovery: str, listed: dict[str, tuple[Listed, ...]], probed: list[str],
        skipped: list[tuple[str, str]]) -> None:
    fleet = build(listed, discovery)
    assert names(fleet.endpoints) == probed
    assert [(s.id, s.reason) for s in fleet.skipped] == skipped


def test_configured_endpoints_win_and_carry_the_api_status() -> None:
    fleet = build(
        {"pod": (pod("p1", "qwen", status="EXITED"), pod("p2", "other")),
         "serverless": (serverless("e1"),)},
        endpoints="  - {name: mine, kind: pod, pod_id: p1}\n"
                  "  - {name: queue, kind: serverless, endpoint_id: e1}\n"
                  "  - {name: other-p2, kind: openai, base_url: 'http://x.test/v1', "
                  "api_key_env: null}\n")
    assert names(fleet.configured) == ["mine", "queue", "other-p2"]
    assert fleet.configured[0].runpod_status == "EXITED"
    assert fleet.configured[0].origin == "config"
    assert fleet.configured[1].runpod_status is None
    assert names(fleet.endpoints) == ["other-p2-2"], "a configured name is never reused"
    assert fleet.skipped == (), "configured ones are neither duplicated nor skipped"
    merged = fleet.config(config(endpoints="  - {name: x, kind: pod, pod_id: x}\n"))
    assert names(merged.endpoints) == ["mine", "queue", "other-p2", "other-p2-2"]


def test_nothing_listed_yet_means_only_the_configured_endpoints() -> None:
    fleet = build({}, endpoints="  - {name: mine, kind: pod, pod_id: p1}\n")
    assert (names(fleet.configured), fleet.endpoints, fleet.skipped) == (["mine"], (), ())
