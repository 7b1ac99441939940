"""A job: the checks of one endpoint that run together at one interval.

Planners turn the config into jobs; everything that depends on what actually runs (the
declared checks, the ledger's planned checks, how long a shutdown may wait) reads the jobs.
A job carries its own parameters (which prompt it asks, the completion room a context check
needs) and may override the endpoint's attempt settings (a paid round trip is tried once,
under its own deadline).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from probe.config.model import Endpoint, SchedulerSettings


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


# A check of a run has this share of its attempt's deadline to itself before the next check
# of the run starts beside it (``Job.stagger_s``): 0.5 s at the bench's 5 s deadline, 1 s at
# the default 10 s. A healthy pod answers in a few to a few hundred milliseconds, so its
# checks go one after another over one connection; a hanging check delays the others by
# a tenth of its deadline, not by all of it.
STAGGER_SHARE = 0.1


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

    # Read by every check of every run: computed once (``__post_init__``), not compared.
    attempts: Attempts = field(init=False, compare=False, repr=False)
    stagger_s: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        base = Attempts.of(self.endpoint)
        attempts = Attempts(self.timeout_s if self.timeout_s is not None else base.timeout_s,
                            self.tries if self.tries is not None else base.tries,
                            base.retry_delay_s)
        object.__setattr__(self, "attempts", attempts)
        object.__setattr__(self, "stagger_s", self._stagger(attempts))

    @property
    def requests(self) -> int:
        """The checks of a run that make a request (the derived are judged from another's)."""
        return len(self.checks) - len(self.derived)

    def _stagger(self, attempts: Attempts) -> float:
        """``stagger_s``: how long a check of a run holds its slot before the next begins
        beside it (``probe.prober``: the checks take turns, so a healthy pod's reuse one
        connection): ``STAGGER_SHARE`` of an attempt's deadline, so a check still going by
        then is slow (a healthy check answers in a fraction of it), and never so long that
        the last check could end past the interval: the k-th check (counted from 0) begins
        at the latest k staggers after the first got its slot (plus its own wait for a
        slot, while the probe is busy), and each ends within its attempts' bound (which the
        config keeps within the interval), so (requests - 1) x stagger + bound <= interval."""
        stagger = STAGGER_SHARE * attempts.timeout_s
        if self.requests > 1:
            room = (self.interval_s - attempts.bound_s) / (self.requests - 1)
            stagger = min(stagger, max(0.0, room))
        return stagger

    @property
    def bound_s(self) -> float:
        """The longest one run of the job can take once its checks have their slots: they
        take turns (``probe.prober``), the last starting at most (requests - 1) staggers
        after the first, so the last's attempts bound after those."""
        return max(0, self.requests - 1) * self.stagger_s + self.attempts.bound_s


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


@dataclass(frozen=True, slots=True)
class Connections:
    """The connections a plan can hold open at once (``open_connections``)."""

    kept: int  # kept-alive: one per host the plan asks (a pod's checks take turns over it)
    beside: int  # more for checks in flight beside another of their host's (at most the bound)

    @property
    def total(self) -> int:
        return self.kept + self.beside

    def __str__(self) -> str:
        return (f"{self.kept} kept-alive connections, one per host asked, and up to "
                f"{self.beside} more for checks in flight beside another of their host's")


# ``scheduler.max_concurrent: auto`` (the default): room for every request the plan makes in
# AUTO_ROOM_S to be in flight at once (Little's law: in flight = rate x time each takes),
# never fewer than AUTO_MIN. A RunPod proxy round trip takes a tenth to a few tenths of a
# second: 10,000 default pods ask about 2,070 requests a second, which a fixed 64 in flight
# would carry only while each took under 31 ms (at 0.2 s, about 320 a second: most runs
# skipped as overload); auto gives them 1,034. A limit is still there: a fleet whose every
# endpoint hangs holds at most that many checks (and their connections) open.
AUTO_MIN = 64
AUTO_ROOM_S = 0.5


def concurrency(jobs: Iterable[Job], settings: SchedulerSettings) -> int:
    """Checks in flight at once: ``max_concurrent`` when set, else sized from ``jobs``."""
    if settings.max_concurrent is not None:
        return settings.max_concurrent
    rate = sum(job.requests / job.interval_s for job in jobs if job.interval_s > 0)
    return max(AUTO_MIN, math.ceil(round(rate * AUTO_ROOM_S, 6)))  # (float sums: 1000.0000001)


def open_connections(jobs: Sequence[Job], settings: SchedulerSettings) -> Connections:
    """What ``jobs`` can hold open at once. A job's checks take turns (``probe.prober``), so
    with keep-alive each host asked holds one connection (hosts the endpoints share, like
    serverless's, count once), and a check opens another only while one of its host's is
    busy: another job of the host at the same moment (a prompt beside the checks), or a
    turn handed on past a slow check; at most every request of the host's jobs at once
    but the first, and never more than ``max_concurrent`` checks in flight across the
    fleet. Without keep-alive, the checks in flight. (Side by side the default pod held
    three connections: at 10,000 pods, 30,000 open files against an estimate of 10,000.)"""
    requests: Counter[tuple[str, str]] = Counter()
    for job in jobs:
        # a pod's OpenAI routes and its own are one proxy host: counted once
        first, *others = sorted({_host(job.endpoint.openai_base), _host(job.endpoint.root_url)})
        requests[first] += job.requests
        for host in others:
            requests.setdefault(host, 0)
    bound = concurrency(jobs, settings)
    if not settings.keepalive:
        return Connections(0, min(bound, sum(requests.values())))
    beside = sum(max(0, asked - 1) for asked in requests.values())
    return Connections(len(requests), min(bound, beside))


def _host(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
