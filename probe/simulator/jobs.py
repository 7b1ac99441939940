"""Job bookkeeping of one simulated serverless endpoint.

A job gets a plan when it is submitted (when it leaves the queue, when it ends, whether it
fails); its status is read off the monotonic clock, so nothing has to run in the background.
Counters are settled lazily, whenever the endpoint is looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

NEVER = math.inf
RESULT_TTL_S = 30 * 60.0  # RunPod keeps /run results 30 min
MAX_JOBS = 10_000  # a probe that keeps submitting to a dead endpoint must not grow memory
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class JobPlan:
    start_at: float  # NEVER: the job stays IN_QUEUE
    finish_at: float
    fails: bool = False


@dataclass(slots=True)
class Job:
    id: str
    input: Any
    submitted_at: float
    plan: JobPlan
    cancelled_at: float | None = None
    settled: bool = False  # already counted in completed/failed

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if now < self.plan.start_at:
            return "IN_QUEUE"
        if now < self.plan.finish_at:
            return "IN_PROGRESS"
        return "FAILED" if self.plan.fails else "COMPLETED"

    @property
    def ended_at(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.plan.finish_at


@dataclass(slots=True)
class EndpointState:
    """Mutable state of one endpoint; touched only on the simulator's event loop."""

    behaviour: str
    jobs: dict[str, Job] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    retried: int = 0
    seeded_queue: int = 0  # queued requests that exist only as a number
    worker_ready_at: float | None = None  # when a booting worker is (or was) up
    last_busy_at: float = 0.0
    retries_per_failure: int = 1

    def submit(self, job: Job) -> None:
        self.jobs[job.id] = job
        if job.plan.finish_at != NEVER:
            self.last_busy_at = max(self.last_busy_at, job.plan.finish_at)
        if len(self.jobs) > MAX_JOBS:
            del self.jobs[next(iter(self.jobs))]

    def settle(self, now: float) -> None:
        expired = []
        for job in self.jobs.values():
            status = job.status(now)
            if status in TERMINAL and not job.settled:
                job.settled = True
                if status == "COMPLETED":
                    self.completed += 1
                elif status == "FAILED":
                    self.failed += 1
                    self.retried += self.retries_per_failure
            if job.settled and now - job.ended_at > RESULT_TTL_S:
                expired.append(job.id)
        for job_id in expired:
            del self.jobs[job_id]

    def counts(self, now: float) -> tuple[int, int]:
        """(inQueue, inProgress)."""
        statuses = [job.status(now) for job in self.jobs.values()]
        return self.seeded_queue + statuses.count("IN_QUEUE"), statuses.count("IN_PROGRESS")

    def cancel(self, job_id: str, now: float) -> Job | None:
        job = self.jobs.get(job_id)
        if job is not None and job.status(now) in ("IN_QUEUE", "IN_PROGRESS"):
            job.cancelled_at = now
        return job

    def purge(self, now: float) -> int:
        """Drop queued jobs; running ones carry on."""
        queued = [job for job in self.jobs.values() if job.status(now) == "IN_QUEUE"]
        for job in queued:
            del self.jobs[job.id]
        removed = len(queued) + self.seeded_queue
        self.seeded_queue = 0
        return removed

    def queued_jobs(self, now: float) -> list[Job]:
        return [job for job in self.jobs.values() if job.status(now) == "IN_QUEUE"]
