"""A job: the checks of one endpoint that run together at one interval.

Planners turn the config into jobs; everything that depends on what actually runs (the
declared checks, the ledger's planned checks, how long a shutdown may wait) reads the jobs.
A job carries its own parameters (which prompt it asks, the completion room a context check
needs) and may override the endpoint's attempt settings (a paid round trip is tried once,
under its own deadline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probe.config.model import Endpoint


@dataclass(frozen=True, slots=True)
class Attempts:
    """How one check is tried: each attempt under ``timeout_s`` (connect, headers, whole
    body), at most ``tries`` attempts, ``retry_delay_s`` apart."""

    timeout_s: float
    tries: int
    retry_delay_s: float

    @classmethod
    def of(cls, endpoint: Endpoint) -> Attempts:
        return cls(endpoint.timeout_s, endpoint.tries, endpoint.retry_delay_s)

    @property
    def bound_s(self) -> float:
        """The longest one check can take, retries included."""
        return self.tries * self.timeout_s + (self.tries - 1) * self.retry_delay_s


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    endpoint: Endpoint
    checks: tuple[str, ...]
    interval_s: float
    # Parameters for the job's checks, e.g. {"prompt": Prompt(...)}; read from the check's
    # context (``ctx.params``).
    params: Mapping[str, Any] = field(default_factory=dict)
    # Overrides of the endpoint's attempt settings (None: the endpoint's own).
    timeout_s: float | None = None
    tries: int | None = None

    @property
    def attempts(self) -> Attempts:
        base = Attempts.of(self.endpoint)
        return Attempts(self.timeout_s if self.timeout_s is not None else base.timeout_s,
                        self.tries if self.tries is not None else base.tries,
                        base.retry_delay_s)

    @property
    def bound_s(self) -> float:
        """The longest one run of the job can take once its checks have their slots: they
        run side by side (``probe.prober``), so its slowest check."""
        return self.attempts.bound_s
