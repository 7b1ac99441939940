"""``runpod-probe gate ENDPOINT``: validate one endpoint before traffic is switched to it.

Runs every planned check of the endpoint once, side by side (models, serverless queue,
vLLM health, prompts, context fit: whatever the planners schedule), re-runs the ones that
failed in a way a cold start explains (connection refused, 502, timeout, workers
initializing) until they pass or the gate's timeout expires, and exits 0 only if every check
passed. The timeout is kept: checks still running when it expires are cancelled and the
report names them; a check that never finished is not a pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from probe.commands import (
    EXIT_CONFIG,
    EXIT_FAILING,
    EXIT_OK,
    load_or_report,
    unknown_endpoint,
)
from probe.config import Config
from probe.durations import format_duration, parse_duration
from probe.engine import probing
from probe.features import CommandFactory, Plugins
from probe.job import Job
from probe.outcome import Outcome, ProbeResult
from probe.prober import Prober
from probe.report import result_dict, result_rows, table
from probe.sweep import prepare
from probe.terminal import Progress
from probe.verdict import State, SweepVerdict, Window, instant
from probe.windows import windows_now

# What a deployment that is still starting looks like; anything else is a verdict.
TRANSIENT: frozenset[Outcome] = frozenset({
    Outcome.CONNECT_ERROR, Outcome.TIMEOUT, Outcome.HTTP_502, Outcome.HTTP_5XX,
    Outcome.NO_WORKERS, Outcome.INITIALIZING_TOO_LONG, Outcome.THROTTLED,
    Outcome.RATE_LIMITED, Outcome.UNKNOWN,
})


@dataclass(frozen=True, slots=True)
class GateReport:
    endpoint: str
    results: tuple[ProbeResult, ...]
    elapsed_s: float
    rounds: int
    # The maintenance window the endpoint is in, if any: shown, but the gate judges the
    # checks regardless (a deployment is checked during its own maintenance).
    window: Window | None = None
    # checks still running when the timeout expired (cancelled); their last finished
    # result, if any, is in ``results``
    unfinished: tuple[str, ...] = ()

    @property
    def judgement(self) -> SweepVerdict:
        """The endpoint's verdict on its last results (no check at all is not a pass, and
        neither is a check that did not finish)."""
        judged = instant(self.results)
        if self.unfinished and judged.state in (State.UP, State.UNKNOWN):
            return SweepVerdict(State.UNKNOWN, judged.cause, "did not finish within the "
                                f"timeout: {', '.join(self.unfinished)}")
        return judged

    @property
    def passed(self) -> bool:
        return self.judgement.state is State.UP


class UnknownEndpoint(Exception):
    """No endpoint of that name, not even after the preparers (discovery) ran."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(unknown_endpoint(name, known))


async def run_gate(config: Config, plugins: Plugins, name: str, timeout_s: float,
                   poll_s: float, env: Mapping[str, str] | None = None,
                   progress: Callable[[str], None] | None = None) -> GateReport:
    """Gate endpoint ``name``; ``UnknownEndpoint`` when neither the config nor the
    preparers (discovery) know it. ``progress`` is told what each round waits for."""
    say = progress or (lambda _text: None)
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + timeout_s
    async with probing(config, plugins, env=env) as prober:
        config, _ = await prepare(config, plugins, prober)
        if name not in {e.name for e in config.endpoints}:
            raise UnknownEndpoint(name, [e.name for e in config.endpoints])
        jobs = [job for job in plugins.plan(config) if job.endpoint.name == name]
        pending = [(job, check) for job in jobs for check in job.checks]
        latest: dict[str, ProbeResult] = {}
        unfinished: tuple[str, ...] = ()
        rounds = 0
        while pending:
            rounds += 1
            say(f"round {rounds}: {len(pending)} check{'s' if len(pending) != 1 else ''} "
                f"running, timeout {format_duration(timeout_s)}")
            finished, unfinished = await _round(prober, pending, deadline)
            latest.update(finished)
            pending = [(j, c) for j, c in pending if c in finished
                       and finished[c].outcome in TRANSIENT]
            remaining = deadline - loop.time()
            if unfinished or not pending or remaining <= 0:
                break
            waiting = ", ".join(f"{check} ({finished[check].outcome})" for _, check in pending)
            say(f"round {rounds}: retrying {waiting}")
            await asyncio.sleep(min(poll_s, remaining))
    window = windows_now(plugins.windows, config, [name]).get(name)
    order = [check for job in jobs for check in job.checks]
    results = tuple(sorted(latest.values(), key=lambda r: order.index(r.check)))
    return GateReport(name, results, loop.time() - began, rounds, window, unfinished)


