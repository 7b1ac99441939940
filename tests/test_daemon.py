"""The daemon as the composition root hands it its plugins: a config built by hand runs every
feature (ledger, prompts), the plan is computed once per apply and shared, and a stop waits
as long as the jobs in flight may take — no longer, and no new check starts after it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from daemon_harness import ledger_rows, until
from helpers import config_of, endpoint

from probe.app import PLUGINS
from probe.config.model import StorageSettings
from probe.daemon import Daemon
from probe.job import Job
from probe.prompts.model import Expectation, Message, Prompt, PromptSection


def hand_made(sim: Any, tmp_path: Path) -> Any:
    """A Config built in code, not parsed: one healthy simulated pod and one prompt."""
    pod = endpoint(name="qwen", pod_id="qwen-healthy", root_url=sim.pod_url("qwen-healthy"),
                   openai_base=sim.pod_url("qwen-healthy") + "/v1", interval_s=0.5,
                   timeout_s=2.0, checks=("models",), api_key_env="RUNPOD_API_KEY")
    prompt = Prompt("arith", (Message("user", "What is 2+2?"),),
                    (Expectation("regex", re.compile(r"^\s*4\s*$")),), "hand-made", 0.5, 16)
    return replace(config_of(pod), storage=StorageSettings(tmp_path / "probe.db"),
                   sections={"prompts": PromptSection((prompt,))})


def test_a_daemon_from_a_hand_made_config_runs_its_ledger_and_prompts(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    config = hand_made(sim, tmp_path)

    async def main() -> str:
        daemon = Daemon(config, PLUGINS, sim_env)
        assert [job.id for job in daemon.jobs] == ["qwen/checks", "qwen/prompt:arith"]
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, install_signals=False))
        await daemon.ready.wait()
        try:
            await until(lambda: ("qwen", "appeared") in ledger_rows(tmp_path / "probe.db"),
                        what="the ledger's entry for the configured endpoint")
            await until(lambda: (state := daemon.state.latest("qwen", "prompt:arith"))
                        is not None and state.ok, what="a passing prompt")
            return (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
        finally:
            stop.set()
            await task

    text = asyncio.run(main())
    assert 'runpod_probe_prompt_pass{endpoint="qwen",prompt="arith"} 1.0' in text
    assert 'runpod_probe_endpoint_state{endpoint="qwen",state="unknown"}' in text \
        or 'runpod_probe_endpoint_state{endpoint="qwen",state="up"}' in text
    conn = sqlite3.connect(tmp_path / "probe.db")
    stored = {row[0] for row in conn.execute("SELECT check_name FROM results")}
    assert {"models", "prompt:arith"} <= stored


def test_the_drain_bound_comes_from_the_jobs_in_flight(tmp_path: Path) -> None:
    pod = endpoint(timeout_s=2.0, tries=2, retry_delay_s=0.5, checks=("models", "health"))
    daemon = Daemon(config_of(pod), PLUGINS, {})
    assert daemon.drain_bound_s() == 1.0  # nothing in flight: only the slack
    quick = Job("a/checks", pod, pod.checks, 30.0)
    paid = Job("a/roundtrip", pod, ("roundtrip",), 600.0, tries=1, timeout_s=140.0)
    assert quick.bound_s == 2 * (2 * 2.0 + 0.5)
    assert paid.bound_s == 140.0

    async def main() -> float:
        never = asyncio.Event()
        tasks = [asyncio.create_task(never.wait()) for _ in range(2)]
        daemon._tasks.update(zip(tasks, (quick, paid), strict=True))
        bound = daemon.drain_bound_s()
        for task in tasks:
            task.cancel()
        return bound

    assert asyncio.run(main()) == 141.0  # the round trip's own deadline, not the endpoint's
