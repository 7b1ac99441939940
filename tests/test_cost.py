"""What a config costs per day, before it runs (``check-config``): requests, tokens probing
may spend, serverless jobs it submits. Each row is worked out by hand from the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import parse_config

from probe.app import PLUGINS
from probe.cost import DailyCost, daily_cost, describe

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
POD = "  - {name: p, kind: pod, pod_id: p1, interval: 60s}\n"
QUEUE = "  - {name: s, kind: serverless, endpoint_id: e1, interval: 60s}\n"
PROVIDER = "  - {name: o, kind: openai, base_url: 'http://127.0.0.1:9/v1', interval: 60s}\n"
PROMPT = ("prompts:\n  - {name: a, prompt: abcdefgh, expect: {contains: '4'}, max_tokens: 16, "
          "interval: 1h, cross: x%s}\n")


def cost(endpoints: str, extra: str = "") -> DailyCost:
    config = parse_config("endpoints:\n" + endpoints + extra, env=ENV)
    return daily_cost(PLUGINS.plan(config), PLUGINS)


@pytest.mark.parametrize(("endpoints", "extra", "requests", "tokens", "jobs"), [
    # a pod: models, health, vllm_metrics every minute
    (POD, "", 3 * 1440, 0, 0),
    # a serverless endpoint: the free /health queue reading
    (QUEUE, "", 1440, 0, 0),
    # a prompt runs on pods only by default: 2 prompt tokens + 16 max_tokens, 24 times
    (POD + QUEUE + PROVIDER, PROMPT % "", 3 * 1440 + 1440 + 1440 + 24, 18 * 24, 0),
    # opted in on serverless: each run is a billed job
    (POD + QUEUE, PROMPT % ", kinds: [serverless]", 3 * 1440 + 1440 + 24, 18 * 24, 24),
    # a round trip every 10 minutes: up to 4 requests and one job each
    ("  - {name: s, kind: serverless, endpoint_id: e1, interval: 60s, roundtrip: "
     "{interval: 10m, input: {prompt: '2+2'}}}\n", "", 1440 + 4 * 144, 0, 144),
    # the context check in active mode sends required_context tokens every 6h; the passive
    # one reads the models check's answer (no request of its own)
    ("  - {name: p, kind: pod, pod_id: p1, interval: 60s, required_context: 11000, "
     "active_context_probe: 6h}\n", "", 3 * 1440 + 4, 11001 * 4, 0),
    # without the models check, the passive context check asks /v1/models itself
    ("  - {name: p, kind: pod, pod_id: p1, interval: 60s, required_context: 11000, "
     "checks: [health]}\n", "", 1440 + 1440, 0, 0),
])
def test_daily_cost(endpoints: str, extra: str, requests: int, tokens: int, jobs: int) -> None:
    total = cost(endpoints, extra).total
    assert (round(total.requests), round(total.tokens), round(total.jobs)) == (
        requests, tokens, jobs)


def test_describe_names_the_endpoints_that_spend() -> None:
    lines = describe(cost(POD + QUEUE, PROMPT % ", kinds: [pod, serverless]"))
    assert lines == [
        "per day: 5,808 requests, up to 864 tokens, 24 serverless jobs (each wakes a worker and "
        "is billed)",
        "  p: up to 432 tokens, 0 serverless jobs per day",
        "  s: up to 432 tokens, 24 serverless jobs per day"]


def test_check_config_prints_the_daily_cost_of_the_shipped_example() -> None:
    example = Path(__file__).parents[1] / "config.yaml"
    done = subprocess.run([sys.executable, "-m", "probe", "check-config", "--config",
                           str(example)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **ENV})
    assert done.returncode == 0, done.stderr
    config = parse_config(example.read_text(), env=ENV)
    expected = describe(daily_cost(PLUGINS.plan(config), PLUGINS))
    assert done.stdout.splitlines() == [f"{example}: ok (2 endpoints)", *expected]
    # the example spends tokens on its pod only; the serverless endpoint wakes no worker
    assert " 0 serverless jobs (each wakes" in expected[0]
    assert [line.split(":")[0].strip() for line in expected[1:]] == ["qwen-pod"]
