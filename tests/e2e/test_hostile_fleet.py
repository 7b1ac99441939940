"""Issue 10's hostile-fleet findings, each against the simulator's hostile behaviours: one
truth per endpoint (no pass on evidence that needs time, degraded answers, restarts that
neither forget nor repeat an episode), and nothing leaked, looped or lost."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import ledger_rows, run_daemon, scrape, until
from helpers import parse_config
from simconfig import header, pods, write

from probe.app import PLUGINS
from probe.daemon import Daemon
from probe.simulator import Fleet, OpenAISpec, PodSpec, ServerlessSpec, Simulator
from probe.sweep import sweep

KEY = "sim-key-hostile-0000"
PROVIDER_KEY = "provider-own-key-0000"  # a provider's own key: never RunPod's account key
CANARY = "canary-4f9e1d7a2b6c8e0d3a5f"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def serverless_config(sim: Simulator, tmp_path: Path, *names: str) -> Path:
    rows = "".join(f"  - {{name: {n}, kind: serverless, endpoint_id: {n}}}\n" for n in names)
    return write(tmp_path / "c.yaml", header(sim, tmp_path, interval="10s", timeout="2s")
                 + "endpoints:\n" + rows)


# 1. gate and once never pass a queue with jobs waiting and nobody serving them ---------------
@pytest.mark.parametrize("behaviour", ["scaled_to_zero", "legacy_stalled"])
def test_gate_and_once_fail_a_queue_nobody_serves(tmp_path: Path, sim_env: dict[str, str],
                                                  behaviour: str) -> None:
    fleet = Fleet()
    fleet.add_serverless("queued", ServerlessSpec(behaviour))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        config = serverless_config(sim, tmp_path, "queued")
        once = run(sim_env, "once", "--config", str(config), "--json")
        gate = run(sim_env, "gate", "queued", "--config", str(config), "--timeout", "3s",
                   "--poll", "200ms", "--json")
    assert once.returncode == 1, once.stdout
    (reading,) = json.loads(once.stdout)
    assert reading["outcome"] == "unknown" and not reading["ok"]
    assert "not judged yet (1 of 3 readings) — not a pass" in reading["message"]
    assert gate.returncode == 1, gate.stdout + gate.stderr
    report = json.loads(gate.stdout)
    assert report["passed"] is False and report["rounds"] >= 3, "it kept observing"
    assert report["results"][0]["outcome"] in ("no_workers", "queue_stalled"), "confirmed"


def test_gate_passes_a_queue_that_is_served(tmp_path: Path, sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_serverless("served", ServerlessSpec("healthy"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        gate = run(sim_env, "gate", "served", "--config",
                   str(serverless_config(sim, tmp_path, "served")), "--timeout", "5s")
    assert gate.returncode == 0, gate.stdout + gate.stderr


# 2. a reachable endpoint whose governed answers fail is degraded, never up -------------------
PROMPT = ("prompts:\n  - {name: arith, prompt: \"What is 2+2? Answer with the number only.\", "
          "expect: {regex: '^\\s*4\\s*$'}, cross: test, interval: 300ms, max_tokens: 16, kinds: [pod, openai]}\n")


@pytest.mark.parametrize(("spec", "outcome"), [
    (OpenAISpec("chat_failing"), "http_5xx"),
    (PodSpec("wrong_answer"), "expectation_failed"),
    (PodSpec("empty_answer"), "empty_answer"),
    (PodSpec("reasoning_only"), "empty_answer"),
    (PodSpec("cut_stream"), "stream_broken"),
], ids=["openai-chat-500", "wrong", "empty", "reasoning-only", "cut"])
def test_failing_answers_degrade_the_endpoint(tmp_path: Path, sim_env: dict[str, str],
                                              spec: Any, outcome: str) -> None:
    fleet = Fleet()
    if isinstance(spec, OpenAISpec):
        fleet.add_openai("bad", replace(spec, api_key=PROVIDER_KEY))
    else:
        fleet.add_pod("bad", spec)
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        if isinstance(spec, OpenAISpec):
            row = (f'endpoints:\n  - {{name: bad, kind: openai, base_url: '
                   f'"{sim.openai_base("bad")}", api_key_env: PROVIDER_KEY}}\n')
        else:
            row = pods("bad bad checks: [models]")
        config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="500ms", timeout="400ms")
                       + row + PROMPT + "ledger: {down_after: 2, up_after: 2}\n")

        async def scenario(daemon: Daemon) -> str:
            verdict = daemon.state.verdict("bad")
            await until(lambda: verdict is not None and verdict.state == "degraded",
                        what="the degraded verdict")
            return await scrape(daemon)

        text = run_daemon(config, {**sim_env, "PROVIDER_KEY": PROVIDER_KEY}, scenario)
    assert 'runpod_probe_endpoint_state{endpoint="bad",state="degraded"} 1.0' in text
    assert 'runpod_probe_endpoint_up{endpoint="bad",kind=' in text
    assert f'runpod_probe_endpoint_cause{{check="prompt:arith",endpoint="bad",outcome="{outcome}",' \
           'state="degraded"} 1.0' in text
    events = [e for n, e in ledger_rows(tmp_path / "probe.db") if n == "bad"]
    assert "degraded" in events and "down" not in events, events


# 3. a stuck engine is neither forgotten nor re-announced by a restart ------------------------
def test_a_restart_keeps_the_stuck_engine_episode(tmp_path: Path,
                                                   sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_pod("hung", PodSpec("engine_stuck"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="500ms", timeout="400ms")
                       + pods("hung hung checks: [models, health, vllm_metrics], stuck_after: 2")
                       + "ledger: {down_after: 2, up_after: 2}\n")

        async def until_down(daemon: Daemon) -> None:
            await until(lambda: ("hung", "down") in ledger_rows(tmp_path / "probe.db"),
                        what="the down entry")

        async def after_restart(daemon: Daemon) -> None:
            verdict = daemon.state.verdict("hung")
            assert verdict is not None and verdict.state == "down", "restored, not unknown"

            def streak() -> int:  # the stored result's: the state keeps no details
                conn = sqlite3.connect(tmp_path / "probe.db", timeout=5)
                try:
                    row = conn.execute(
                        "SELECT details FROM results WHERE endpoint = 'hung' AND check_name = "
                        "'vllm_metrics' ORDER BY id DESC LIMIT 1").fetchone()
                finally:
                    conn.close()
                return int(json.loads(row[0]).get("stuck_streak", 0)) if row else 0
            await until(lambda: streak() >= 5, what="more stuck scrapes after the restart")
            assert verdict.state == "down"

        run_daemon(config, sim_env, until_down)
        run_daemon(config, sim_env, after_restart)
    events = [e for n, e in ledger_rows(tmp_path / "probe.db") if n == "hung"]
    assert events == ["appeared", "down"], "no recovered/down pair across the restart"


def test_an_answer_the_engine_completed_means_it_is_not_stuck(
        tmp_path: Path, sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_pod("busy", PodSpec("static_metrics"))  # /metrics frozen with 5 waiting
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="500ms", timeout="400ms")
                       + pods("busy busy checks: [models, health, vllm_metrics], stuck_after: 2")
                       + PROMPT.replace("interval: 300ms", "interval: 100ms"))

        async def scenario(daemon: Daemon) -> list[str]:
            seen: list[str] = []
            assert daemon.prober is not None
            daemon.prober.observers.append(
                lambda r, _row: seen.append(str(r.outcome)) if r.check == "vllm_metrics"
                else None)
            await until(lambda: len(seen) >= 8, what="eight scrapes")
            return seen

        seen = run_daemon(config, sim_env, scenario)
    assert "ok" in seen, "completed answers showed progress the frozen page did not"
    assert "engine_stuck" not in seen, seen


# 6. a secret the server echoes back is nowhere the daemon writes or prints -------------------
def test_an_echoed_secret_is_absent_from_every_output(tmp_path: Path, monkeypatch: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("POD_KEY", CANARY)
    env = {**dict(__import__("os").environ), "RUNPOD_API_KEY": KEY, "POD_KEY": CANARY}
    caplog.set_level(logging.DEBUG)
    fleet = Fleet()
    fleet.add_pod("echo", PodSpec("echo_auth_model"))
    fleet.add_pod("echo-error", PodSpec("echo_auth"))
    learning = tmp_path / "LEARNING.md"
    learning.write_text("| Date | Pattern | Source |\n|---|---|---|\n")
    with Simulator(fleet, api_key=None) as sim:
        config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="500ms", timeout="400ms")
                       + pods("echo echo api_key_env: POD_KEY, checks: [models, health]",
                              "echo-error echo-error api_key_env: POD_KEY, checks: [models]")
                       + PROMPT + f'learning: {{path: "{learning}"}}\n'
                       + "ledger: {down_after: 1, up_after: 1}\n")

        async def scenario(daemon: Daemon) -> str:
            await until(lambda: daemon.state.latest("echo", "prompt:arith") is not None
                        and ("echo-error", "down") in ledger_rows(tmp_path / "probe.db"),
                        what="the echoes probed and learned")
            await asyncio.sleep(0.5)  # LEARNING.md is appended from the writer thread
            return await scrape(daemon)

        text = run_daemon(config, env, scenario)
        outputs = [text, caplog.text, learning.read_text()]
        for args in (["once"], ["once", "--json"], ["gate", "echo", "--timeout", "1s"],
                     ["gate", "echo", "--json", "--timeout", "1s"], ["ledger", "list"],
                     ["ledger", "list", "--json"]):
            done = run(env, *args, "--config", str(config))
            outputs += [done.stdout, done.stderr]
    assert 'model="Bearer ***"' in text, "the echo reached the daemon, scrubbed"
    for output in outputs:
        assert CANARY not in output
    conn = sqlite3.connect(tmp_path / "probe.db")
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in conn.execute(f"SELECT * FROM {table}"):
            assert CANARY not in json.dumps(row, default=str), table
    conn.close()
    for path in tmp_path.iterdir():
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path.name


# 7. a round trip whose status poll fails cancels its job --------------------------------------
def test_a_round_trip_that_cannot_follow_its_job_cancels_it(tmp_path: Path,
                                                             sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_serverless("flaky", ServerlessSpec("status_failing"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        config = parse_config(header(sim, tmp_path, interval="10s", timeout="2s")
                              + "endpoints:\n  - {name: flaky, kind: serverless, endpoint_id: "
                              "flaky, roundtrip: {interval: 10s, input: {prompt: '2+2'}, "
                              "wait: 1s, deadline: 5s}}\n", env=sim_env)
        results = asyncio.run(sweep(config, PLUGINS, "flaky", env=sim_env))
        cancels = [r.path for r in sim.requests_seen if "/cancel/" in r.path]
    roundtrip = next(r for r in results if r.check == "roundtrip")
    assert roundtrip.details["cancel"] == "cancelled", roundtrip.message
    assert cancels == [f"/v2/flaky/cancel/{roundtrip.details['job_id']}"]


# 10. a misbehaving server's connection is never reused for a neighbour's check -------------
def test_a_misbehaving_servers_neighbours_stay_ok(tmp_path: Path,
                                                  sim_env: dict[str, str]) -> None:
    fleet = Fleet()
    fleet.add_pod("rude", PodSpec("answers_before_body"))
    for n in range(4):
        fleet.add_pod(f"good{n}", PodSpec())
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as sim:
        rows = ["rude rude checks: [models, health]"] + [
            f"good{n} good{n} checks: [models, health]" for n in range(4)]
        config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="500ms", timeout="400ms")
                       + pods(*rows) + PROMPT.replace("interval: 300ms", "interval: 200ms"))

        async def scenario(daemon: Daemon) -> dict[str, list[str]]:
            await until(lambda: sum(s.outcomes.total() for s in
                                    daemon.state.snapshot().checks.values()) >= 200,
                        timeout_s=30, what="200 results over the shared host")
            return {f"{e}/{c}": sorted(s.outcomes) for (e, c), s in
                    daemon.state.snapshot().checks.items()}

        outcomes = run_daemon(config, sim_env, scenario)
    assert outcomes["rude/prompt:arith"] == ["http_5xx"]
    neighbours = {k: v for k, v in outcomes.items() if not k.startswith("rude/")}
    assert neighbours and all(v == ["ok"] for v in neighbours.values()), neighbours
    assert all(v == ["ok"] for k, v in outcomes.items() if k in ("rude/models", "rude/health"))
