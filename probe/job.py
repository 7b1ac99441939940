"""A job: the checks of one endpoint that run together at one interval.

Planners turn the config into jobs; everything that depends on what actually runs (the
declared checks, the ledger's planned checks, how long a shutdown may wait) reads the jobs.
A job carries its own parameters (which prompt it asks, the completion room a context check
needs) and may override the endpoint's attempt settings (a paid round trip is tried once,
under its own deadline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    # (check, the check whose answer it reads): checks judged from another check's answer in
    # the same run, with no request of their own (``fold_readers``).
    derived: tuple[tuple[str, str], ...] = ()

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


def fold_readers(jobs: Sequence[Job], reads: Callable[[str], str | None]) -> list[Job]:
    """A check that reads another check's answer (``CheckSpec.reads``: the context fit reads
    the model card /v1/models returns) makes no request of its own where that check runs at
    the same interval: its one-check job is folded into the job of the same endpoint,
    interval and attempt settings that runs the check it reads, and every job names the
    checks it judges from another's answer (``Job.derived``). Elsewhere (its own interval,
    the check it reads not planned) it runs on its own."""
    def key(job: Job, check: str) -> tuple[str, float, float | None, int | None, str]:
        return job.endpoint.name, job.interval_s, job.timeout_s, job.tries, check

    hosts = {key(job, check): i for i, job in enumerate(jobs) for check in job.checks}
    merged = list(jobs)
    folded: set[int] = set()
    for i, job in enumerate(jobs):
        source = reads(job.checks[0]) if len(job.checks) == 1 else None
        host = hosts.get(key(job, source)) if source is not None else None
        if host is None or host == i or host in folded:
            continue
        into = merged[host]
        clash = any(k in into.params and into.params[k] != v for k, v in job.params.items())
        if job.checks[0] in into.checks or clash:
            continue
        merged[host] = replace(into, checks=(*into.checks, *job.checks),
                               params={**into.params, **job.params})
        folded.add(i)
    planned = []
    for i, job in enumerate(merged):
        if i in folded:
            continue
        pairs = tuple((check, source) for check in job.checks
                      if (source := reads(check)) is not None and source != check
                      and source in job.checks)
        planned.append(replace(job, derived=pairs) if pairs else job)
    return planned
