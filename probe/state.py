"""In-memory view of the fleet, updated after each result and read by /metrics at scrape time.

The event loop writes and the metrics HTTP thread reads, so every access holds one lock;
the collector takes a consistent ``snapshot()``.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probe.config.model import Config
from probe.job import Job
from probe.outcome import Outcome, ProbeResult

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative-at-export bucket counts, the shape Prometheus wants."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out

    def copy(self) -> Histogram:
        clone = Histogram(self.bounds)
        clone.counts, clone.total = list(self.counts), self.total
        return clone


@dataclass(slots=True)
class CheckState:
    latest: ProbeResult | None = None
    last_success_ts: float | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    retried_ok_total: int = 0
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))


@dataclass(slots=True)
class DaemonStats:
    in_flight: int = 0
    lag: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    probes_total: int = 0
    reload_ok: bool = True
    reload_success_ts: float = 0.0
    reloads_total: int = 0
    skipped_runs_total: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    endpoints: dict[str, dict[str, Any]]  # name -> {"kind", "url", "checks"}
    checks: dict[tuple[str, str], CheckState]
    daemon: DaemonStats


class FleetState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[tuple[str, str], CheckState] = {}
        self._endpoints: dict[str, dict[str, Any]] = {}
        self.daemon = DaemonStats()
        # (endpoint, check) pairs reported by no configured endpoint (discovery's own result
        # for RunPod's API): kept when the config changes.
        self._standing: set[tuple[str, str]] = set()

    def configure(self, config: Config, jobs: Sequence[Job]) -> None:
        """Declare every planned check: a configured but never-run check exists and is not up,
        and a check no longer planned (a removed prompt or endpoint) disappears."""
        planned: dict[str, list[str]] = {e.name: [] for e in config.endpoints}
        for job in jobs:
            planned[job.endpoint.name].extend(c for c in job.checks
                                              if c not in planned[job.endpoint.name])
        with self._lock:
            self._endpoints = {e.name: {"kind": e.kind, "url": e.display_url,
                                        "checks": tuple(planned[e.name])}
                               for e in config.endpoints}
            for name, checks in planned.items():
                for check in checks:
                    self._checks.setdefault((name, check), CheckState())
            for key in [k for k in self._checks if k[1] not in planned.get(k[0], ())
                        and k not in self._standing]:
                del self._checks[key]

    def declare_standing(self, endpoint: str, check: str) -> None:
        """A check that belongs to no configured endpoint: declared (never run: not up) and
        kept across config changes."""
        with self._lock:
            self._standing.add((endpoint, check))
            self._checks.setdefault((endpoint, check), CheckState())

    def update(self, result: ProbeResult) -> None:
        with self._lock:
            state = self._checks.setdefault((result.endpoint, result.check), CheckState())
            state.latest = result
            state.outcomes[str(result.outcome)] += 1
            if result.outcome not in (Outcome.SKIPPED_BUDGET,):
                state.latency.observe(result.latency_s)
            if result.ok:
                state.last_success_ts = result.started_at.timestamp()
                if result.retried:
                    state.retried_ok_total += 1
            self.daemon.probes_total += 1

    def latest(self, endpoint: str, check: str) -> ProbeResult | None:
        with self._lock:
            state = self._checks.get((endpoint, check))
            return state.latest if state else None

    def snapshot(self) -> Snapshot:
        with self._lock:
            checks = {key: CheckState(s.latest, s.last_success_ts, Counter(s.outcomes),
                                      s.retried_ok_total, s.latency.copy())
                      for key, s in self._checks.items()}
            daemon = DaemonStats(self.daemon.in_flight, self.daemon.lag.copy(),
                                 self.daemon.probes_total, self.daemon.reload_ok,
                                 self.daemon.reload_success_ts, self.daemon.reloads_total,
                                 self.daemon.skipped_runs_total)
            return Snapshot(dict(self._endpoints), checks, daemon)

    def skipped_run(self, job_id: str) -> None:
        with self._lock:
            self.daemon.skipped_runs_total += 1

    def observe_lag(self, lag_s: float) -> None:
        with self._lock:
            self.daemon.lag.observe(max(lag_s, 0.0))

    def add_in_flight(self, delta: int) -> None:
        with self._lock:
            self.daemon.in_flight += delta
