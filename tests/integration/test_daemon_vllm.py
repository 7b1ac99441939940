"""The daemon's real code (config loader, sweep, Prober, Daemon, metrics registry) against a
real vLLM 0.32 server serving the tiny model (max_model_len 256, --max-num-seqs 4).

The server is addressed as ``kind: openai`` with the pod checks listed: RunPod's proxy URL
template cannot point at a bare 127.0.0.1 port, and the checks read the same routes
(``{root}/health``, ``{root}/metrics``, ``{root}/v1/models``) either way.
"""

from __future__ import annotations

import asyncio
import http.server
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import fleet_state, job_of, parse_config, plan
from vllm_harness import StartVllmServer, VllmServer

from probe.app import PLUGINS
from probe.config import Config
from probe.daemon import Daemon
from probe.net import make_client
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober
from probe.sweep import sweep
from probe.verdict import Hysteresis

ENGINE_CHECKS = "[models, health, vllm_metrics]"
TTFT = "vllm:time_to_first_token_seconds"


def config_text(server: VllmServer, tmp_path: Path, extra: str = "",
                checks: str = ENGINE_CHECKS, prompts: str = "", interval: str = "60s") -> str:
    return (
        f'storage: {{path: "{tmp_path / "probe.db"}"}}\n'
        'metrics: {listen: "127.0.0.1:0"}\n'
        "scheduler: {spread: false}\n"
        f"defaults: {{interval: {interval}, timeout: 20s, tries: 1}}\n"
        "endpoints:\n"
        f'  - {{name: vllm, kind: openai, base_url: "{server.base_url}/v1", api_key_env: null,'
        f" checks: {checks}{', ' + extra if extra else ''}}}\n"
        + prompts
    )


def load(server: VllmServer, tmp_path: Path, **kwargs: Any) -> Config:
    # An empty environment: no RUNPOD_* or TOKENS_* variable of the caller leaks in.
    return parse_config(config_text(server, tmp_path, **kwargs), env={})


def results(config: Config) -> dict[str, ProbeResult]:
    return {r.check: r for r in asyncio.run(sweep(config, PLUGINS, env={}))}


# --- the shared session server: read-only checks ---------------------------------------------


def test_models_check_reads_the_served_name_and_window(vllm_server: VllmServer,
                                                       tmp_path: Path) -> None:
    models = results(load(vllm_server, tmp_path, checks="[models]"))["models"]
    assert models.outcome is Outcome.OK, models.message
    assert models.details["served_models"] == ["tiny-llama"]
    assert models.details["model"] == "tiny-llama"
    assert models.details["max_model_len"] == 256


@pytest.mark.parametrize(("extra", "outcome", "words"), [
    ("min_context: 1024", Outcome.CONTEXT_TOO_SMALL, "max_model_len 256 is below min_context 1024"),
    ("model: no-such-model", Outcome.MODEL_MISSING, 'expected model "no-such-model"'),
    ("model: tiny-llama, min_context: 256", Outcome.OK, "serving tiny-llama"),
], ids=["window-too-small", "unknown-model", "expected-model-fits"])
def test_models_check_judges_model_and_window(vllm_server: VllmServer, tmp_path: Path,
                                              extra: str, outcome: Outcome, words: str) -> None:
    models = results(load(vllm_server, tmp_path, checks="[models]", extra=extra))["models"]
    assert models.outcome is outcome, models.message
    assert words in models.message


def test_health_and_vllm_metrics_on_an_idle_server(vllm_server: VllmServer,
                                                   tmp_path: Path) -> None:
    found = results(load(vllm_server, tmp_path))
    assert found["health"].outcome is Outcome.OK and found["health"].http_status == 200
    metrics = found["vllm_metrics"]
    assert metrics.outcome is Outcome.OK, metrics.message
    assert metrics.details["models"] == ["tiny-llama"]
    assert metrics.details["engines"] == 1
    assert metrics.details["waiting"] == 0 and metrics.details["running"] == 0
    assert metrics.details["kv_cache_usage"] is not None
    assert 0 <= metrics.details["kv_cache_usage"] <= 1
    assert metrics.details["generation_tokens_total"] >= 0


async def _chat(client: httpx.AsyncClient, server: VllmServer, max_tokens: int) -> int:
    body = {"model": server.served_model, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True,  # every request generates exactly max_tokens: a steady load
            "messages": [{"role": "user", "content": "hello"}]}
    answer = await client.post(f"{server.base_url}/v1/chat/completions", json=body)
    return answer.status_code


