"""Engine liveness and load end to end: the daemon's real code against the simulated fleet
over real sockets (engine_dead and engine_stuck pods, a healthy pod under traffic)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from daemon_harness import run_daemon, scrape, until
from helpers import fleet_state, parse_config, plan
from simconfig import header, pods, write

from probe.app import PLUGINS
from probe.config.model import Config
from probe.daemon import Daemon
from probe.metrics import ProbeCollector, make_registry
from probe.net import make_client
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober
from probe.vllm.metrics import EngineMetrics


def test_daemon_never_reports_a_pod_with_a_dead_engine_up(sim: Any, tmp_path: Path,
                                                         sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods(
        "dead dead-engine", "qwen qwen-healthy"))

    async def scenario(daemon: Daemon) -> str:
        def judged() -> bool:  # up needs up_after rounds of passes; down needs down_after
            dead, qwen = daemon.state.verdict("dead"), daemon.state.verdict("qwen")
            return dead is not None and dead.state == "down" \
                and qwen is not None and qwen.state == "up"
        await until(judged, what="both pods judged")
        return await scrape(daemon)

    text = run_daemon(config, sim_env, scenario)
    assert 'runpod_probe_endpoint_state{endpoint="dead",state="down"} 1.0' in text
    assert 'runpod_probe_endpoint_cause{check="health",endpoint="dead",outcome="engine_dead",' \
           'state="down"} 1.0' in text
    assert 'runpod_probe_up{check="models",endpoint="dead"} 1.0' in text  # /v1/models: 200
    assert 'runpod_probe_outcome{check="health",endpoint="dead",outcome="engine_dead"} 1.0' in text
    assert 'runpod_probe_endpoint_up{endpoint="dead",kind="pod"} 0.0' in text
    assert 'runpod_probe_endpoint_up{endpoint="qwen",kind="pod"} 1.0' in text
    assert 'runpod_probe_vllm_requests_waiting{endpoint="qwen"} 0.0' in text


class Rounds:
    """The daemon's prober, state and metrics registry, driven one round at a time."""

    def __init__(self, config: Config, client: httpx.AsyncClient, env: dict[str, str]) -> None:
        self.state = fleet_state(config)
        self.prober = Prober(client, self.state, PLUGINS.resolve, 8,
                             config.scheduler.max_body_bytes, env=env)
        self.jobs = plan(config)
        self.registry = make_registry(ProbeCollector(self.state))
        # the vLLM feature's collector (its opt-in tokens/s gauge too), fed like the daemon
        engine = EngineMetrics(per_check=True)
        engine.on_plan(config, self.jobs)
        self.prober.observers.append(engine.observe)
        self.registry.register(engine)

    async def run(self) -> dict[tuple[str, str], ProbeResult]:
        batches = await asyncio.gather(*(self.prober.run_job(job) for job in self.jobs))
        return {(r.endpoint, r.check): r for batch in batches for r in batch}

    def gauge(self, name: str, endpoint: str) -> float | None:
        value: float | None = self.registry.get_sample_value(name, {"endpoint": endpoint})
        return value


def test_stuck_engine_passes_health_but_not_vllm_metrics(sim: Any, tmp_path: Path,
                                                        sim_env: dict[str, str]) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod("hung", PodSpec(behaviour="engine_stuck"))
    config = parse_config(header(sim, tmp_path) + pods("hung hung stuck_after: 2"), env=sim_env)

    async def main() -> list[dict[tuple[str, str], ProbeResult]]:
        async with make_client(8) as client:
            rounds = Rounds(config, client, sim_env)
            seen = [await rounds.run() for _ in range(2)]
            assert rounds.gauge("runpod_probe_vllm_requests_waiting", "hung") == 5
            assert rounds.gauge("runpod_probe_vllm_stuck_checks", "hung") == 2
            assert rounds.registry.get_sample_value(
                "runpod_probe_endpoint_up", {"endpoint": "hung", "kind": "pod"}) == 0
            sim.fleet.set_pod_behaviour("hung", "healthy")  # restarted: the queue drains
            seen.append(await rounds.run())
            assert rounds.gauge("runpod_probe_vllm_stuck_checks", "hung") == 0
            return seen

    first, second, recovered = asyncio.run(main())
    assert first[("hung", "health")].ok and second[("hung", "health")].ok  # the known vLLM hang
    assert first[("hung", "vllm_metrics")].outcome is Outcome.UNKNOWN  # not judged yet
    stuck = second[("hung", "vllm_metrics")]
    assert stuck.outcome is Outcome.ENGINE_STUCK, stuck.message
    assert "5 waiting" in stuck.message
    assert recovered[("hung", "vllm_metrics")].ok


def test_token_rate_follows_real_traffic(sim: Any, tmp_path: Path,
                                         sim_env: dict[str, str]) -> None:
    config = parse_config(header(sim, tmp_path) + pods("qwen qwen-healthy checks: [vllm_metrics]"),
                          env=sim_env)
    chat = {"model": "Qwen/Qwen2.5-7B-Instruct", "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is 2+2?"}]}

    async def main() -> tuple[ProbeResult, float | None]:
        async with make_client(8) as client:
            rounds = Rounds(config, client, sim_env)
            await rounds.run()
            for _ in range(3):
                answer = await client.post(f"{sim.pod_url('qwen-healthy')}/v1/chat/completions",
                                           json=chat, headers={"Authorization":
                                                               f"Bearer {sim_env['RUNPOD_API_KEY']}"})
                assert answer.status_code == 200, answer.text
            after = (await rounds.run())[("qwen", "vllm_metrics")]
            return after, rounds.gauge("runpod_probe_vllm_generation_tokens_per_second", "qwen")

    after, exported = asyncio.run(main())
    assert after.ok, after.message
    assert after.details["generation_tokens_per_s"] > 0
    assert exported == after.details["generation_tokens_per_s"]
