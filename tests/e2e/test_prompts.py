"""Governed prompts, context fit and model drift against the simulated fleet over real
sockets: the real sweep, prober and daemon code, no mocks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import run_daemon
from helpers import fleet_state, job_of, parse_config
from simconfig import header, pods, write

from probe.app import PLUGINS
from probe.daemon import Daemon
from probe.outcome import Outcome, ProbeResult
from probe.sweep import sweep

ARITHMETIC = ('  - {name: arithmetic, prompt: "What is 2+2? Answer with the number only.", '
              "expect: {regex: '^\\s*4\\s*$'}, cross: RUNPOD.md Test table, max_tokens: 16}\n")
GOVERNANCE = ('  - {name: failure, prompt: "What happens on validation failure?", '
              "expect: {regex: '(?i)fails? closed'}, cross: RUNPOD/CANON.md constraints, "
              "kinds: [pod, serverless, openai]}\n")


def run(sim: Any, tmp_path: Path, env: dict[str, str], *rows: str, prompts: str = ARITHMETIC,
        endpoints: str | None = None, **header_args: Any) -> dict[tuple[str, str], ProbeResult]:
    text = header(sim, tmp_path, **header_args) + (endpoints or pods(*rows)) + \
        ("prompts:\n" + prompts if prompts else "")
    results = asyncio.run(sweep(parse_config(text, env=env), PLUGINS, env=env))
    return {(r.endpoint, r.check): r for r in results}


BEHAVIOURS = [
    ("healthy", Outcome.OK, "passed"),
    ("wrong_answer", Outcome.EXPECTATION_FAILED, 'answer "5"'),
    ("cut_stream", Outcome.STREAM_BROKEN, "before [DONE]"),
    ("reasoning_only", Outcome.EMPTY_ANSWER, "only reasoning text"),
    ("empty_answer", Outcome.EMPTY_ANSWER, "empty answer"),
    ("no_usage", Outcome.BAD_RESPONSE, "no usage reported"),
    ("engine_dead", Outcome.HTTP_5XX, "HTTP 500"),
    ("stopped", Outcome.HTTP_404, "HTTP 404"),
]


@pytest.mark.parametrize(("behaviour", "outcome", "words"), BEHAVIOURS,
                         ids=[b[0] for b in BEHAVIOURS])
def test_prompt_outcome_per_pod_behaviour(sim: Any, tmp_path: Path, sim_env: dict[str, str],
                                          behaviour: str, outcome: Outcome, words: str) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod(f"b-{behaviour}", PodSpec(behaviour=behaviour))
    result = run(sim, tmp_path, sim_env, f"p b-{behaviour}")[("p", "prompt:arithmetic")]
    assert result.outcome is outcome, result.message
    assert words in result.message


def test_ttft_is_measured_to_the_first_content_token(sim: Any, tmp_path: Path,
                                                     sim_env: dict[str, str]) -> None:
    from probe.simulator import PodSpec

    # The role chunk comes at once; the first content token only after 0.5 s.
    sim.fleet.add_pod("slowstream", PodSpec(behaviour="slow_stream", ttft_delay_s=0.5))
    prompts = ('  - {name: arithmetic, prompt: "What is 2+2?", expect: {regex: "4", '
               "not_max_ttft: 400ms}, cross: x}\n")
    result = run(sim, tmp_path, sim_env, "s slowstream", prompts=prompts,
                 timeout="5s", interval="10s")[("s", "prompt:arithmetic")]
    assert result.ok, result.message
    assert result.details["ttft_s"] >= 0.5
    assert result.details["total_s"] >= result.details["ttft_s"]


def test_governance_prompt_on_pod_serverless_and_openai_provider(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    from probe.simulator import OpenAISpec

    sim.fleet.add_openai("own-key", OpenAISpec(api_key="provider-own-key-0000"))
    endpoints = (pods("pod qwen-healthy")
                 + "  - {name: sls, kind: serverless, endpoint_id: vllm-healthy}\n"
                 + f'  - {{name: prov, kind: openai, base_url: "{sim.base_url}/openai/own-key/v1",'
                 " api_key_env: PROVIDER_KEY}\n")
    results = run(sim, tmp_path, {**sim_env, "PROVIDER_KEY": "provider-own-key-0000"},
                  endpoints=endpoints, prompts=GOVERNANCE, timeout="5s", interval="10s")
    for name in ("pod", "sls", "prov"):
        result = results[(name, "prompt:failure")]
        assert result.ok, (name, result.message)
        assert result.details["usage"]["completion_tokens"] > 0
        assert result.details["cross"] == "RUNPOD/CANON.md constraints"


@pytest.mark.parametrize(("max_model_len", "outcome"),
                         [(8192, Outcome.CONTEXT_EXCEEDED), (32768, Outcome.OK)],
                         ids=["8k-pod-rejects", "32k-pod-accepts"])
def test_active_context_probe(sim: Any, tmp_path: Path, sim_env: dict[str, str],
                              max_model_len: int, outcome: Outcome) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod(f"ctx-{max_model_len}", PodSpec(max_model_len=max_model_len))
    row = f"c ctx-{max_model_len} required_context: 11000, active_context_probe: 1h"
    results = run(sim, tmp_path, sim_env, row, prompts="", timeout="5s", interval="10s")
    active, passive = results[("c", "context_active")], results[("c", "context")]
    assert active.outcome is outcome, active.message
    assert passive.outcome is (Outcome.OK if outcome is Outcome.OK
                               else Outcome.CONTEXT_TOO_SMALL), passive.message
    if outcome is Outcome.OK:
        assert active.details["prompt_tokens"] >= 11000 * 0.9
    else:
        assert "maximum context length is 8192" in active.message


def test_model_drift_is_recorded_with_old_and_new(sim: Any, tmp_path: Path,
                                                  sim_env: dict[str, str]) -> None:
    from probe.net import make_client
    from probe.prober import Prober
    from probe.simulator import PodSpec

    sim.fleet.add_pod("drifty", PodSpec())
    config = parse_config(header(sim, tmp_path) + pods("d drifty"), env=sim_env)
    target = config.endpoints[0]

    async def probe_three_times() -> list[ProbeResult]:
        async with make_client(4) as client:
            prober = Prober(client, fleet_state(config), PLUGINS.resolve, 4, 1 << 20, env=sim_env)
            first = await prober.run_one(job_of(target), "models")
            sim.fleet.update_pod("drifty", max_model_len=8192)
            second = await prober.run_one(job_of(target), "models")
            sim.fleet.update_pod("drifty", model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
            third = await prober.run_one(job_of(target), "models")
            return [first, second, third]

    first, second, third = asyncio.run(probe_three_times())
    assert "max_model_len_changed" not in first.details
    assert second.details["max_model_len_changed"] == {"old": 32768, "new": 8192}
    assert third.details["model_changed"] == {"old": "Qwen/Qwen2.5-7B-Instruct",
                                              "new": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}


def test_drift_to_another_model_is_recorded_even_when_a_model_is_expected(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    from probe.net import make_client
    from probe.prober import Prober
    from probe.simulator import PodSpec

    sim.fleet.add_pod("pinned", PodSpec())
    config = parse_config(header(sim, tmp_path) + pods(
        "d pinned model: Qwen/Qwen2.5-7B-Instruct"), env=sim_env)

    async def probe_twice() -> ProbeResult:
        async with make_client(4) as client:
            prober = Prober(client, fleet_state(config), PLUGINS.resolve, 4, 1 << 20, env=sim_env)
            await prober.run_one(job_of(config.endpoints[0]), "models")
            sim.fleet.set_pod_behaviour("pinned", "wrong_model")
            return await prober.run_one(job_of(config.endpoints[0]), "models")

    result = asyncio.run(probe_twice())
    assert result.outcome is Outcome.MODEL_MISSING
    assert result.details["model_changed"]["old"] == "Qwen/Qwen2.5-7B-Instruct"


def test_daemon_exports_prompt_metrics_and_respects_the_budget(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    prompts = ('  - {name: arithmetic, prompt: "What is 2+2?", expect: {regex: "4"}, '
               "cross: x, interval: 200ms, max_tokens: 16}\n")
    path = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="10s").replace(
        'metrics: {listen: "127.0.0.1:0"}', 'metrics: {listen: "127.0.0.1:0", per_check: true}')
        + pods("q qwen-healthy token_budget_per_hour: 30") + "prompts:\n" + prompts)

    async def scenario(daemon: Daemon) -> tuple[str, dict[str, int]]:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            latest = daemon.state.latest("q", "prompt:arithmetic")
            if latest is not None and latest.outcome is Outcome.SKIPPED_BUDGET:
                break
            assert asyncio.get_running_loop().time() < deadline, "budget never reached"
            await asyncio.sleep(0.05)
        text = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
        counts = daemon.state.snapshot().checks[("q", "prompt:arithmetic")].outcomes
        return text, dict(counts)

    text, counts = run_daemon(path, sim_env, scenario)
    # The simulator counts 3 prompt + 1 completion tokens per run; a run needs its estimate
    # (3 + max_tokens 16) free: runs at 0, 4 and 8 tokens spent fit in 30 per hour, the
    # fourth (12 + 19 > 30) is skipped and recorded, never passed.
    assert counts["ok"] == 3 and counts["skipped_budget"] >= 1
    assert 'runpod_probe_prompt_pass{endpoint="q",prompt="arithmetic"} 0.0' in text
    assert 'runpod_probe_tokens_spent_total{endpoint="q",type="completion"} 3.0' in text
    assert 'runpod_probe_tokens_spent_total{endpoint="q",type="prompt"} 9.0' in text
    assert 'runpod_probe_prompt_ttft_seconds_count{endpoint="q",prompt="arithmetic"} 3.0' in text
    assert 'runpod_probe_results_total{check="prompt:arithmetic",endpoint="q",' \
           'outcome="skipped_budget"}' in text