async def _round(prober: Prober, pending: list[tuple[Job, str]],
                 deadline: float) -> tuple[dict[str, ProbeResult], tuple[str, ...]]:
    """Run ``pending`` side by side until they finish or ``deadline`` (the loop's clock);
    returns the results, and the checks cancelled at the deadline."""
    tasks = {asyncio.ensure_future(prober.run_one(job, check)): check for job, check in pending}
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    done, running = await asyncio.wait(tasks, timeout=timeout)
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    finished = {tasks[task]: task.result() for task in done}
    return finished, tuple(check for task, check in tasks.items() if task in running)


def render(report: GateReport) -> str:
    failed = [r for r in report.results if not r.ok]
    judgement = report.judgement
    if report.passed:
        verdict = f"GATE PASSED: {report.endpoint}: {len(report.results)} checks ok"
    elif not report.results and not report.unfinished:
        verdict = f"GATE FAILED: {report.endpoint}: no checks are planned for it"
    else:
        parts = []
        if failed:
            names = ", ".join(f"{r.check} ({r.outcome})" for r in failed)
            parts.append(f"{len(failed)} of {len(report.results)} checks failed: {names}")
        if report.unfinished:
            parts.append(f"{len(report.unfinished)} did not finish within the timeout "
                         f"(cancelled): {', '.join(report.unfinished)}")
        verdict = f"GATE FAILED: {report.endpoint} is {judgement.state}: " + "; ".join(parts)
    waited = f" (after {format_duration(report.elapsed_s)}, {report.rounds} round" \
             f"{'s' if report.rounds != 1 else ''})"
    note = ""
    if report.window is not None:
        note = f"\n{report.endpoint} is in maintenance ({report.window.name}: " \
               f"{report.window.reason}); the gate judges its checks all the same"
    return table(result_rows(report.results)) + "\n\n" + verdict + waited + note


def to_json(report: GateReport) -> str:
    document: dict[str, Any] = {
        "endpoint": report.endpoint, "passed": report.passed,
        "state": str(report.judgement.state),
        "cause": None if report.judgement.cause is None else {
            "check": report.judgement.cause.check, "outcome": report.judgement.cause.outcome},
        "elapsed_s": round(report.elapsed_s, 3), "rounds": report.rounds,
        "unfinished": list(report.unfinished),
        "maintenance": None if report.window is None else {
            "window": report.window.name, "reason": report.window.reason,
            "origin": report.window.origin},
        "results": [result_dict(r) for r in report.results],
    }
    return json.dumps(document, indent=2, default=str)


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = command("gate", cmd_gate, "Run every check of one endpoint (waiting through a cold "
                "start) and exit 0 only if all pass: for deploy scripts.")
    p.add_argument("endpoint", help="the endpoint's name in the config")
    p.add_argument("--timeout", default="10m", help="how long to wait for transient failures "
                   "(connection refused, 502, timeout, initializing workers) to clear; checks "
                   "still running then are cancelled and named (default 10m)")
    p.add_argument("--poll", default="5s", help="pause between re-runs (default 5s)")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_gate(args: argparse.Namespace, plugins: Plugins) -> int:
    try:
        timeout_s, poll_s = parse_duration(args.timeout), parse_duration(args.poll)
    except ValueError as exc:
        print(f"runpod-probe gate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    try:
        with Progress(f"gate {args.endpoint}") as progress:  # on a terminal's stderr only
            report = asyncio.run(run_gate(config, plugins, args.endpoint, timeout_s, poll_s,
                                          progress=progress.note))
    except UnknownEndpoint as exc:
        print(f"runpod-probe gate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(to_json(report) if args.json else render(report))
    return EXIT_OK if report.passed else EXIT_FAILING
