"""The daemon as the composition root hands it its plugins: a config built by hand runs every
feature (ledger, prompts), the plan is computed once per apply and shared, and a stop waits
as long as the jobs in flight may take — no longer, and no new check starts after it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import ledger_rows, until
from helpers import config_of, endpoint

from probe.app import PLUGINS
from probe.check import CheckContext, CheckSpec
from probe.config import load_config
from probe.config.model import Config, Endpoint, StorageSettings
from probe.daemon import STOP_LIMIT_S, Daemon
from probe.features import Attachment, Feature, Host, Plugins
from probe.job import Job
from probe.outcome import Observation, Outcome
from probe.process import FD_HEADROOM
from probe.prompts.model import Expectation, Message, Prompt, PromptSection
from probe.scheduler import endpoint_jobs


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
    paid = Job("a/roundtrip", pod, ("roundtrip",), 600.0, tries=1, timeout_s=80.0)
    huge = Job("a/roundtrip", pod, ("roundtrip",), 600.0, tries=1, timeout_s=400.0)
    assert quick.bound_s == 0.2 + 2 * 2.0 + 0.5  # in turns: the second a stagger after at most
    assert paid.bound_s == 80.0

    async def bound_with(*jobs: Job) -> float:
        never = asyncio.Event()
        tasks = [asyncio.create_task(never.wait()) for _ in jobs]
        daemon._tasks.update(zip(tasks, jobs, strict=True))
        bound = daemon.drain_bound_s()
        for task in tasks:
            task.cancel()
        daemon._tasks.clear()
        return bound

    # once stopped, the check running finishes; the job's other checks do not start
    assert asyncio.run(bound_with(quick)) == 2 * 2.0 + 0.5 + 1.0
    assert asyncio.run(bound_with(quick, paid)) == 81.0  # the round trip's own deadline
    assert asyncio.run(bound_with(huge)) == STOP_LIMIT_S  # never more than the unit allows


def test_the_open_files_wanted_are_the_plans_connections_and_files_beside(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three pods with the default checks (which take turns over one connection): three
    kept-alive connections, two more per pod at most for checks beside another of the
    pod's, and the files beside. A plan that needs more
    (discovery grew the fleet) raises the limit again; one that needs no more says nothing."""
    asked: list[tuple[int, str]] = []
    monkeypatch.setattr("probe.daemon.raise_open_files_limit",
                        lambda wanted, counted: asked.append((wanted, counted)) or wanted)
    pods = [endpoint(name=f"p{i}", openai_base=f"http://p{i}.test/v1",
                     root_url=f"http://p{i}.test", checks=("models", "health", "vllm_metrics"))
            for i in range(3)]
    daemon = Daemon(config_of(*pods), PLUGINS, {})
    daemon._open_files()
    assert asked == [(3 + 6 + FD_HEADROOM, f"3 kept-alive connections, one per host asked, "
                      f"and up to 6 more for checks in flight beside another of their "
                      f"host's, and {FD_HEADROOM} files beside")]
    daemon._open_files()
    assert len(asked) == 1, "the same plan: nothing new to say"
    added = replace(pods[0], name="p9", root_url="http://p9.test",
                    openai_base="http://p9.test/v1")
    daemon.jobs = [*daemon.jobs, Job("p9/checks", added, ("models",), 30.0)]
    daemon._open_files()
    assert asked[-1][0] == 4 + 6 + FD_HEADROOM


# -- one plan per applied config, shared by state, scheduler and features ----------------------
class Planned:
    """Fake plugins: an in-test ``models`` check and a planner that counts its plans, and a
    feature whose start-up hook records every plan announced to it."""

    def __init__(self) -> None:
        self.plans: list[list[Job]] = []
        self.announced: list[tuple[Config, Sequence[Job]]] = []

        async def models(_e: Endpoint, _c: httpx.AsyncClient, _x: CheckContext) -> Observation:
            return Observation(Outcome.OK)

        def planner(config: Config) -> list[Job]:
            self.plans.append(endpoint_jobs(config))
            return self.plans[-1]

        def hook(_host: Host) -> Attachment:
            return Attachment(on_plan=lambda config, jobs: self.announced.append((config, jobs)))

        self.plugins = Plugins.of(
            Feature("core", checks=(CheckSpec("models", models),), planners=(planner,)),
            Feature("listener", startup=(hook,)))


