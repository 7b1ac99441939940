"""Serverless endpoints end to end: the daemon's prober and scheduler against the simulated
RunPod queue API over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import run_daemon, scrape, until
from helpers import fleet_state, load_config, plan
from simconfig import header, write

from probe.app import PLUGINS
from probe.config import Config
from probe.daemon import Daemon
from probe.net import make_client
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober
from probe.serverless.metrics import ServerlessMetrics
from probe.simulator import Fleet, ServerlessSpec, Simulator
from probe.store import latest_results

KEY = "sim-key-5b2f0c1e9a7d4c3b"
ENV = {"RUNPOD_API_KEY": KEY}


def serverless_config(sim: Simulator, tmp_path: Path, *rows: str, interval: str = "1s",
                      timeout: str = "800ms") -> Config:
    """Each row: 'name endpoint_id [extra yaml flow keys]'."""
    lines = ["endpoints:"]
    for row in rows:
        name, endpoint_id, *extra = row.split(" ", 2)
        more = f", {extra[0]}" if extra else ""
        lines.append(f"  - {{name: {name}, kind: serverless, endpoint_id: {endpoint_id}{more}}}")
    text = header(sim, tmp_path, interval=interval, timeout=timeout) + "\n".join(lines) + "\n"
    return load_config(write(tmp_path / "c.yaml", text), ENV)


def one_fleet(endpoint_id: str, spec: ServerlessSpec) -> Fleet:
    fleet = Fleet()
    fleet.add_serverless(endpoint_id, spec)
    return fleet


async def run_checks(prober: Prober, config: Config, job_id: str, times: int,
                     between: Callable[[], Any] | None = None) -> list[ProbeResult]:
    """Run one planned job ``times`` times in a row, as the scheduler would."""
    job = next(j for j in plan(config) if j.id == job_id)
    results: list[ProbeResult] = []
    for _ in range(times):
        results += await prober.run_job(job)
        if between is not None:
            await between()
    return results


def probe_n(config: Config, job_id: str, times: int, between: Callable[[], Any] | None = None,
            ) -> tuple[list[ProbeResult], ServerlessMetrics]:
    async def go() -> tuple[list[ProbeResult], ServerlessMetrics]:
        state = fleet_state(config)
        async with make_client(8) as client:
            prober = Prober(client, state, PLUGINS.resolve, 8, 1 << 20, None, ENV)
            stats = ServerlessMetrics()
            stats.on_plan(config, plan(config))
            prober.observers.append(stats.observe)
            return await run_checks(prober, config, job_id, times, between), stats

    return asyncio.run(go())


CONDITIONS = [
    ("incident", ServerlessSpec("incident"), ["crash_looping"] * 3),
    # jobs waiting and nobody serving them: not judged yet is not a pass, then confirmed
    ("scaled-to-zero", ServerlessSpec("scaled_to_zero"), ["unknown", "unknown", "no_workers"]),
    ("throttled", ServerlessSpec("throttled"), ["throttled"] * 3),
    ("stalled-queue", ServerlessSpec("legacy_stalled"),
     ["unknown", "unknown", "queue_stalled"]),
    ("queued-while-idle", ServerlessSpec("queued_while_idle"),
     ["unknown", "unknown", "queued_while_idle"]),
    ("healthy", ServerlessSpec("healthy"), ["ok"] * 3),
    ("cold-start-idle-endpoint", ServerlessSpec("cold_start"), ["ok"] * 3),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in CONDITIONS],
                         ids=[c[0] for c in CONDITIONS])
def test_queue_conditions_over_three_checks(tmp_path: Path, spec: ServerlessSpec,
                                            expected: list[str]) -> None:
    with Simulator(one_fleet("ep", spec), api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "ep ep")
        results, _ = probe_n(config, "ep/checks", 3)
    assert [str(r.outcome) for r in results] == expected
    assert all(r.check == "queue" for r in results)


def test_jobs_failing_from_counter_deltas(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("jobs_failing")), api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "ep ep")

        async def traffic() -> None:  # someone else's jobs, failing on the worker
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as client:
                for _ in range(2):
                    await client.post(f"{sim.api_base}/ep/run", json={"input": {"prompt": "hi"}})
            await asyncio.sleep(0.3)

        results, _ = probe_n(config, "ep/checks", 3, traffic)
    assert [str(r.outcome) for r in results] == ["ok", "ok", "jobs_failing"]
    assert results[2].details["deltas"]["failed"] == 2
    assert "worker logs" in results[2].message


def test_initializing_past_the_budget(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("initializing_forever")), api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "ep ep initializing_budget: 500ms")
        results, _ = probe_n(config, "ep/checks", 2, lambda: asyncio.sleep(0.6))
    assert [str(r.outcome) for r in results] == ["ok", "initializing_too_long"]


@pytest.mark.parametrize(("behaviour", "status", "reason"),
                         [("rate_limited", 429, "rate_limited"), ("api_error", 500, "http_5xx")],
                         ids=["429", "500"])
def test_control_plane_failure_is_unknown(tmp_path: Path, behaviour: str, status: int,
                                          reason: str) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec(behaviour)), api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "ep ep")
        results, _ = probe_n(config, "ep/checks", 1)
    assert results[0].outcome is Outcome.UNKNOWN
    assert (results[0].http_status, results[0].details["reason"]) == (status, reason)


def test_wrong_key_is_unauthorized_not_unknown(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec()), api_key="another-key-123456") as sim:
        config = serverless_config(sim, tmp_path, "ep ep")
        results, _ = probe_n(config, "ep/checks", 1)
    assert results[0].outcome is Outcome.UNAUTHORIZED


def test_daemon_incident_rate_limit_and_metrics(tmp_path: Path) -> None:
    """The running daemon: the seeded incident is crash_looping, a 429 endpoint stays
    unknown (never up, never down) and is not asked again before its Retry-After."""
    fleet = Fleet()
    fleet.add_serverless("vllm-incident", ServerlessSpec("incident"))
    fleet.add_serverless("limited", ServerlessSpec("rate_limited"))  # Retry-After: 2
    with Simulator(fleet, api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "incident vllm-incident",
                                   "limited limited", interval="500ms", timeout="400ms")

        async def scenario(daemon: Daemon) -> str:
            await until(lambda: sum(daemon.state.snapshot().checks[("limited", "queue")]
                                    .outcomes.values()) >= 4, what="four queue checks")
            return await scrape(daemon)

        text = run_daemon(config, ENV, scenario)
        asked = [r for r in sim.requests_seen if r.path == "/v2/limited/health"]
    assert 'runpod_probe_outcome{check="queue",endpoint="incident",outcome="crash_looping"} 1.0' \
        in text
    assert 'runpod_probe_serverless_jobs{endpoint="incident",state="inQueue"} 7.0' in text
    assert 'runpod_probe_serverless_workers{endpoint="incident",state="unhealthy"} 1.0' in text
    assert 'runpod_probe_serverless_workers{endpoint="incident",state="running"} 0.0' in text
    assert 'runpod_probe_outcome{check="queue",endpoint="limited",outcome="unknown"} 1.0' in text
    assert 'runpod_probe_up{check="queue",endpoint="limited"} 0.0' in text
    rows = [r for r in latest_results(tmp_path / "probe.db") if r["endpoint"] == "limited"]
    assert rows and all(r["outcome"] == "unknown" for r in rows)
    # Four or more results at 500 ms, yet Retry-After: 2 s allows at most two requests.
    assert 1 <= len(asked) <= 2


def roundtrip_config(sim: Simulator, tmp_path: Path, endpoint_id: str, rt: str) -> Config:
    return serverless_config(sim, tmp_path, f"ep {endpoint_id} timeout: 2s, roundtrip: {rt}",
                             interval="10s", timeout="2s")


def test_cold_then_warm_round_trip(tmp_path: Path) -> None:
    spec = ServerlessSpec("cold_start", cold_start_s=1.0)
    with Simulator(one_fleet("ep", spec), api_key=KEY) as sim:
        config = roundtrip_config(sim, tmp_path, "ep",
                                  "{input: {prompt: '2+2'}, wait: 1s, deadline: 5s}")
        results, state = probe_n(config, "ep/roundtrip", 2)
    cold, warm = results
    assert (cold.outcome, warm.outcome) == (Outcome.OK, Outcome.OK)
    assert (cold.details["start"], warm.details["start"]) == ("cold", "warm")
    assert cold.details["delay_s"] >= 1.0 > warm.details["delay_s"]  # the simulator's delayTime
    histograms = state.histograms()
    assert {(t, s) for t, _, s in histograms} == {(t, s) for t in ("delay_s", "execution_s",
                                                                  "roundtrip_s")
                                                  for s in ("cold", "warm")}


def test_slow_queue_is_polled_to_completion(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("slow_queue", complete_after_s=1.5)),
                   api_key=KEY) as sim:
        config = roundtrip_config(sim, tmp_path, "ep",
                                  "{input: {prompt: '2+2'}, wait: 1s, deadline: 5s}")
        results, _ = probe_n(config, "ep/roundtrip", 1)
        seen = [r.path for r in sim.requests_seen]
    result = results[0]
    assert result.outcome is Outcome.OK and result.details["polls"] >= 1
    assert result.details["job_status"] == "COMPLETED"
    assert any(p.startswith("/v2/ep/runsync?wait=1000") for p in seen)
    assert any(p.startswith("/v2/ep/status/") for p in seen)
    assert not any("/cancel/" in p for p in seen)


def test_stuck_job_is_cancelled_at_the_deadline(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("incident")), api_key=KEY) as sim:
        config = roundtrip_config(sim, tmp_path, "ep",
                                  "{input: {prompt: '2+2'}, wait: 1s, deadline: 1500ms}")
        results, _ = probe_n(config, "ep/roundtrip", 1)
        seen = [(r.method, r.path) for r in sim.requests_seen]
    result = results[0]
    assert result.outcome is Outcome.JOB_FAILED
    assert result.details["start"] == "cold" and result.details["cancelled"] is True
    assert ("POST", f"/v2/ep/cancel/{result.details['job_id']}") in seen


def test_failing_job_round_trip_is_job_failed_with_the_worker_error(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("jobs_failing")), api_key=KEY) as sim:
        config = roundtrip_config(sim, tmp_path, "ep",
                                  "{input: {prompt: '2+2'}, wait: 2s, deadline: 3s}")
        results, _ = probe_n(config, "ep/roundtrip", 1)
    assert results[0].outcome is Outcome.JOB_FAILED
    assert "CUDA out of memory" in results[0].details["error"]


def test_openai_round_trip_through_the_worker_route(tmp_path: Path) -> None:
    with Simulator(one_fleet("ep", ServerlessSpec("healthy")), api_key=KEY) as sim:
        config = serverless_config(
            sim, tmp_path, "ep ep timeout: 2s, model: Qwen/Qwen2.5-7B-Instruct, "
            "roundtrip: {openai: true, wait: 1s, deadline: 3s}", interval="10s", timeout="2s")
        results, _ = probe_n(config, "ep/roundtrip", 1)
    assert results[0].outcome is Outcome.OK and results[0].details["answer"] == "4"


def test_an_unknown_serverless_endpoint_is_not_described_as_a_pod(tmp_path: Path) -> None:
    """RunPod's API answers 404 for an endpoint id it does not know (a typo, a deleted
    endpoint): the message says so, not "pod stopped or destroyed" (there is no pod)."""
    from probe.sweep import sweep

    fleet = Fleet()
    fleet.add_serverless("live", ServerlessSpec())
    with Simulator(fleet, api_key=KEY) as sim:
        config = serverless_config(sim, tmp_path, "gone deleted-endpoint-id")
        results = asyncio.run(sweep(config, PLUGINS, env=ENV))
    [result] = results
    assert (result.check, result.outcome, result.http_status) == ("queue", Outcome.HTTP_404, 404)
    assert result.message.startswith(
        "HTTP 404 (not found: RunPod knows no serverless endpoint with this id (wrong or "
        "deleted), or the route is wrong)"), result.message
    assert "pod" not in result.message
