"""The queue rules over consecutive readings: each condition has a sequence that triggers
it and one that must not, and the precedence between conditions is a table."""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time
from helpers import endpoint
from serverless_helpers import health_json, reading

from probe.check import CheckContext
from probe.outcome import Outcome
from probe.serverless import queue
from probe.serverless.conditions import RULES, evaluate
from probe.serverless.health import QueueHealth, parse_health
from probe.serverless.history import QueueHistory
from probe.serverless.settings import QueueSettings

S = QueueSettings(stall_checks=3, failure_threshold=3, failure_window_s=600.0,
                  initializing_budget_s=420.0)
INCIDENT = reading(in_queue=7, unhealthy=1)
EMPTY_WORKERS = reading(in_queue=3)
LEGACY_STUCK = parse_health({"jobs": {"inQueue": 4, "completed": 10},
                             "workers": {"idle": 0, "running": 0}})


def outcomes(readings: list[QueueHealth], settings: QueueSettings = S,
             step_s: float = 30.0) -> list[str]:
    """The state named after each reading ("ok" when no rule fires)."""
    history, names = QueueHistory(), []
    for index, health in enumerate(readings):
        observation = history.observe(health, settings.failure_window_s, now=index * step_s)
        found = evaluate(observation, settings, history.streaks)
        names.append(str(found[0].outcome) if found else "ok")
    return names


SEQUENCES = [
    # crash_looping: the seeded incident fires on the first reading.
    ("incident", [INCIDENT] * 3, ["crash_looping"] * 3),
    ("unhealthy-without-queue", [reading(unhealthy=1, idle=1)] * 3, ["ok"] * 3),
    # no_workers: a queue and no worker at all, for stall_checks readings.
    ("scaled-to-zero", [EMPTY_WORKERS] * 3, ["ok", "ok", "no_workers"]),
    ("cold-start-from-zero-is-not-no-workers",
     [EMPTY_WORKERS, reading(in_queue=3, initializing=1), reading(in_queue=2, running=1),
      reading(in_queue=0, running=1, completed=3)], ["ok"] * 4),
    ("no-workers-claimed-only-with-every-counter", [LEGACY_STUCK] * 3,
     ["ok", "ok", "queue_stalled"]),
    # throttled: capacity, nothing serving.
    ("throttled", [reading(in_queue=2, throttled=1)] * 2, ["throttled"] * 2),
    ("throttled-but-one-running", [reading(in_queue=2, throttled=1, running=1)] * 2, ["ok"] * 2),
    # queue_stalled: nothing completes while nothing runs.
    ("slow-drain-is-not-stalled",
     [parse_health({"jobs": {"inQueue": n, "completed": 10 - n}, "workers": {"running": 0}})
      for n in (5, 4, 4, 3, 3, 2)], ["ok"] * 6),
    ("stall-streak-resets-on-progress",
     [LEGACY_STUCK, LEGACY_STUCK, parse_health({"jobs": {"inQueue": 4, "completed": 11},
                                                "workers": {}}), LEGACY_STUCK, LEGACY_STUCK],
     ["ok"] * 5),
    ("counter-reset-is-not-a-stall",
     [LEGACY_STUCK, LEGACY_STUCK, parse_health({"jobs": {"inQueue": 4, "completed": 0},
                                                "workers": {}})], ["ok"] * 3),
    # queued_while_idle: the queue does not drain although workers sit idle.
    ("queued-while-idle", [reading(in_queue=n, idle=2, ready=2) for n in (1, 2, 3, 4)],
     ["ok", "ok", "queued_while_idle", "queued_while_idle"]),
    ("idle-workers-draining-queue", [reading(in_queue=n, idle=1, running=1, completed=9 - n)
                                     for n in (5, 4, 3, 2)], ["ok"] * 4),
    # jobs_failing: failed (or retried) deltas within the window reach the threshold.
    ("jobs-failing", [reading(failed=n, retried=n, running=1) for n in (10, 11, 12, 13)],
     ["ok", "ok", "ok", "jobs_failing"]),
    ("old-failures-are-not-counted", [reading(failed=100, running=1)] * 3, ["ok"] * 3),
]


@pytest.mark.parametrize(("readings", "expected"), [s[1:] for s in SEQUENCES],
                         ids=[s[0] for s in SEQUENCES])
def test_condition_sequences(readings: list[QueueHealth], expected: list[str]) -> None:
    assert outcomes(readings) == expected


def test_failures_spread_beyond_the_window_do_not_add_up() -> None:
    narrow = QueueSettings(failure_threshold=3, failure_window_s=45.0)
    readings = [reading(failed=n, running=1) for n in (0, 1, 2, 3, 4)]
    assert outcomes(readings, narrow, step_s=30.0) == ["ok"] * 5
    assert outcomes(readings, narrow, step_s=10.0)[3:] == ["jobs_failing"] * 2


