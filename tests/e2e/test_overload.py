"""The real daemon, overloaded: its event loop blocked most of the time (a stand-in for more
checks than one core carries), probing healthy pods of the simulator (which answers from a
thread of its own, in 0.1 s). The answers sit unread past their deadlines; none of it is
charged to the pods: no timeout is stored, no pod goes down, and /metrics says the probe
is overloaded."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import run_daemon, scrape, until
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.simulator import Fleet, PodSpec, Simulator
from probe.verdict import State

NAMES = ("a", "b", "c")


@pytest.fixture
def sim(sim_env: dict[str, str]) -> Iterator[Simulator]:
    fleet = Fleet()
    # healthy, answering in 0.1 s: a check is still waiting when the loop blocks
    fleet.add_pod("p-slowish", PodSpec("slow", delay_s=0.1))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as simulator:
        yield simulator


def _counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_an_overloaded_daemon_charges_no_healthy_pod(sim: Simulator, tmp_path: Path,
                                                      sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="1s", timeout="500ms")
                   + pods(*(f"{name} p-slowish" for name in NAMES)))

    async def scenario(daemon: Daemon) -> tuple[str, list[State]]:
        await until(lambda: all(
            (v := daemon.state.verdict(name)) is not None and v.state is State.UP
            for name in NAMES), what="every pod up")
        states: list[State] = []
        for _ in range(8):  # the loop blocked 0.9 s of every ~0.9 s: answers sit unread
            time.sleep(0.9)  # noqa: ASYNC251 - the point: the loop is blocked
            await asyncio.sleep(0.01)
            states += [v.state for name in NAMES if (v := daemon.state.verdict(name))]
        return await scrape(daemon), states

    text, states = run_daemon(config, sim_env, scenario)
    assert State.DOWN not in states
    with sqlite3.connect(tmp_path / "probe.db") as conn:
        outcomes = dict(conn.execute(
            "SELECT outcome, COUNT(*) FROM results GROUP BY outcome").fetchall())
    assert "timeout" not in outcomes and set(outcomes) <= {"ok", "unknown"}, outcomes
    unobserved = _counter(text, "runpod_probe_overload_unobserved_total")
    skipped = _counter(text, "runpod_probe_overload_skipped_checks_total")
    assert unobserved + skipped > 0, (outcomes, text[-3000:])
    assert outcomes.get("unknown", 0) == unobserved
    assert _counter(text, "runpod_probe_loop_stalled_seconds_total") >= 8 * 0.8
