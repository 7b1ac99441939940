"""The series budget on a live scrape: the real daemon against the simulator, a default pod
(models, health, vllm_metrics, the context check, two governed prompts), a serverless
endpoint and a provider. Each exports what docs/metrics.md's formula for its kind says, and
the default pod at most 40 series."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

from daemon_harness import run_daemon, scrape
from helpers import parse_config
from simconfig import header, pods

from probe.daemon import Daemon

ROOT = Path(__file__).parents[2]
BUDGET = 40
PROMPTS = ('prompts:\n'
           '  - {name: arithmetic, prompt: "What is 2+2?", expect: {regex: "4"}, cross: x}\n'
           '  - {name: failure, prompt: "What happens on validation failure?", '
           'expect: {regex: "(?i)fails? closed"}, cross: x}\n')
PROVIDER_KEY = "provider-own-key-0000"
# the last result of every check of every endpoint passed, and the pod spent tokens
READY = ('runpod_probe_prompt_pass{endpoint="pod",prompt="arithmetic"} 1.0',
         'runpod_probe_prompt_pass{endpoint="pod",prompt="failure"} 1.0',
         'runpod_probe_tokens_spent_total{endpoint="pod",type="completion"}',
         'runpod_probe_vllm_requests_waiting{endpoint="pod"}',
         'runpod_probe_endpoint_state{endpoint="pod",state="up"} 1.0',
         'runpod_probe_endpoint_state{endpoint="sls",state="up"} 1.0',
         'runpod_probe_endpoint_state{endpoint="prov",state="up"} 1.0')


def formulas() -> dict[str, str]:
    """docs/metrics.md's ``series(kind) = ...`` lines."""
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    return dict(re.findall(r"`series\((\w+)\) = ([^`]+)`", text))


def series_of(page: str, endpoint: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in page.splitlines():
        if not line.startswith("#") and f'endpoint="{endpoint}"' in line:
            out[line.split("{")[0]] += 1
    return out


def variables(series: Counter[str], page: str, endpoint: str) -> dict[str, int]:
    kinds = set(re.findall(rf'runpod_probe_observations_total{{check_kind="(\w+)",'
                           rf'endpoint="{endpoint}"}}', page))
    return {"C": series["runpod_probe_up"], "K": len(kinds),
            "P": series["runpod_probe_prompt_pass"],
            "T": 1 if series["runpod_probe_tokens_spent_total"] else 0,
            "M": series["runpod_probe_max_model_len"],
            "E": 5 if series["runpod_probe_vllm_requests_waiting"] else 0,
            "J": series["runpod_probe_serverless_jobs"],
            "W": series["runpod_probe_serverless_workers"]}


def test_series_per_endpoint_match_the_documented_formulas(sim: Any, tmp_path: Path,
                                                           sim_env: dict[str, str]) -> None:
    from probe.simulator import OpenAISpec

    sim.fleet.add_openai("own-key", OpenAISpec(api_key=PROVIDER_KEY))
    env = {**sim_env, "PROVIDER_KEY": PROVIDER_KEY}
    text = (header(sim, tmp_path, interval="1s", timeout="900ms")
            + pods("pod qwen-healthy required_context: 8000")
            + "  - {name: sls, kind: serverless, endpoint_id: vllm-healthy}\n"
            + f'  - {{name: prov, kind: openai, base_url: "{sim.base_url}/openai/own-key/v1",'
            " api_key_env: PROVIDER_KEY}\n" + PROMPTS)

    async def scenario(daemon: Daemon) -> str:
        page = ""
        for _ in range(300):
            page = await scrape(daemon)
            if all(needle in page for needle in READY):
                return page
            await asyncio.sleep(0.1)
        raise AssertionError(f"the fleet never settled: {page}")

    page = run_daemon(parse_config(text, env=env), env, scenario)
    documented = formulas()
    assert set(documented) == {"pod", "serverless", "openai"}
    counted = {}
    for endpoint, kind in (("pod", "pod"), ("sls", "serverless"), ("prov", "openai")):
        series = series_of(page, endpoint)
        values = variables(series, page, endpoint)
        expected = eval(documented[kind], {"__builtins__": {}}, values)  # noqa: S307 - our doc
        counted[endpoint] = sum(series.values())
        assert counted[endpoint] == expected, (endpoint, values, dict(series))
    pod = variables(series_of(page, "pod"), page, "pod")
    assert (pod["C"], pod["K"], pod["P"], pod["T"]) == (6, 2, 2, 1), "the default pod"
    assert counted["pod"] <= BUDGET
