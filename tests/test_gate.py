"""The deployment gate at unit level: fake plugins (``Plugins.of(Feature(...))``) with
in-test checks, no network. Transient failures are re-run until the timeout, anything else
is final, nothing planned is not a pass, an unknown endpoint names the known ones; the
report's table and JSON shapes. (tests/e2e/test_gate.py runs the real command.)"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from helpers import config_of, endpoint, role_of

from probe.check import CheckContext, CheckSpec
from probe.config.model import Config, Endpoint
from probe.features import Feature, Plugins, Publisher
from probe.gate import TRANSIENT, GateReport, UnknownEndpoint, render, run_gate, to_json
from probe.job import Job
from probe.outcome import Observation, Outcome, ProbeResult
from probe.scheduler import endpoint_jobs

CheckFn = Callable[[Endpoint, httpx.AsyncClient, CheckContext], Awaitable[Observation]]
FINAL = sorted(set(Outcome) - TRANSIENT - {Outcome.OK})


class Script:
    """Check functions that answer from a script, one outcome per call (the last repeats),
    and count their calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def check(self, name: str, *outcomes: Outcome) -> CheckSpec:
        async def fn(_e: Endpoint, _c: httpx.AsyncClient, _x: CheckContext) -> Observation:
            self.calls[name] += 1
            outcome = outcomes[min(self.calls[name], len(outcomes)) - 1]
            return Observation(outcome, f"{name} says {outcome}")

        return CheckSpec(name, fn)


def plugins(*checks: CheckSpec, planners: Sequence[Callable[[Config], list[Job]]] = (
        endpoint_jobs,), preparers: Sequence[object] = ()) -> Plugins:
    return Plugins.of(Feature("gate-test", checks=checks, planners=tuple(planners),
                              preparers=tuple(preparers)))  # type: ignore[arg-type]


def gate(config: Config, with_plugins: Plugins, name: str = "pod-a", timeout_s: float = 5.0,
         poll_s: float = 0.01) -> GateReport:
    return asyncio.run(run_gate(config, with_plugins, name, timeout_s, poll_s, env={}))


def pod(*checks: str, **overrides: object) -> Endpoint:
    return endpoint(checks=checks, **overrides)  # tries=1: the runner does not retry here


@pytest.mark.parametrize("outcome", sorted(TRANSIENT), ids=str)
def test_a_transient_failure_is_re_run_until_it_passes(outcome: Outcome) -> None:
    script = Script()
    report = gate(config_of(pod("models")),
                  plugins(script.check("models", outcome, outcome, Outcome.OK)))
    assert report.passed and report.rounds == 3 and script.calls["models"] == 3
    assert [r.outcome for r in report.results] == [Outcome.OK]


@pytest.mark.parametrize("outcome", FINAL, ids=str)
def test_any_other_failure_is_final(outcome: Outcome) -> None:
    script = Script()
    report = gate(config_of(pod("models")), plugins(script.check("models", outcome, Outcome.OK)))
    assert not report.passed and report.rounds == 1 and script.calls["models"] == 1
    assert [r.outcome for r in report.results] == [outcome]


def test_a_transient_failure_that_lasts_gives_up_at_the_timeout() -> None:
    script = Script()
    report = gate(config_of(pod("models")), plugins(script.check("models", Outcome.HTTP_502)),
                  timeout_s=0.3, poll_s=0.05)
    assert not report.passed and report.results[0].outcome is Outcome.HTTP_502
    assert 2 <= report.rounds <= 8 and script.calls["models"] == report.rounds
    assert 0.3 <= report.elapsed_s < 2.0


def test_the_timeout_is_kept_and_checks_still_running_are_named() -> None:
    # issue 20: --timeout 5s on a slow endpoint ran 26 s (checks one after another, each
    # under its own deadline, the last one started before the timeout)
    script = Script()
    cancelled: list[str] = []

    def hangs(name: str) -> CheckSpec:
        async def fn(_e: Endpoint, _c: httpx.AsyncClient, _x: CheckContext) -> Observation:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
            return Observation(Outcome.OK)

        return CheckSpec(name, fn)

    specs = (script.check("models", Outcome.OK), hangs("health"), hangs("context"))
    report = gate(config_of(pod("models", "health", "context", timeout_s=20.0)),
                  plugins(*specs), timeout_s=0.4)
    assert report.elapsed_s < 0.4 + 0.3, report.elapsed_s
    assert report.unfinished == ("health", "context") and sorted(cancelled) == [
        "context", "health"]
    assert not report.passed and report.judgement.state == "unknown", "never finished: no pass"
    assert [r.check for r in report.results] == ["models"]
    assert render(report).splitlines()[-1].startswith(
        "GATE FAILED: pod-a is unknown: 2 did not finish within the timeout (cancelled): "
        "health, context (after ")
    assert json.loads(to_json(report))["unfinished"] == ["health", "context"]


def test_only_the_checks_still_failing_are_re_run() -> None:
    script = Script()
    specs = (script.check("models", Outcome.OK),
             script.check("health", Outcome.CONNECT_ERROR, Outcome.OK),
             script.check("context", Outcome.CONTEXT_TOO_SMALL))
    report = gate(config_of(pod("models", "health", "context")), plugins(*specs))
    assert script.calls == {"models": 1, "health": 2, "context": 1}
    assert {r.check: r.outcome for r in report.results} == {
        "models": Outcome.OK, "health": Outcome.OK, "context": Outcome.CONTEXT_TOO_SMALL}
    assert not report.passed and report.rounds == 2


