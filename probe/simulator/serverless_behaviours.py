"""How each simulated serverless endpoint behaves: when its jobs run and how they end, what
its workers look like on ``/health``, and whether the control plane answers at all.
Adding a behaviour is one entry in ``SERVERLESS_BEHAVIOURS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from probe.simulator.jobs import NEVER, EndpointState, JobPlan
from probe.simulator.messages import Response, json_response
from probe.simulator.specs import ServerlessSpec

RETRY_AFTER_S = 2


@dataclass(frozen=True, slots=True)
class Workers:
    idle: int = 0
    initializing: int = 0
    ready: int = 0
    running: int = 0
    throttled: int = 0
    unhealthy: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "idle": self.idle,
            "initializing": self.initializing,
            "ready": self.ready,
            "running": self.running,
            "throttled": self.throttled,
            "unhealthy": self.unhealthy,
        }


Planner = Callable[[EndpointState, ServerlessSpec, float], JobPlan]
WorkerView = Callable[[EndpointState, ServerlessSpec, float], Workers]


@dataclass(frozen=True, slots=True)
class ServerlessBehaviour:
    plan: Planner
    workers: WorkerView
    seeded_queue: int = 0  # inQueue before anyone submits anything
    queue_growth_per_health_read: int = 0
    refusal: Response | None = None  # every route answers this instead
    # Only these worker counters appear on /health (older API answers lack some); None: all.
    worker_keys: tuple[str, ...] | None = None
    status_refusal: Response | None = None  # /status answers this (jobs cannot be followed)


def _warm_plan(state: EndpointState, spec: ServerlessSpec, now: float) -> JobPlan:
    start = now + spec.queue_delay_s
    return JobPlan(start, start + spec.execution_s)


def _failing_plan(state: EndpointState, spec: ServerlessSpec, now: float) -> JobPlan:
    start = now + spec.queue_delay_s
    return JobPlan(start, start + spec.execution_s, fails=True)


def _never_plan(state: EndpointState, spec: ServerlessSpec, now: float) -> JobPlan:
    return JobPlan(NEVER, NEVER)


def _slow_queue_plan(state: EndpointState, spec: ServerlessSpec, now: float) -> JobPlan:
    finish = now + spec.complete_after_s
    return JobPlan(max(now, finish - spec.execution_s), finish)


def _worker_warm(state: EndpointState, spec: ServerlessSpec, now: float) -> bool:
    ready = state.worker_ready_at
    if ready is None or now < ready:
        return False
    idle_since = max(ready, state.last_busy_at)
    return spec.idle_timeout_s is None or now - idle_since <= spec.idle_timeout_s


def _cold_start_plan(state: EndpointState, spec: ServerlessSpec, now: float) -> JobPlan:
    booting = state.worker_ready_at is not None and now < state.worker_ready_at
    if not booting and not _worker_warm(state, spec, now):
        state.worker_ready_at = now + spec.cold_start_s
    assert state.worker_ready_at is not None
    start = max(now + spec.queue_delay_s, state.worker_ready_at)
    return JobPlan(start, start + spec.execution_s)


def _one_worker(state: EndpointState, spec: ServerlessSpec, now: float) -> Workers:
    busy = 1 if state.counts(now)[1] else 0
    return Workers(idle=1 - busy, ready=1 - busy, running=busy)


def _cold_start_workers(state: EndpointState, spec: ServerlessSpec, now: float) -> Workers:
    if state.worker_ready_at is not None and now < state.worker_ready_at:
        return Workers(initializing=1)
    if _worker_warm(state, spec, now):
        return _one_worker(state, spec, now)
    return Workers()


def _fixed(workers: Workers) -> WorkerView:
    return lambda state, spec, now: workers


SERVERLESS_BEHAVIOURS: dict[str, ServerlessBehaviour] = {
    "healthy": ServerlessBehaviour(_warm_plan, _one_worker),
    # The seeded RunPod incident: vLLM crashed at init, the worker is unhealthy, jobs pile up.
    "incident": ServerlessBehaviour(_never_plan, _fixed(Workers(unhealthy=1)), seeded_queue=7),
    "scaled_to_zero": ServerlessBehaviour(_never_plan, _fixed(Workers()), seeded_queue=3),
    "throttled": ServerlessBehaviour(_never_plan, _fixed(Workers(throttled=1)), seeded_queue=2),
    "cold_start": ServerlessBehaviour(_cold_start_plan, _cold_start_workers),
    "jobs_failing": ServerlessBehaviour(_failing_plan, _one_worker),
    "rate_limited": ServerlessBehaviour(
        _never_plan,
        _fixed(Workers()),
        refusal=json_response(
            429, {"error": "Too many requests, slow down."}, (("retry-after", str(RETRY_AFTER_S)),)
        ),
    ),
    # One busy worker with a backlog: /runsync gives up before the job is done.
    "slow_queue": ServerlessBehaviour(_slow_queue_plan, _fixed(Workers(running=1))),
    "initializing_forever": ServerlessBehaviour(
        _never_plan, _fixed(Workers(initializing=1)), seeded_queue=1
    ),
    # The runpod-python 1.7.11-1.10.0 bug: jobs stay queued while workers sit idle.
    "queued_while_idle": ServerlessBehaviour(
        _never_plan,
        _fixed(Workers(idle=2, ready=2)),
        seeded_queue=1,
        queue_growth_per_health_read=1,
    ),
    # RunPod's documented /health example (workers: idle and running only) over a queue
    # that never moves: nothing tells why, so only the stall itself can be seen.
    "legacy_stalled": ServerlessBehaviour(
        _never_plan, _fixed(Workers()), seeded_queue=2, worker_keys=("idle", "running")
    ),
    # Jobs are accepted and stay queued, but /status fails: a round trip cannot follow its
    # job and must cancel it rather than leave it in the queue.
    "status_failing": ServerlessBehaviour(
        _never_plan, _fixed(Workers(unhealthy=1)), seeded_queue=2,
        status_refusal=json_response(500, {"error": "Internal server error."}),
    ),
    "api_error": ServerlessBehaviour(
        _never_plan,
        _fixed(Workers()),
        refusal=json_response(500, {"error": "Internal server error."}),
    ),
}