def running(daemon: Daemon, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop, install_signals=False))
        await daemon.ready.wait()
        try:
            await scenario()
        finally:
            stop.set()
            await task

    asyncio.run(main())


def shares_the_plan(daemon: Daemon, fake: Planned) -> None:
    """State, scheduler and features all got the daemon's one current plan."""
    jobs = daemon.jobs
    assert list(jobs) == fake.plans[-1]
    assert fake.announced[-1][1] is jobs and fake.announced[-1][0] is daemon.config
    assert set(daemon.state.snapshot().checks) == {(j.endpoint.name, c) for j in jobs
                                                   for c in j.checks}
    assert daemon.scheduler is not None
    assert {job.id for job in daemon.scheduler.jobs()} == {job.id for job in jobs}


def test_apply_plans_once_and_hands_the_same_jobs_to_state_scheduler_and_features(
        tmp_path: Path) -> None:
    fake = Planned()
    first = replace(config_of(endpoint(name="a")), storage=StorageSettings(tmp_path / "p.db"))
    daemon = Daemon(first, fake.plugins, {})
    assert len(fake.plans) == 1

    async def scenario() -> None:
        assert len(fake.plans) == 1 and len(fake.announced) == 1, "started on the first plan"
        shares_the_plan(daemon, fake)
        second = replace(first, endpoints=(endpoint(name="a"), endpoint(name="b")))
        assert daemon.apply(second) is True
        assert len(fake.plans) == 2 and len(fake.announced) == 2
        shares_the_plan(daemon, fake)
        assert daemon.apply(replace(second)) is False, "an equal config changes nothing"
        assert len(fake.plans) == 2 and len(fake.announced) == 2

    running(daemon, scenario)


def test_a_reload_with_an_invalid_file_keeps_the_old_plan(tmp_path: Path) -> None:
    fake = Planned()
    head = (f'storage: {{path: "{tmp_path / "p.db"}"}}\nmetrics: {{listen: "127.0.0.1:0"}}\n'
            "endpoints:\n")
    row = '  - {{name: {}, kind: openai, base_url: "http://127.0.0.1:9/v1"}}\n'
    path = tmp_path / "c.yaml"
    path.write_text(head + row.format("a"))
    daemon = Daemon(load_config(path, {}, fake.plugins.config), fake.plugins, {})

    async def scenario() -> None:
        old = daemon.jobs
        path.write_text(head + row.format("a") + row.format("b") + "bogus: 1\n")
        assert await daemon.reload() is False
        assert daemon.state.daemon.reload_ok is False
        assert daemon.jobs is old and len(fake.plans) == 1 and len(fake.announced) == 1
        shares_the_plan(daemon, fake)
        path.write_text(head + row.format("a") + row.format("b"))
        assert await daemon.reload() is True and daemon.state.daemon.reload_ok is True
        assert len(fake.plans) == 2 and [j.id for j in daemon.jobs] == ["a/checks", "b/checks"]
        shares_the_plan(daemon, fake)

    running(daemon, scenario)