def test_only_the_named_endpoints_planned_checks_run() -> None:
    script = Script()

    def prompts(config: Config) -> list[Job]:
        return [Job(f"{e.name}/prompt:arith", e, ("prompt:arith",), 60.0, {"prompt": "arith"})
                for e in config.endpoints]

    specs = (script.check("models", Outcome.OK), script.check("prompt", Outcome.OK))
    family = replace(specs[1], family=True)
    report = gate(config_of(pod("models"), pod("models", name="pod-b")),
                  plugins(specs[0], family, planners=(endpoint_jobs, prompts)))
    assert report.passed and [r.check for r in report.results] == ["models", "prompt:arith"]
    assert {r.endpoint for r in report.results} == {"pod-a"}
    assert script.calls == {"models": 1, "prompt": 1}


def test_no_planned_check_is_not_a_pass() -> None:
    report = gate(config_of(pod("models")), plugins(planners=()))
    assert not report.passed and report.results == () and report.rounds == 0
    assert "GATE FAILED: pod-a: no checks are planned for it" in render(report)


def test_an_unknown_endpoint_raises_naming_the_known_ones() -> None:
    config = config_of(pod("models"), pod("models", name="pod-b"))
    with pytest.raises(UnknownEndpoint, match=r'no endpoint named "nope" \(known: pod-a, pod-b\)'):
        gate(config, plugins(Script().check("models", Outcome.OK)), name="nope")


def test_an_endpoint_a_preparer_adds_can_be_gated() -> None:
    found = pod("models", name="found-later")

    async def discover(config: Config, _publisher: Publisher) -> tuple[Config, list[ProbeResult]]:
        return replace(config, endpoints=(*config.endpoints, found)), []

    script = Script()
    report = gate(config_of(pod("models")),
                  plugins(script.check("models", Outcome.OK), preparers=(discover,)),
                  name="found-later")
    assert report.passed and [r.endpoint for r in report.results] == ["found-later"]


# -- what people and programs read ---------------------------------------------------------
def result(check: str, outcome: Outcome, attempts: int = 1) -> ProbeResult:
    return ProbeResult("pod-a", "pod", check, outcome, datetime(2026, 2, 18, 9, tzinfo=UTC),
                       0.1234, attempts, "http://pod.test", f"{check}: {outcome}", 200, role=role_of(check))


@pytest.mark.parametrize(
    ("results", "elapsed_s", "rounds", "verdict"),
    [((result("models", Outcome.OK), result("health", Outcome.OK, 2)), 0.25, 1,
      "GATE PASSED: pod-a: 2 checks ok (after 250ms, 1 round)"),
     ((result("models", Outcome.OK), result("context", Outcome.CONTEXT_TOO_SMALL)), 1.5, 2,
      "GATE FAILED: pod-a is down: 1 of 2 checks failed: context (context_too_small) (after "
      "2s, 2 rounds)"),
     ((), 0.0, 0, "GATE FAILED: pod-a: no checks are planned for it (after 0ms, 0 rounds)")],
    ids=["passed", "failed", "nothing-planned"],
)
def test_render_ends_with_the_verdict(results: tuple[ProbeResult, ...], elapsed_s: float,
                                      rounds: int, verdict: str) -> None:
    text = render(GateReport("pod-a", results, elapsed_s, rounds))
    lines = text.splitlines()
    assert lines[-1] == verdict and lines[-2] == ""
    assert lines[0].split() == ["ENDPOINT", "KIND", "CHECK", "OUTCOME", "HTTP", "LATENCY",
                                "TRIES", "MESSAGE"]
    assert len(lines) == 1 + len(results) + 2
    if results and results[-1].attempts > 1 and results[-1].ok:
        assert "ok (retried)" in lines[2]


def test_to_json_shape() -> None:
    report = GateReport("pod-a", (result("models", Outcome.OK),
                                  result("health", Outcome.ENGINE_DEAD)), 1.23456, 3)
    document = json.loads(to_json(report))
    assert set(document) == {"endpoint", "passed", "state", "cause", "elapsed_s", "rounds",
                             "unfinished", "maintenance", "results"}
    assert (document["endpoint"], document["passed"], document["elapsed_s"],
            document["rounds"], document["maintenance"]) == ("pod-a", False, 1.235, 3, None)
    assert (document["state"], document["cause"]) == ("down", {"check": "health",
                                                               "outcome": "engine_dead"})
    assert [(r["check"], r["outcome"], r["ok"]) for r in document["results"]] == [
        ("models", "ok", True), ("health", "engine_dead", False)]
    assert set(document["results"][0]) == {
        "endpoint", "kind", "check", "outcome", "ok", "http_status", "latency_s", "attempts",
        "url", "message", "started_at", "details"}
    assert document["results"][0]["started_at"] == "2026-02-18T09:00:00.000+00:00"


def test_a_window_is_named_but_the_checks_decide() -> None:
    from datetime import UTC, datetime

    from probe.verdict import Window

    now = datetime.now(UTC)
    report = GateReport("pod-a", (result("models", Outcome.OK),), 0.5, 1,
                        Window("cli:1", "manual #1", "redeploy", "cli (alice)", now, None))
    assert report.passed
    assert json.loads(to_json(report))["maintenance"] == {
        "window": "manual #1", "reason": "redeploy", "origin": "cli (alice)"}
    assert render(report).splitlines()[-1] == (
        "pod-a is in maintenance (manual #1: redeploy); the gate judges its checks all the same")