PRECEDENCE = [
    ("crash-loop-beats-stall-and-idle", dict(in_queue=7, unhealthy=1, idle=1),
     ["crash_looping", "queued_while_idle", "queue_stalled"]),
    ("no-workers-beats-stall", dict(in_queue=3), ["no_workers", "queue_stalled"]),
    ("throttled-beats-stall", dict(in_queue=2, throttled=1), ["throttled", "queue_stalled"]),
    ("idle-beats-stall", dict(in_queue=2, idle=1), ["queued_while_idle", "queue_stalled"]),
]


@pytest.mark.parametrize(("counts", "expected"), [p[1:] for p in PRECEDENCE],
                         ids=[p[0] for p in PRECEDENCE])
def test_precedence_when_several_conditions_hold(counts: dict[str, int],
                                                 expected: list[str]) -> None:
    history = QueueHistory()
    found: list[Any] = []
    for index in range(3):
        observation = history.observe(reading(**counts), 600.0, now=float(index))
        found = evaluate(observation, S, history.streaks)
    assert [str(f.outcome) for f in found] == expected


def test_rule_table_is_in_the_documented_order() -> None:
    assert [str(r.outcome) for r in RULES] == [
        "crash_looping", "no_workers", "throttled", "initializing_too_long",
        "queued_while_idle", "queue_stalled", "jobs_failing"]


@pytest.mark.parametrize(
    ("outcome", "counts", "hint"),
    [(Outcome.CRASH_LOOPING, dict(in_queue=7, unhealthy=1), "worker logs"),
     (Outcome.NO_WORKERS, dict(in_queue=3), "max workers"),
     (Outcome.THROTTLED, dict(in_queue=2, throttled=1), "Add GPU types")],
    ids=["crash-loop-logs", "no-workers-max-workers", "throttled-gpu-types"],
)
def test_messages_name_the_next_step(outcome: Outcome, counts: dict[str, int],
                                     hint: str) -> None:
    history = QueueHistory()
    for index in range(3):
        found = evaluate(history.observe(reading(**counts), 600.0, now=float(index)), S,
                         history.streaks)
    assert found[0].outcome is outcome and hint in found[0].message


def judge_at(ctx: CheckContext, counts: dict[str, int], **extra: Any) -> Outcome:
    ep = endpoint(kind="serverless", checks=("queue",), extra=extra)
    return queue.judge(ep, parse_health(health_json(**counts)), ctx).outcome


def test_initializing_budget_is_wall_clock() -> None:
    ctx = CheckContext()
    with freeze_time("2026-05-01 12:00:00") as clock:
        assert judge_at(ctx, dict(in_queue=1, initializing=1)) is Outcome.OK
        clock.tick(6 * 60 + 59)
        assert judge_at(ctx, dict(in_queue=1, initializing=1)) is Outcome.OK
        clock.tick(2)
        assert judge_at(ctx, dict(in_queue=1, initializing=1)) is Outcome.INITIALIZING_TOO_LONG


def test_initializing_budget_restarts_when_workers_come_up() -> None:
    ctx = CheckContext()
    with freeze_time("2026-05-01 12:00:00") as clock:
        judge_at(ctx, dict(in_queue=1, initializing=1))
        clock.tick(5 * 60)
        assert judge_at(ctx, dict(running=1)) is Outcome.OK
        clock.tick(60)
        judge_at(ctx, dict(in_queue=1, initializing=1))
        clock.tick(5 * 60)
        assert judge_at(ctx, dict(in_queue=1, initializing=1)) is Outcome.OK


def test_configured_initializing_budget_is_used() -> None:
    ctx = CheckContext()
    with freeze_time("2026-05-01 12:00:00") as clock:
        judge_at(ctx, dict(initializing=1), initializing_budget=60.0)
        clock.tick(61)
        assert judge_at(ctx, dict(initializing=1), initializing_budget=60.0) \
            is Outcome.INITIALIZING_TOO_LONG


def test_failure_window_slides_on_the_wall_clock() -> None:
    ctx = CheckContext()
    with freeze_time("2026-05-01 12:00:00") as clock:
        judge_at(ctx, dict(failed=0, running=1))
        for failed in (1, 2):
            clock.tick(60)
            assert judge_at(ctx, dict(failed=failed, running=1)) is Outcome.OK
        clock.tick(60)
        assert judge_at(ctx, dict(failed=3, running=1)) is Outcome.JOBS_FAILING
        clock.tick(9 * 60 + 30)  # the first failure leaves the 10-minute window
        assert judge_at(ctx, dict(failed=3, running=1)) is Outcome.OK
