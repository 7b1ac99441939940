"""`runpod-probe once` and the sweep, against the simulated fleet over real sockets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import parse_config
from simconfig import header, pods, write

from probe.app import PLUGINS
from probe.outcome import Outcome
from probe.sweep import sweep

EXPECTED = [
    ("qwen", "qwen-healthy", "", Outcome.OK),
    ("deepseek", "deepseek-stopped", "", Outcome.HTTP_404),
    ("down", "vllm-down", "", Outcome.HTTP_502),
    ("slow", "slow-pod", "", Outcome.TIMEOUT),
    ("small", "small-ctx", "min_context: 16384", Outcome.CONTEXT_TOO_SMALL),
    ("other", "other-model", "model: Qwen/Qwen2.5-7B-Instruct", Outcome.MODEL_MISSING),
    ("garbage", "garbage-pod", "", Outcome.BAD_RESPONSE),
    ("endless", "endless-pod", "", Outcome.TIMEOUT),
    ("gone", "never-existed", "", Outcome.HTTP_404),
]


def _sweep(sim: Any, tmp_path: Path, env: dict[str, str], *rows: str,
           **header_args: Any) -> dict[str, Any]:
    """The models check's result per endpoint (pods also run health and vllm_metrics)."""
    config = parse_config(header(sim, tmp_path, **header_args) + pods(*rows), env=env)
    return {r.endpoint: r for r in asyncio.run(sweep(config, PLUGINS, env=env)) if r.check == "models"}


@pytest.mark.parametrize(("name", "pod_id", "extra", "outcome"), EXPECTED,
                         ids=[e[0] for e in EXPECTED])
def test_each_simulated_pod_gets_its_outcome(sim: Any, tmp_path: Path, sim_env: dict[str, str],
                                             name: str, pod_id: str, extra: str,
                                             outcome: Outcome) -> None:
    row = f"{name} {pod_id}" + (f" {extra}" if extra else "")
    result = _sweep(sim, tmp_path, sim_env, row)[name]
    assert result.outcome is outcome, result.message
    assert result.url.startswith(sim.base_url)


HOSTILE = [
    ("reset", Outcome.CONNECT_ERROR),
    ("stall", Outcome.TIMEOUT),
    ("huge_body", Outcome.BAD_RESPONSE),
    ("wrong_shape", Outcome.BAD_RESPONSE),
    ("endless_body", Outcome.TIMEOUT),
    ("garbage", Outcome.BAD_RESPONSE),
]


@pytest.mark.parametrize(("behaviour", "outcome"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_pods_are_classified_not_crashes(sim: Any, tmp_path: Path,
                                                 sim_env: dict[str, str], behaviour: str,
                                                 outcome: Outcome) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod(f"h-{behaviour}", PodSpec(behaviour=behaviour))
    results = _sweep(sim, tmp_path, sim_env, f"h h-{behaviour}", tries=2, interval="2s")
    assert results["h"].outcome is outcome, results["h"].message
    assert results["h"].latency_s < 5


def test_stalled_server_does_not_hang_a_sweep(sim: Any, tmp_path: Path,
                                              sim_env: dict[str, str]) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod("st", PodSpec(behaviour="stall"))
    results = _sweep(sim, tmp_path, sim_env, "st st", "ok qwen-healthy", timeout="500ms")
    assert results["st"].outcome is Outcome.TIMEOUT and results["ok"].ok


def test_transient_502_then_recovery_is_a_retried_pass(sim: Any, tmp_path: Path,
                                                       sim_env: dict[str, str]) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod("flaky", PodSpec(behaviour="server_down"))
    config = parse_config(header(sim, tmp_path, interval="3s", tries=3)
                          + pods("flaky flaky checks: [models]"),
                          env=sim_env)

    async def go() -> Any:
        before = sim.request_count
        task = asyncio.create_task(sweep(config, PLUGINS, env=sim_env))
        while sim.request_count == before:  # the first attempt has been answered with a 502
            await asyncio.sleep(0.001)
        sim.fleet.set_pod_behaviour("flaky", "healthy")  # ... the retry sees a healthy pod
        return await task

    (result,) = asyncio.run(go())
    assert result.ok and result.attempts >= 2 and result.retried


def test_wrong_key_is_unauthorized(sim: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from probe.simulator import PodSpec

    sim.fleet.add_pod("locked", PodSpec(api_key="the-pods-own-key"))  # vLLM --api-key
    env = {"RUNPOD_API_KEY": "rk-account-0000", "LOCKED_KEY": "not-the-key"}
    result = _sweep(sim, tmp_path, env, "locked locked api_key_env: LOCKED_KEY")["locked"]
    assert result.outcome is Outcome.UNAUTHORIZED and result.http_status == 401


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_once_json_and_exit_codes(sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    ok = write(tmp_path / "ok.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy"))
    done = run_cli("once", "--config", str(ok), "--json", env=sim_env)
    assert done.returncode == 0, done.stderr
    rows = {row["check"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {"models", "health", "vllm_metrics"}  # a pod's default checks
    assert all(row["outcome"] == "ok" for row in rows.values())
    assert rows["models"]["details"]["max_model_len"] == 32768
    bad = write(tmp_path / "bad.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy",
                                                                     "gone deepseek-stopped"))
    done = run_cli("once", "--config", str(bad), env=sim_env)
    assert done.returncode == 1
    assert "http_404" in done.stdout and "qwen-healthy" not in done.stderr
    only = run_cli("once", "--config", str(bad), "--endpoint", "qwen", env=sim_env)
    assert only.returncode == 0 and "gone" not in only.stdout
