"""The serverless queue rules in one table, in precedence order: when several hold, the
first names the endpoint's state and the others are kept as evidence.

The order goes from the most specific cause to the vaguest symptom: a crash loop explains
a stalled queue, so it must win over it; "no workers" explains why nothing runs; a stalled
queue is what is left when no counter explains it (e.g. an older API answer without the
``unhealthy``/``throttled`` counters, where "no workers" cannot be claimed); failing jobs
on a moving queue come last.
Each rule must hold on ``needs`` consecutive readings, so a queue that is between two
states for one reading (a cold start showing zero workers) does not raise an alarm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from probe.durations import format_duration
from probe.outcome import Outcome
from probe.serverless.history import Observation
from probe.serverless.settings import QueueSettings

LOGS = "Read the worker logs (RunPod console > endpoint > Workers > Logs)"


@dataclass(frozen=True, slots=True)
class Rule:
    outcome: Outcome
    holds: Callable[[Observation, QueueSettings], bool]
    needs: Callable[[QueueSettings], int]  # consecutive readings on which it must hold
    explain: Callable[[Observation, QueueSettings], str]


@dataclass(frozen=True, slots=True)
class Finding:
    outcome: Outcome
    message: str


def _once(settings: QueueSettings) -> int:
    return 1


def _stall(settings: QueueSettings) -> int:
    return settings.stall_checks


def _grown(settings: QueueSettings) -> int:
    # Compared with the reading before, so N readings give N - 1 comparisons.
    return settings.stall_checks - 1


def _w(o: Observation, name: str) -> int:
    return o.health.workers[name]


def _crash_looping(o: Observation, s: QueueSettings) -> str:
    return (f"{_w(o, 'unhealthy')} unhealthy worker(s) while {o.health.in_queue} job(s) wait: "
            "the worker crashes while starting (crash loop), not a capacity problem. "
            f"{LOGS}: engine init errors (out of memory, max_model_len, model id, HF token).")


def _no_workers(o: Observation, s: QueueSettings) -> str:
    return (f"{o.health.in_queue} job(s) queued and no worker at all for {s.stall_checks} "
            "checks: scaling from zero is not happening. Check max workers (RunPod sets it to "
            "0 after 7 idle days or repeated unhealthy workers) and add GPU types or data "
            "centers if none of the allowed ones is free.")


def _throttled(o: Observation, s: QueueSettings) -> str:
    return (f"{_w(o, 'throttled')} worker(s) throttled and none running: the hosts are at "
            "capacity. Add GPU types or data centers to the endpoint.")


def _initializing(o: Observation, s: QueueSettings) -> str:
    spent = format_duration(o.initializing_for_s or 0.0)
    return (f"workers initializing for {spent} (budget "
            f"{format_duration(s.initializing_budget_s)}): image pull, model download or "
            "engine start is too slow or stuck; RunPod marks a worker unhealthy after 7 "
            f"minutes. {LOGS}; cache the model or raise RUNPOD_INIT_TIMEOUT.")


def _stalled(o: Observation, s: QueueSettings) -> str:
    return (f"{o.health.in_queue} job(s) queued, none running and none completed for "
            f"{s.stall_checks} checks: the queue is stalled. {LOGS} and check max workers.")


def _idle(o: Observation, s: QueueSettings) -> str:
    idle = max(_w(o, "idle"), _w(o, "ready"))
    return (f"{o.health.in_queue} job(s) queued and not draining for {s.stall_checks} checks "
            f"while {idle} worker(s) sit idle: jobs are not handed to idle workers (a known "
            "bug of runpod 1.7.11-1.10.0 in the worker image). Upgrade runpod to 1.10.1 or "
            f"later; {LOGS}.")


def _failing(o: Observation, s: QueueSettings) -> str:
    return (f"{o.failed_in_window} job(s) failed and {o.retried_in_window} retried in the last "
            f"{format_duration(s.failure_window_s)} (threshold {s.failure_threshold}): the "
            f"worker errors on requests (out of memory per request, bad input, a broken "
            f"image). {LOGS} and the failed jobs' errors.")


RULES: tuple[Rule, ...] = (
    Rule(Outcome.CRASH_LOOPING,
         lambda o, s: _w(o, "unhealthy") > 0 and o.health.in_queue > 0, _once, _crash_looping),
    Rule(Outcome.NO_WORKERS,
         lambda o, s: o.health.in_queue > 0 and o.health.no_workers, _stall, _no_workers),
    Rule(Outcome.THROTTLED,
         lambda o, s: _w(o, "throttled") > 0 and not o.health.serving, _once, _throttled),
    Rule(Outcome.INITIALIZING_TOO_LONG,
         lambda o, s: (o.initializing_for_s or 0.0) > s.initializing_budget_s, _once,
         _initializing),
    Rule(Outcome.QUEUED_WHILE_IDLE,
         lambda o, s: o.health.in_queue > 0 and max(_w(o, "idle"), _w(o, "ready")) > 0
         and o.previous is not None and not o.queue_shrank, _grown, _idle),
    # Initializing workers are a cold start in progress, judged by the budget above.
    Rule(Outcome.QUEUE_STALLED,
         lambda o, s: o.health.in_queue > 0 and _w(o, "running") == 0
         and _w(o, "initializing") == 0 and not o.progressed, _stall, _stalled),
    Rule(Outcome.JOBS_FAILING,
         lambda o, s: max(o.failed_in_window, o.retried_in_window) >= s.failure_threshold,
         _once, _failing),
)


def evaluate(observation: Observation, settings: QueueSettings,
             streaks: dict[str, int]) -> list[Finding]:
    """Every rule that fires on this reading, first one first. ``streaks`` (per endpoint,
    kept between readings) counts the consecutive readings on which each rule held."""
    findings = []
    for rule in RULES:
        key = str(rule.outcome)
        streaks[key] = streaks.get(key, 0) + 1 if rule.holds(observation, settings) else 0
        if streaks[key] >= rule.needs(settings):
            findings.append(Finding(rule.outcome, rule.explain(observation, settings)))
    return findings


def unconfirmed(settings: QueueSettings, streaks: dict[str, int]) -> list[tuple[Outcome, int, int]]:
    """Rules that hold on this reading but not yet on enough readings to be judged: (outcome,
    readings so far, readings needed), first one first. Not yet known is not a pass."""
    return [(rule.outcome, streaks[str(rule.outcome)], rule.needs(settings)) for rule in RULES
            if 0 < streaks.get(str(rule.outcome), 0) < rule.needs(settings)]