async def _until(what: str, condition: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s", pytrace=False)
        await asyncio.sleep(0.05)


def _sample(text: str, name: str, **labels: str) -> float | None:
    """One sample of the daemon's /metrics page, by name and exact labels."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def _running_daemon(config: Config) -> tuple[Daemon, asyncio.Event, asyncio.Task[None]]:
    daemon = Daemon(config, PLUGINS, env={})
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop, install_signals=False))
    await daemon.ready.wait()
    return daemon, stop, task


def test_queue_depth_under_load_appears_on_the_daemons_metrics(vllm_server: VllmServer,
                                                              tmp_path: Path) -> None:
    config = load(vllm_server, tmp_path, checks="[vllm_metrics]")
    (endpoint,) = config.endpoints
    requests = 12  # three times --max-num-seqs: eight wait while four run

    async def main() -> tuple[str, ProbeResult, list[int]]:
        daemon, stop, task = await _running_daemon(config)
        try:
            assert daemon.prober is not None
            prober = daemon.prober
            async with httpx.AsyncClient(timeout=120) as client:
                load_task = asyncio.gather(*(_chat(client, vllm_server, 200)
                                             for _ in range(requests)))
                seen: list[ProbeResult] = []

                async def queued() -> bool:
                    seen.append(await prober.run_one(job_of(endpoint), "vllm_metrics"))
                    return seen[-1].ok and seen[-1].details["waiting"] > 0

                await _until("the scrape sees requests waiting", queued, 60)
                page = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
                statuses = await load_task
                after = await prober.run_one(job_of(endpoint), "vllm_metrics")
            return page, after, statuses
        finally:
            stop.set()
            await task

    page, after, statuses = asyncio.run(main())
    assert statuses == [200] * requests
    waiting = _sample(page, "runpod_probe_vllm_requests_waiting", endpoint="vllm")
    running = _sample(page, "runpod_probe_vllm_requests_running", endpoint="vllm")
    assert waiting is not None and 0 < waiting <= requests - 4, page
    assert running == 4  # --max-num-seqs
    kv = _sample(page, "runpod_probe_vllm_kv_cache_usage_ratio", endpoint="vllm")
    assert kv is not None and 0 < kv <= 1
    assert _sample(page, "runpod_probe_endpoint_up", endpoint="vllm", kind="openai") == 1
    # The queue drained and every token was counted: a positive rate, no stuck streak.
    assert after.ok and after.details["waiting"] == 0
    assert after.details["generation_tokens_per_s"] > 0
    assert after.details["stuck_streak"] == 0


# --- governed prompts through the chat check -------------------------------------------------

PROMPTS = """prompts:
  - {name: hello, prompt: "hello", expect: {regex: "\\\\S"}, cross: integration tier,
     max_tokens: 8, seed: 7, kinds: [openai]}
  - {name: too-long, prompt: "PROMPT_OVER_WINDOW", expect: {regex: "\\\\S"}, cross: integration
     tier, max_tokens: 8, kinds: [openai]}
"""


def _prompts() -> str:
    # ~400 tokens: over the 256-token window, under vLLM's character pre-check (about 11
    # characters per allowed token), so the 400 comes from the tokenized length.
    return PROMPTS.replace("PROMPT_OVER_WINDOW", "hello " * 400)


def _ttft_histogram(server: VllmServer) -> tuple[float, float]:
    """(sum, count) of vLLM's own TTFT histogram, summed over its series."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == TTFT + "_sum":
                total += sample.value
            elif sample.name == TTFT + "_count":
                count += sample.value
    return total, count


def test_governed_prompt_streams_with_ttft_and_usage_close_to_vllms_own(
        vllm_server: VllmServer, tmp_path: Path) -> None:
    config = load(vllm_server, tmp_path, checks="[models]", prompts=_prompts())
    job = next(j for j in plan(config) if j.checks == ("prompt:hello",))
    before = _ttft_histogram(vllm_server)

    async def run() -> ProbeResult:
        async with make_client(4) as client:
            prober = Prober(client, fleet_state(config), PLUGINS.resolve, 4,
                            config.scheduler.max_body_bytes, env={})
            (result,) = await prober.run_job(job)
            return result

    result = asyncio.run(run())
    after = _ttft_histogram(vllm_server)
    assert result.outcome is Outcome.OK, result.message
    details = result.details
    assert details["streamed"] is True and details["answer"].strip()
    usage = details["usage"]
    assert usage["prompt_tokens"] > 0 and 1 <= usage["completion_tokens"] <= 8
    assert after[1] - before[1] == 1, "exactly one request reached the engine"
    vllm_ttft = after[0] - before[0]
    probe_ttft = details["ttft_s"]
    assert probe_ttft is not None and probe_ttft <= details["total_s"]
    # The probe's clock starts before the request is sent and stops at the first *content*
    # token it reads; vLLM's starts at arrival and stops at the first token generated.
    assert vllm_ttft - 0.05 <= probe_ttft <= vllm_ttft + 1.0, (probe_ttft, vllm_ttft)


def test_prompt_over_the_window_is_context_exceeded(vllm_server: VllmServer,
                                                    tmp_path: Path) -> None:
    config = load(vllm_server, tmp_path, checks="[models]", prompts=_prompts())
    found = results(config)
    too_long = found["prompt:too-long"]
    assert too_long.outcome is Outcome.CONTEXT_EXCEEDED, too_long.message
    assert too_long.http_status == 400
    assert "maximum context length is 256" in too_long.message
    assert found["models"].ok  # the server itself is fine


# --- throwaway servers: the engine dies ------------------------------------------------------


def _kill_engine_and_watch(server: VllmServer, tmp_path: Path, final: Outcome,
                           checks: tuple[str, ...] = ("health",),
                           ) -> tuple[list[Outcome], dict[str, ProbeResult], str]:
    """Run the daemon against ``server``, kill its EngineCore, and run the endpoint's checks
    round after round until every one of ``checks`` gives ``final`` (and then for as many
    rounds as the verdict needs to call the endpoint down); return the health
    outcomes seen, the last round of results and the daemon's /metrics page."""
    # The probe's vantage is a reference of its own that stays up. Without one, the only
    # vantage is the provider's host, which is the server killed here: its death then reads
    # as "the probe is offline" and the endpoint goes unknown instead of down (a known
    # limit of a one-host vantage, docs/configuration.md), racing the outcomes this test is
    # about.
    reference = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=reference.serve_forever, daemon=True).start()
    try:
        return _watch(server, tmp_path, final, checks,
                      f"http://127.0.0.1:{reference.server_address[1]}/")
    finally:
        reference.shutdown()
        reference.server_close()