def test_any_failure_in_a_reload_keeps_the_old_plan_and_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Not only an invalid file: a loader that crashes or a config that cannot be planned
    leaves the old config running, the reload metric at 0 and one log line, no traceback."""
    fake = Planned()
    planner = fake.plugins.planners[0]

    def fragile(config: Config) -> list[Job]:
        if any(e.name == "boom" for e in config.endpoints):
            raise ValueError("cannot plan boom")
        return list(planner(config))

    plugins = replace(fake.plugins, planners=(fragile,))
    head = (f'storage: {{path: "{tmp_path / "p.db"}"}}\nmetrics: {{listen: "127.0.0.1:0"}}\n'
            "endpoints:\n")
    row = '  - {{name: {}, kind: openai, base_url: "http://127.0.0.1:9/v1"}}\n'
    path = tmp_path / "c.yaml"
    path.write_text(head + row.format("a"))
    daemon = Daemon(load_config(path, {}, plugins.config), plugins, {})

    def crashing_loader(*_args: Any) -> Config:
        raise RecursionError("maximum recursion depth exceeded")

    async def scenario() -> None:
        old, config = daemon.jobs, daemon.config
        path.write_text(head + row.format("a") + row.format("boom"))
        with monkeypatch.context() as patched:
            patched.setattr("probe.daemon.load_config", crashing_loader)
            caplog.clear()
            assert await daemon.reload() is False
        assert daemon.state.daemon.reload_ok is False
        assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
            ("ERROR", "config reload failed: RecursionError: maximum recursion depth exceeded; "
                      "still running the old config", None)]
        caplog.clear()
        assert await daemon.reload() is False, "planning boom fails"
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
            "config reload failed: ValueError: cannot plan boom; still running the old config"]
        assert daemon.state.daemon.reload_ok is False
        assert daemon.jobs is old and daemon.config is config and daemon.file_config is config
        shares_the_plan(daemon, fake)
        path.write_text(head + row.format("a") + row.format("b"))
        assert await daemon.reload() is True and daemon.state.daemon.reload_ok is True
        assert [j.id for j in daemon.jobs] == ["a/checks", "b/checks"]

    running(daemon, scenario)


# -- what a feature declares in its attachment, the daemon wires --------------------------------
class Declared:
    """A feature that declares a collector, an observer, a page and a status part."""

    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        from prometheus_client.core import GaugeMetricFamily

        self.seen: list[tuple[str, int | None]] = []

        class Collector:
            def collect(self) -> Any:
                yield GaugeMetricFamily("declared_gauge", "A declared collector.", value=1)

        async def models(_e: Endpoint, _c: httpx.AsyncClient, _x: CheckContext) -> Observation:
            return Observation(Outcome.OK)

        def hook(host: Host) -> Attachment:
            return Attachment(
                collectors=(Collector(),),
                observers=(lambda result, row: self.seen.append((result.check, row)),),
                routes=routes if routes is not None else {
                    "/hello": lambda params: (200, "text/plain", b"parts: " + ",".join(
                        sorted(host.status_parts())).encode())},
                status_parts={"declared": lambda: {}})

        self.plugins = Plugins.of(
            Feature("core", checks=(CheckSpec("models", models),), planners=(endpoint_jobs,)),
            Feature("declaring", startup=(hook,)))


def test_what_a_feature_declares_is_wired_by_the_daemon(tmp_path: Path) -> None:
    config = replace(config_of(endpoint(interval_s=0.5)),
                     storage=StorageSettings(tmp_path / "probe.db"))
    feature = Declared()
    daemon = Daemon(config, feature.plugins, env={})

    async def scenario() -> None:
        await until(lambda: bool(feature.seen), what="a result told to the declared observer")
        assert feature.seen[0][0] == "models" and isinstance(feature.seen[0][1], int)
        metrics = (await asyncio.to_thread(httpx.get, daemon.metrics_url)).text
        assert "declared_gauge 1.0" in metrics
        page = await asyncio.to_thread(httpx.get, daemon.metrics_url.replace("metrics", "hello"))
        assert (page.status_code, page.text) == (200, "parts: declared")

    running(daemon, scenario)


def test_a_declared_page_on_metrics_is_refused(tmp_path: Path) -> None:
    config = replace(config_of(endpoint()), storage=StorageSettings(tmp_path / "probe.db"))
    feature = Declared(routes={"/metrics": lambda params: (200, "text/plain", b"")})
    with pytest.raises(ValueError, match="/metrics is served already"):
        asyncio.run(Daemon(config, feature.plugins, env={}).run(asyncio.Event(),
                                                                install_signals=False))
