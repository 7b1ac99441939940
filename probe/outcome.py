"""The closed vocabulary of what a probe can observe, and the values that carry it.

A failing endpoint is data, never an exception: every check returns a ``Observation``
and ``attempts`` wraps it, with timing and attempts, into a ``ProbeResult``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class CheckRole(enum.StrEnum):
    """What a check's results say about its endpoint, named in its ``CheckSpec`` and carried
    by every result it makes: the verdict judges by role, never by a check's name."""

    AVAILABILITY = "availability"  # failing results take the endpoint down
    # availability, and the served model and context window it reports (changes are facts)
    SERVED_MODEL = "served_model"
    ANSWERS = "answers"  # judges a governed answer: failing makes the endpoint degraded


class Outcome(enum.StrEnum):
    """Every result gets exactly one of these."""

    OK = "ok"
    # HTTP answers that are not a success.
    HTTP_404 = "http_404"  # pod stopped/destroyed or port not exposed (RunPod proxy)
    HTTP_502 = "http_502"  # proxy up, nothing listening on the pod's port
    HTTP_5XX = "http_5xx"
    HTTP_4XX = "http_4xx"
    UNAUTHORIZED = "unauthorized"  # 401/403: the key is wrong or lacks permission
    RATE_LIMITED = "rate_limited"  # 429 from a control plane
    # Transport.
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    # Body / semantics.
    BAD_RESPONSE = "bad_response"  # not JSON, wrong shape, body over the size cap
    MODEL_MISSING = "model_missing"
    CONTEXT_TOO_SMALL = "context_too_small"
    # Engine liveness (vLLM /health).
    ENGINE_DEAD = "engine_dead"
    ENGINE_STUCK = "engine_stuck"
    # Governed prompts.
    EXPECTATION_FAILED = "expectation_failed"
    STREAM_BROKEN = "stream_broken"
    EMPTY_ANSWER = "empty_answer"
    CONTEXT_EXCEEDED = "context_exceeded"
    SKIPPED_BUDGET = "skipped_budget"
    # Serverless queue conditions.
    CRASH_LOOPING = "crash_looping"
    QUEUE_STALLED = "queue_stalled"
    NO_WORKERS = "no_workers"
    THROTTLED = "throttled"
    INITIALIZING_TOO_LONG = "initializing_too_long"
    JOBS_FAILING = "jobs_failing"
    QUEUED_WHILE_IDLE = "queued_while_idle"
    JOB_FAILED = "job_failed"
    # The state could not be observed (control plane unreachable): never up, never down.
    UNKNOWN = "unknown"
    # A bug in runpod-probe itself; logged with a traceback, never shown as an outage.
    ERROR = "error"


# Outcomes that say nothing about the endpoint itself: the probe could not observe it.
NOT_OBSERVED: frozenset[Outcome] = frozenset(
    {Outcome.UNKNOWN, Outcome.RATE_LIMITED, Outcome.SKIPPED_BUDGET, Outcome.ERROR}
)

# Outcomes worth another attempt within the same check (transient by nature).
RETRYABLE: frozenset[Outcome] = frozenset(
    {
        Outcome.TIMEOUT,
        Outcome.CONNECT_ERROR,
        Outcome.HTTP_502,
        Outcome.HTTP_5XX,
        Outcome.BAD_RESPONSE,
        Outcome.STREAM_BROKEN,
    }
)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one attempt of one check observed."""

    outcome: Outcome
    message: str = ""
    http_status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One stored row: a check of one endpoint, after retries."""

    endpoint: str
    kind: str
    check: str
    outcome: Outcome
    started_at: datetime  # timezone-aware UTC
    latency_s: float  # monotonic, last attempt
    attempts: int
    url: str  # never contains a secret
    message: str = ""
    http_status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    role: CheckRole = CheckRole.AVAILABILITY  # its check's, from the check's spec

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def retried(self) -> bool:
        """A pass that needed more than one attempt is not a clean pass."""
        return self.attempts > 1