def _watch(server: VllmServer, tmp_path: Path, final: Outcome, checks: tuple[str, ...],
           reference_url: str) -> tuple[list[Outcome], dict[str, ProbeResult], str]:
    config = parse_config(config_text(server, tmp_path)
                          + f'vantage: {{reference_urls: ["{reference_url}"]}}\n', env={})
    (job,) = plan(config)

    async def main() -> tuple[list[Outcome], dict[str, ProbeResult], str]:
        daemon, stop, task = await _running_daemon(config)
        try:
            assert daemon.prober is not None
            prober = daemon.prober
            first = {r.check: r for r in await prober.run_job(job)}
            assert all(r.ok for r in first.values()), {c: r.message for c, r in first.items()}
            server.kill_engine_core()
            seen: list[Outcome] = []
            latest: dict[str, ProbeResult] = {}

            async def reached() -> bool:
                latest.clear()
                latest.update({r.check: r for r in await prober.run_job(job)})
                seen.append(latest["health"].outcome)
                return all(latest[check].outcome is final for check in checks)

            await _until(f"{', '.join(checks)} give {final}", reached, 60)
            # The verdict has hysteresis: down after ``down_after`` failing rounds in a row.
            for _ in range(Hysteresis.of(config).down_after):
                await reached()
            page = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
            return seen, dict(latest), page
        finally:
            stop.set()
            await task

    return asyncio.run(main())


@pytest.mark.vllm_throwaway(keep_alive_on_engine_death=True)
def test_dead_engine_with_keep_alive_is_engine_dead_and_not_up(
        start_vllm_server: StartVllmServer, tmp_path: Path) -> None:
    server = start_vllm_server(keep_alive_on_engine_death=True)
    seen, latest, page = _kill_engine_and_watch(server, tmp_path, Outcome.ENGINE_DEAD)
    assert set(seen) <= {Outcome.OK, Outcome.ENGINE_DEAD}, seen
    assert latest["health"].http_status == 503
    # /v1/models is static data in the API process: still 200, still "ok".
    assert latest["models"].outcome is Outcome.OK and latest["models"].http_status == 200
    assert _sample(page, "runpod_probe_up", endpoint="vllm", check="models") == 1
    assert _sample(page, "runpod_probe_outcome", endpoint="vllm", check="health",
                   outcome="engine_dead") == 1
    assert _sample(page, "runpod_probe_endpoint_up", endpoint="vllm", kind="openai") == 0
    assert server.is_running()
    rows = _stored_health_outcomes(tmp_path)
    assert rows[-1] == "engine_dead"


@pytest.mark.vllm_throwaway(keep_alive_on_engine_death=False)
def test_dead_engine_without_keep_alive_goes_to_connect_error(
        start_vllm_server: StartVllmServer, tmp_path: Path) -> None:
    server = start_vllm_server(keep_alive_on_engine_death=False)
    seen, latest, page = _kill_engine_and_watch(server, tmp_path, Outcome.CONNECT_ERROR,
                                                ("models", "health", "vllm_metrics"))
    # For a few seconds /health answers 503 before the server exits; never "ok" again after
    # the first failure.
    assert set(seen) <= {Outcome.OK, Outcome.ENGINE_DEAD, Outcome.CONNECT_ERROR}, seen
    failed_at = next(i for i, o in enumerate(seen) if o is not Outcome.OK)
    assert Outcome.OK not in seen[failed_at:], seen
    assert latest["models"].outcome is Outcome.CONNECT_ERROR
    assert latest["vllm_metrics"].outcome is Outcome.CONNECT_ERROR
    assert _sample(page, "runpod_probe_endpoint_up", endpoint="vllm", kind="openai") == 0
    assert _sample(page, "runpod_probe_vllm_requests_waiting", endpoint="vllm") is None


def _stored_health_outcomes(tmp_path: Path) -> list[str]:
    # The daemon has stopped, so its store wrote every row before closing.
    with sqlite3.connect(tmp_path / "probe.db") as db:
        rows = db.execute("SELECT outcome FROM results WHERE check_name = 'health' "
                          "ORDER BY id").fetchall()
    return [str(row[0]) for row in rows]
