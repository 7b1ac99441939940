"""The daemon end to end: schedule → probe the simulator → SQLite → /metrics; reload; secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import run_daemon, until
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.store import latest_results

CANARY = "canary-7d1f3a9e5b2c4d6f8a0b"
POD_CANARY = "pod-canary-3e8b1d5f7a9c2e4b6d0f"


def probed(daemon: Daemon, *names: str, rounds: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        snap = daemon.state.snapshot()
        return all(sum(s.outcomes.values()) >= rounds
                   for (endpoint, _), s in snap.checks.items() if endpoint in names)

    return check


def test_daemon_probes_stores_and_exports(sim: Any, tmp_path: Path,
                                          sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods(
        "qwen qwen-healthy", "gone deepseek-stopped", "down vllm-down"))

    async def scenario(daemon: Daemon) -> str:
        await until(probed(daemon, "qwen", "gone", "down", rounds=2))
        return (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text

    text = run_daemon(config, sim_env, scenario)
    assert 'runpod_probe_up{check="models",endpoint="qwen"} 1.0' in text
    assert 'runpod_probe_up{check="models",endpoint="gone"} 0.0' in text
    assert 'runpod_probe_outcome{check="models",endpoint="gone",outcome="http_404"} 1.0' in text
    assert 'runpod_probe_outcome{check="models",endpoint="down",outcome="http_502"} 1.0' in text
    assert 'runpod_probe_max_model_len{endpoint="qwen",model="Qwen/Qwen2.5-7B-Instruct"} 32768.0' \
        in text
    assert "runpod_probe_scheduler_lag_seconds_count" in text
    rows = {r["endpoint"]: r for r in latest_results(tmp_path / "probe.db")}
    assert rows["qwen"]["outcome"] == "ok" and rows["gone"]["http_status"] == 404
    assert rows["down"]["outcome"] == "http_502"


def test_secrets_never_reach_db_logs_or_metrics(sim: Any, tmp_path: Path, monkeypatch: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from probe.simulator import Fleet, PodSpec, Simulator

    monkeypatch.setenv("RUNPOD_API_KEY", CANARY)
    monkeypatch.setenv("VLLM_API_KEY", POD_CANARY)  # pods get their own key, echoed back
    caplog.set_level(logging.DEBUG)
    fleet = Fleet.default()
    fleet.add_pod("echo", PodSpec(behaviour="echo_auth"))
    with Simulator(fleet, api_key=CANARY) as canary_sim:
        config = write(tmp_path / "c.yaml", header(canary_sim, tmp_path) + pods(
            "qwen qwen-healthy", "gone deepseek-stopped", "echo echo", "slow slow-pod",
            "garbage garbage-pod"))

        async def scenario(daemon: Daemon) -> str:
            await until(probed(daemon, "qwen", "gone", "echo", "slow", "garbage"))
            return (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text

        text = run_daemon(config, None, scenario)
    echo_rows = [r for r in latest_results(tmp_path / "probe.db") if r["endpoint"] == "echo"]
    assert echo_rows and "***" in echo_rows[0]["message"], "the echoed key was redacted"
    for secret in (CANARY, POD_CANARY):
        assert secret not in text
        assert secret not in caplog.text
        for path in tmp_path.iterdir():
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path.name


def test_reload_refuses_invalid_config_and_applies_valid(sim: Any, tmp_path: Path,
                                                         sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy"))

    async def scenario(daemon: Daemon) -> None:
        await until(probed(daemon, "qwen"))
        config.write_text(header(sim, tmp_path) + pods("qwen qwen-healthy", "x small-ctx",
                                                       "x small-ctx"))
        assert await daemon.reload() is False
        assert daemon.state.daemon.reload_ok is False
        assert [e.name for e in daemon.config.endpoints] == ["qwen"]
        config.write_text(header(sim, tmp_path) + pods("qwen qwen-healthy", "small small-ctx"))
        assert await daemon.reload() is True
        await until(probed(daemon, "small"))
        assert daemon.state.latest("small", "models") is not None

    run_daemon(config, sim_env, scenario)



def test_reload_naming_a_new_secret_variable_says_to_restart(
        sim: Any, tmp_path: Path, sim_env: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The environment is read at start: a reload that needs a variable the service was not
    started with is refused, and the log says a restart picks it up."""
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy"))

    async def scenario(daemon: Daemon) -> None:
        await until(probed(daemon, "qwen"))
        config.write_text(header(sim, tmp_path) + pods(
            "qwen qwen-healthy", "other qwen-healthy api_key_env: NEW_POD_KEY"))
        assert await daemon.reload() is False

    run_daemon(config, sim_env, scenario)
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused == [
        "config reload refused: endpoints[1].api_key_env: environment variable NEW_POD_KEY "
        "is not set",
        "config reload refused: the environment (the unit's env file and credentials) is read "
        "when the service starts: restart it to add a secret"]


def test_each_ledger_entry_is_logged_at_its_severity(
        sim: Any, tmp_path: Path, sim_env: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """What was learned reaches the journal too, one line per entry, as it is written, at the
    level of its severity (issue 24: a pod down was logged at INFO)."""
    caplog.set_level(logging.INFO, logger="probe")
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("gone deepseek-stopped")
                   + "ledger: {down_after: 1}\n")

    async def scenario(daemon: Daemon) -> None:
        await until(lambda: any(r.getMessage().startswith("ledger #2 ")
                                for r in caplog.records), what="the down entry in the log")

    run_daemon(config, sim_env, scenario)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ledger #")]
    assert lines[0] == "ledger #1 info gone: RunPod pod gone (deepseek-stopped) added to the probed fleet"
    assert lines[1].startswith("ledger #2 critical gone: RunPod pod gone (deepseek-stopped) "
                               "down (404)"), lines
    levels = [r.levelname for r in caplog.records if r.getMessage().startswith("ledger #")]
    assert levels[:2] == ["INFO", "ERROR"]
