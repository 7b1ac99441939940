"""In-memory view of the fleet, updated after each result and read by /metrics at scrape time.

It holds each check's latest result and counters, and each endpoint's verdict
(``probe.verdict``): the one truth every surface reads. The event loop writes; /metrics is
collected in the event loop's own thread (between probes, ``probe.exposition.text``) and the
pages are read from the listener's thread, so every access holds one lock. Work per result
touches one check and one endpoint, never the fleet: each endpoint's view (what the
surfaces show of it) is rebuilt when one of its results may change it, so a snapshot copies
views instead of judging every endpoint again. Watchers (``StateWatcher``: /metrics' series
cache) are told of each check and view that changes, with its new value.
"""

from __future__ import annotations

import bisect
import functools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from probe.check import RoleOf, availability_only
from probe.config.model import Config, Hysteresis
from probe.job import Job
from probe.outcome import NOT_OBSERVED, CheckRole, Outcome, ProbeResult
from probe.verdict import Cause, EndpointVerdict, State, Transition, Window

# Kinds of check. /metrics keeps the latency histogram and the SLI's counters per endpoint
# and kind of check, not per check, so a pod's series do not grow with its checks: "api"
# checks ask a server's API (models, health, vllm_metrics, queue, context), "generation"
# checks wait for tokens or a job (prompts, round trips, the active context probe) and
# "discovery" is runpod-probe's own call to RunPod's API.
API, GENERATION, DISCOVERY = "api", "generation", "discovery"
CHECK_KINDS = (API, GENERATION, DISCOVERY)
GENERATION_CHECKS = frozenset({"roundtrip", "context_active"})
# Each kind's latency buckets: few, around where answers fall and where the alerts look. An
# API call through RunPod's proxy answers in tenths of a second and the latency SLO's
# threshold is one of these bounds (2.5 s by default); a generation takes seconds, a cold
# serverless round trip a minute.
KIND_BUCKETS: dict[str, tuple[float, ...]] = {
    API: (0.25, 1.0, 2.5, 10.0),
    GENERATION: (1.0, 5.0, 15.0, 60.0),
    DISCOVERY: (0.25, 1.0, 2.5, 10.0),
}
LATENCY_BUCKETS = KIND_BUCKETS[API]  # the latency SLO's threshold is one of these
# The per-check histogram's buckets (``metrics: {per_check: true}``).
CHECK_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A check is stale (the RunpodProbeStale alert) when it has had no result for three of its
# intervals plus this long.
STALE_GRACE_S = 300.0
STALE_INTERVALS = 3
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def without_details(result: ProbeResult) -> ProbeResult:
    """What the state keeps of a check's latest result: all of it but its details (what the
    check saw, kept in the result's row in the database). Every reader of the latest result
    (the series, the status page, the demo's table) reads its outcome, message, latency,
    status and time; a prompt's details alone held about 1.5 kB, kept once per prompt of
    every endpoint."""
    if not result.details:
        return result
    return ProbeResult(result.endpoint, result.kind, result.check, result.outcome,
                       result.started_at, result.latency_s, result.attempts, result.url,
                       result.message, result.http_status, {}, result.role)


def check_kind(check: str) -> str:
    """The kind of ``check``: ``api``, ``generation`` or ``discovery``."""
    if check == "discovery":
        return DISCOVERY
    if check.startswith("prompt:") or check in GENERATION_CHECKS:
        return GENERATION
    return API


@functools.lru_cache(maxsize=256)
def checks_by_kind(planned: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """An endpoint's planned checks by kind, shared by the endpoints with the same plan (a
    result's kind's checks are read without the kind of every planned check: 1.1 -> 0.2 us)."""
    out: dict[str, tuple[str, ...]] = {}
    for check in planned:
        kind = check_kind(check)
        out[kind] = (*out.get(kind, ()), check)
    return out


@functools.cache
def les_of(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """A histogram's ``le`` label values."""
    return (*map(str, bounds), "+Inf")


# Native (exponential-bucket) histograms, ``metrics: {native_histograms: true}``: schema 3
# has 8 buckets per power of two, each 2^(1/8) = 1.09 times as wide as the one before, so a
# quantile read from them is within about 4.5 % of the truth (the bucket's middle) whatever
# the latency's scale; values up to the zero threshold (Prometheus's Go client's default)
# count in the zero bucket.
NATIVE_SCHEMA = 3
NATIVE_ZERO_THRESHOLD = 2.0 ** -128
# ``math.frexp``'s fractions [0.5, 1) cut at each bucket's upper bound, as the Go client
# has them for schema 3 (``nativeHistogramBounds[3]``)
_SCHEMA_3_BOUNDS = (0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
                    0.7071067811865475, 0.7711054127039704, 0.8408964152537144,
                    0.9170040432046711)


def native_index(value: float) -> int:
    """The schema-3 bucket holding ``value`` (> 0, finite): ``i`` with ``value`` in
    (2^((i-1)/8), 2^(i/8)]."""
    fraction, exponent = math.frexp(value)
    return bisect.bisect_left(_SCHEMA_3_BOUNDS, fraction) + (exponent - 1) * 8


@dataclass(slots=True)
class Exponential:
    """A native histogram's buckets: the count of each schema-3 bucket that has one and of
    the zero bucket. An observation is one ``frexp``, a bisection of 8 and a dict
    increment; a latency from 1 ms to 100 s falls in one of about 140 buckets."""

    zero_count: int = 0
    positive: dict[int, int] = field(default_factory=dict)
    schema: int = NATIVE_SCHEMA
    zero_threshold: float = NATIVE_ZERO_THRESHOLD

    def observe(self, value: float) -> None:
        if value <= self.zero_threshold or not math.isfinite(value):
            self.zero_count += 1  # (a latency is never negative, infinite or NaN)
            return
        index = native_index(value)
        self.positive[index] = self.positive.get(index, 0) + 1

    def copy(self) -> Exponential:
        return Exponential(self.zero_count, dict(self.positive), self.schema,
                           self.zero_threshold)


@dataclass(slots=True)
class Histogram:
    """Cumulative-at-export bucket counts, the shape Prometheus wants; with ``native``, the
    same observations in exponential buckets too (``Exponential``)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    native: Exponential | None = None

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    @classmethod
    def of(cls, bounds: tuple[float, ...], native: bool) -> Histogram:
        return cls(bounds, native=Exponential() if native else None)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        if self.native is not None:
            self.native.observe(value)

    def buckets(self) -> list[tuple[str, float]]:
        return list(zip(les_of(self.bounds), map(float, accumulate(self.counts)), strict=True))

    def copy(self) -> Histogram:
        clone = object.__new__(Histogram)  # no fresh zero counts to throw away
        clone.bounds, clone.counts, clone.total = self.bounds, self.counts[:], self.total
        clone.native = None if self.native is None else self.native.copy()
        return clone


NO_LATENCY = Histogram(CHECK_LATENCY_BUCKETS)  # shared: never observed
# Counts by outcome before the first is counted: one read-only mapping shared by every
# check and kind of check (they replace theirs when they count one, never change it); a
# dict of its own each was 64 bytes, eight a default pod.
NONE_COUNTED: Mapping[str, int] = MappingProxyType({})


@dataclass(slots=True)
class CheckState:
    """One check's latest result and counters. Once the state holds it, it is not changed:
    a result makes a changed copy (``FleetState.update``), so a snapshot may share it."""

    latest: ProbeResult | None = None
    last_success_ts: float | None = None
    # Its results by outcome (``outcomes``): the passes, and the others by outcome (shared
    # by the copies, replaced when one is counted, never changed): a healthy check's result
    # copies no mapping (one object a result less for the collector to walk).
    ok_total: int = 0
    not_ok: Mapping[str, int] = field(default_factory=lambda: NONE_COUNTED)
    retried_ok_total: int = 0
    # Only with ``metrics: {per_check: true}`` (``FleetState.per_check_latency``); else one
    # shared empty histogram (never changed): a bucket list per check was ~1 kB per pod.
    # A result that observes it replaces it with a changed copy.
    latency: Histogram = field(default_factory=lambda: NO_LATENCY)
    # The SLI's events, declared at 0 so the first failure is visible to rate(): results
    # that observed the endpoint, and those of them that failed.
    observed_total: int = 0
    failed_total: int = 0
    # Unix time after which the check is stale (its last result, or its planning, plus
    # three intervals and STALE_GRACE_S); None: not planned
    stale_at: float | None = None

    @property
    def outcomes(self) -> Counter[str]:
        """Its results by outcome (made when read: read it, do not change it)."""
        counts: Counter[str] = Counter()
        if self.ok_total:
            counts[str(Outcome.OK)] = self.ok_total
        dict.update(counts, self.not_ok)
        return counts

    def count(self, outcome: Outcome) -> None:
        """One more result with ``outcome`` (on a copy not yet held)."""
        if outcome is Outcome.OK:
            self.ok_total += 1
        else:
            name = str(outcome)
            self.not_ok = {**self.not_ok, name: self.not_ok.get(name, 0) + 1}

    def copy(self) -> CheckState:
        clone = object.__new__(CheckState)  # no fresh counters to throw away
        clone.ok_total, clone.not_ok = self.ok_total, self.not_ok
        clone.latest, clone.last_success_ts = self.latest, self.last_success_ts
        clone.retried_ok_total, clone.latency = self.retried_ok_total, self.latency
        clone.observed_total, clone.failed_total = self.observed_total, self.failed_total
        clone.stale_at = self.stale_at
        return clone


@dataclass(slots=True)
class KindStats:
    """One endpoint's checks of one kind together: the SLI's events (declared at 0), its
    results that were not ok by outcome (an outcome is there once a result had it: a
    healthy endpoint has none) and the latency histogram. Once the state holds it, it is not
    changed (a result makes a copy)."""

    latency: Histogram
    observed_total: int = 0
    failed_total: int = 0
    failed_by_outcome: Mapping[str, int] = field(default_factory=lambda: NONE_COUNTED)

    @classmethod
    def of(cls, kind: str, native: bool = False) -> KindStats:
        return cls(Histogram.of(KIND_BUCKETS[kind], native))

    def copy(self) -> KindStats:
        """A copy to change: it shares ``failed_by_outcome``, which is replaced (never
        changed) when a failure is counted: a healthy endpoint's results copy no dict."""
        clone = object.__new__(KindStats)  # (no dataclass __init__: 0.59 -> 0.45 us)
        clone.latency, clone.observed_total = self.latency.copy(), self.observed_total
        clone.failed_total, clone.failed_by_outcome = self.failed_total, self.failed_by_outcome
        return clone


class KindView(NamedTuple):
    """An endpoint's checks of one kind, as /metrics shows them (an endpoint's are told to
    watchers together, in CHECK_KINDS order, after each of its results). A named tuple:
    one is made per result, and a frozen dataclass's __init__ (a setattr per field) cost
    0.59 us against 0.32."""

    kind: str
    stats: KindStats
    stale_at: float | None  # the earliest of its checks' ``stale_at``


@dataclass(frozen=True, slots=True)
class EndpointView:
    """What /metrics shows of one endpoint (``kind`` None: a standing pseudo-endpoint)."""

    kind: str | None
    url: str
    checks: tuple[str, ...]
    state: State
    cause: Cause | None
    model_label: str | None = None
    max_model_len: int | None = None
    since: str | None = None  # when the state began (ISO time)
    window: str | None = None  # the maintenance window's name and reason
    answers: tuple[str, ...] = ()  # its checks that judge governed answers (by their role)


# An endpoint's view and its checks' latest results (in ``view.checks`` order), read together.
Row = tuple[EndpointView, tuple[ProbeResult | None, ...]]


# A served model's name is the server's to choose, so as a label value it is bounded: its
# length, and how many distinct names one endpoint may show (a server minting a new name
# per scrape would otherwise mint a new series per scrape); the rest fold into "other".
MAX_LABEL_CHARS = 120
MAX_MODEL_LABELS = 3
OTHER_LABEL = "other"


def bounded_label(value: str, seen: list[str]) -> str:
    """``value`` as a label, remembered in ``seen`` (this endpoint's labels so far)."""
    text = "".join(c if c.isprintable() else "?" for c in value)[:MAX_LABEL_CHARS]
    if text in seen:
        return text
    if len(seen) >= MAX_MODEL_LABELS:
        return OTHER_LABEL
    seen.append(text)
    return text


@dataclass(slots=True)
class DaemonStats:
    in_flight: int = 0
    lag: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    probes_total: int = 0
    reload_ok: bool = True
    reload_success_ts: float = 0.0
    reloads_total: int = 0
    skipped_runs_total: int = 0
    # The probe's own overload (``probe.loopwatch``): checks not started because they got
    # their slot more than an interval late, results taken as unknown because the event
    # loop stalled during them, and the seconds it stalled.
    overload_skipped_total: int = 0
    overload_unobserved_total: int = 0
    loop_stalled_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    endpoints: dict[str, EndpointView]
    checks: dict[tuple[str, str], CheckState]
    daemon: DaemonStats
    # endpoint -> its kinds of check (configured endpoints; in name order when ``ordered``)
    kinds: dict[str, tuple[KindView, ...]] = field(default_factory=dict)
    # (endpoint, check) -> seconds between its runs (the plan's; the "stale" alert's yardstick)
    intervals: dict[tuple[str, str], float] = field(default_factory=dict)
    # endpoints and checks are in name order (kept so when the plan changes; a result of a
    # check no plan declared leaves them unordered until the next plan)
    ordered: bool = False


class StateWatcher(Protocol):
    """Told of each change, with the new value (None: no longer held), in the thread that
    makes it and under the state's lock: what it keeps of a check or an endpoint's view is
    never behind the state. Also told of everything held when it starts watching."""

    def check_changed(self, key: tuple[str, str], state: CheckState | None) -> None: ...

    def view_changed(self, name: str, view: EndpointView | None) -> None: ...

    def kinds_changed(self, name: str, kinds: tuple[KindView, ...] | None) -> None: ...


def required_checks(config: Config, jobs: Sequence[Job],
                    role_of: RoleOf = availability_only) -> dict[str, tuple[str, ...]]:
    """Endpoint -> the checks its verdict waits for before "up": its own, and those of
    every job run at least as often (the context fit runs as a job of its own), but for
    governed answers (their failing makes it degraded, not down)."""
    required = {e.name: list(e.checks) for e in config.endpoints}
    for job in jobs:
        if job.interval_s <= job.endpoint.interval_s:
            checks = required.setdefault(job.endpoint.name, [])
            checks.extend(c for c in job.checks if c not in checks)
    return {name: tuple(c for c in checks if role_of(c) is not CheckRole.ANSWERS)
            for name, checks in required.items()}


class FleetState:
    def __init__(self, role_of: RoleOf = availability_only,
                 clock: Callable[[], float] = time.time, native: bool = False) -> None:
        """``role_of``: what a planned check's results say (``Plugins.role_of``: each
        check's spec names it); ``clock``: when a check is planned (its stale time counts
        from then); ``native``: latency histograms keep exponential buckets too
        (``metrics: {native_histograms: true}``)."""
        self._role_of = role_of
        self.native = native
        self._clock = clock
        self._watchers: list[StateWatcher] = []
        self._lock = threading.Lock()
        self._checks: dict[tuple[str, str], CheckState] = {}
        self._endpoints: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # kind, url, checks
        self._required: dict[str, tuple[str, ...]] = {}  # endpoint -> checks "up" waits for
        self._answers: dict[str, tuple[str, ...]] = {}  # endpoint -> its governed answers
        self._intervals: dict[tuple[str, str], float] = {}  # (endpoint, check) -> seconds
        self._verdicts: dict[str, EndpointVerdict] = {}
        self._model_labels: dict[str, list[str]] = {}  # endpoint -> label values shown so far
        self._model: dict[str, tuple[str, int]] = {}  # endpoint -> (label, max_model_len)
        self._view_of: dict[str, EndpointView] = {}  # endpoint -> its view, kept current
        self._kinds: dict[str, dict[str, KindStats]] = {}  # endpoint -> kind -> its stats
        self._kinds_of: dict[str, tuple[KindView, ...]] = {}  # endpoint -> its kinds, current
        self._ordered = True  # _checks and _view_of in name order
        self.hysteresis = Hysteresis()
        # each check's own latency histogram is kept: set by the exporter that shows it
        # (``metrics: {per_check: true}``)
        self.per_check_latency = False
        self.daemon = DaemonStats()
        # (endpoint, check) pairs reported by no configured endpoint (discovery's own result
        # for RunPod's API): kept when the config changes.
        self._standing: set[tuple[str, str]] = set()

    def configure(self, config: Config, jobs: Sequence[Job]) -> None:
        """Declare every planned check and endpoint: a configured but never-run check exists
        and is not up, a new endpoint is unknown until judged, and what is no longer planned
        (a removed prompt or endpoint) disappears."""
        planned: dict[str, list[str]] = {e.name: [] for e in config.endpoints}
        for job in jobs:
            checks = planned.setdefault(job.endpoint.name, [])
            checks.extend(c for c in job.checks if c not in checks)
        standing = {endpoint for endpoint, _ in self._standing}
        with self._lock:
            self.hysteresis = Hysteresis.of(config)
            # the endpoints of one plan share its tuples of checks (a fleet has a few plans)
            plans: dict[tuple[str, ...], tuple[str, ...]] = {}

            def shared(checks: tuple[str, ...]) -> tuple[str, ...]:
                return plans.setdefault(checks, checks)
            self._endpoints = {e.name: (e.kind, e.display_url, shared(tuple(planned[e.name])))
                               for e in config.endpoints}
            self._answers = {name: shared(tuple(c for c in checks
                                                if self._role_of(c) is CheckRole.ANSWERS))
                             for name, checks in planned.items()}
            self._required = {name: shared(checks) for name, checks
                              in required_checks(config, jobs, self._role_of).items()}
            # one key tuple per (endpoint, check), shared by the checks and the intervals
            # (and the series cache, told of the checks: ~70 bytes a check each)
            keys = {key: key for key in self._checks}
            self._intervals = {}
            for job in jobs:
                for check in job.checks:
                    key = (job.endpoint.name, check)
                    self._intervals[keys.setdefault(key, key)] = job.interval_s
            now = self._clock()
            kept = self._kinds
            self._kinds = {name: {kind: kept.get(name, {}).get(kind)
                                  or KindStats.of(kind, self.native)
                                  for kind in CHECK_KINDS
                                  if any(check_kind(c) == kind for c in checks)}
                           for name, checks in planned.items()}
            for name, checks in planned.items():
                for check in checks:
                    key = (name, check)
                    self._declare(keys.setdefault(key, key), now)
                verdict = self._verdicts.setdefault(name, EndpointVerdict())
                verdict.plan(set(checks), self._required.get(name, ()))
            for key in [k for k in self._checks if k[1] not in planned.get(k[0], ())
                        and k not in self._standing]:
                del self._checks[key]
                self._tell_check(key, None)
            for name in [n for n in self._verdicts if n not in planned and n not in standing]:
                del self._verdicts[name]
                self._model_labels.pop(name, None)
                self._model.pop(name, None)
            self._order()

    def _declare(self, key: tuple[str, str], now: float) -> None:
        """A check held from now on (not yet run), if it was not already."""
        if key not in self._checks:
            self._checks[key] = state = self._new_check(self._stale_at(key, now))
            self._tell_check(key, state)

    def _new_check(self, stale_at: float | None) -> CheckState:
        latency = (Histogram.of(CHECK_LATENCY_BUCKETS, self.native) if self.per_check_latency
                   else NO_LATENCY)
        return CheckState(latency=latency, stale_at=stale_at)

    def _stale_at(self, key: tuple[str, str], since: float) -> float | None:
        interval = self._intervals.get(key)
        return None if interval is None else since + STALE_INTERVALS * interval + STALE_GRACE_S

    def _tell_check(self, key: tuple[str, str], state: CheckState | None) -> None:
        for watcher in self._watchers:
            watcher.check_changed(key, state)

    def watch(self, watcher: StateWatcher) -> None:
        """Tell ``watcher`` of every check and view held now, then of every change."""
        with self._lock:
            self._watchers.append(watcher)
            for key, state in self._checks.items():
                watcher.check_changed(key, state)
            for name, view in self._view_of.items():
                watcher.view_changed(name, view)
            for name, kinds in self._kinds_of.items():
                watcher.kinds_changed(name, kinds)

    def _order(self) -> None:
        """Checks and views in name order: a scrape reads them so, without sorting."""
        self._checks = dict(sorted(self._checks.items()))
        kept = self._view_of
        self._view_of = {name: self._kept_view(name, self._verdicts[name], kept.get(name))
                         for name in sorted(self._verdicts)}
        for name in kept.keys() - self._view_of.keys():
            for watcher in self._watchers:
                watcher.view_changed(name, None)
        gone = self._kinds_of.keys() - self._kinds.keys()
        self._kinds_of = {}
        for name in sorted(self._kinds):
            self._keep_kinds(name)
        for name in gone:
            for watcher in self._watchers:
                watcher.kinds_changed(name, None)
        self._ordered = True

    def declare_standing(self, endpoint: str, check: str) -> None:
        """A check that belongs to no configured endpoint: declared (never run: not up) and
        kept across config changes."""
        with self._lock:
            self._standing.add((endpoint, check))
            self._declare((endpoint, check), self._clock())
            self._verdicts.setdefault(endpoint, EndpointVerdict())
            self._order()

    def restore(self, saved: dict[str, EndpointVerdict]) -> None:
        """Verdicts kept from before a restart, for the endpoints that are still here (held
        to today's plan)."""
        with self._lock:
            for name, verdict in saved.items():
                if name in self._verdicts:
                    planned = self._endpoints.get(name, (None, "", ()))[2]
                    if planned:
                        verdict.plan(set(planned), self._required.get(name, ()))
                    self._verdicts[name] = verdict
                    self._keep_view(name, verdict)

    def update(self, result: ProbeResult, row_id: int | None = None) -> list[Transition]:
        """Record ``result`` and judge its endpoint; returns what changed (for the ledger)."""
        with self._lock:
            endpoint = result.endpoint
            key = (endpoint, result.check)
            kept = self._checks.get(key)
            if kept is None:  # a check no plan declared
                state = self._new_check(None)
                self._ordered = False
            else:  # a new value: a snapshot holding the one before keeps it as it was
                state = kept.copy()
            self._checks[key] = state
            state.latest = without_details(result)
            state.count(result.outcome)
            ok = result.outcome is Outcome.OK
            observed = result.outcome not in NOT_OBSERVED
            timed = result.outcome is not Outcome.SKIPPED_BUDGET
            if observed:
                state.observed_total += 1
                state.failed_total += not ok
            if timed and self.per_check_latency:
                state.latency = state.latency.copy()
                state.latency.observe(result.latency_s)
            started = result.started_at.timestamp()
            state.stale_at = self._stale_at(key, started)
            kind = check_kind(result.check)
            if self._count_kind(result, kind, ok, observed, timed):
                self._keep_kind(endpoint, kind)
            if ok:
                state.last_success_ts = started
                if result.attempts > 1:  # (result.retried)
                    state.retried_ok_total += 1
            self._tell_check(key, state)
            self.daemon.probes_total += 1
            model_changed = result.role is CheckRole.SERVED_MODEL and self._note_model(result)
            verdict = self._verdicts.get(endpoint)
            if verdict is None:  # an endpoint no plan declared: nothing to judge
                return []
            # The view shows the verdict's state, cause and since, which only the tracks'
            # (state, since, check, outcome) make, and a result feeds one track: while that
            # one shows the same, so does the view (a healthy pod's repeated pass), and
            # it is not built again to be compared (3.8 us CPU a result).
            track = verdict.track_of(result)
            shown = None if track is None else track.shown()
            transitions = verdict.observe(result, row_id, self.hysteresis)
            track = verdict.track_of(result)
            if transitions or model_changed or track is None or track.shown() != shown:
                self._keep_view(endpoint, verdict)
            return transitions

    def _count_kind(self, result: ProbeResult, kind: str, ok: bool, observed: bool,
                    timed: bool) -> bool:
        """The result in its endpoint's counters for its kind of check (a changed copy);
        False for a check no plan declared (counted nowhere)."""
        kinds = self._kinds.get(result.endpoint)
        kept = None if kinds is None else kinds.get(kind)
        if kinds is None or kept is None:
            return False
        kinds[kind] = stats = kept.copy()
        if observed:
            stats.observed_total += 1
            stats.failed_total += not ok
        if not ok:  # observed or not (error, rate_limited, skipped_budget)
            outcome = str(result.outcome)
            failed = stats.failed_by_outcome = dict(stats.failed_by_outcome)  # (shared)
            failed[outcome] = failed.get(outcome, 0) + 1
        if timed:
            stats.latency.observe(result.latency_s)
        return True

    def _keep_kinds(self, name: str) -> None:
        """The endpoint's kinds of check as of now, told to the watchers."""
        kinds = self._kind_views(name, self._endpoints.get(name, (None, "", ()))[2])
        self._kinds_of[name] = kinds
        for watcher in self._watchers:
            watcher.kinds_changed(name, kinds)

    def _keep_kind(self, name: str, kind: str) -> None:
        """The endpoint's kinds of check after a result of ``kind``: only that kind's view
        is new (the others are the same objects, so a watcher may rewrite only what is new)."""
        kept = self._kinds_of.get(name)
        at = None
        for i, view in enumerate(kept or ()):
            if view.kind == kind:
                at = i
                break
        if kept is None or at is None:
            self._keep_kinds(name)
            return
        kinds = (*kept[:at], self._kind_view(name, kind), *kept[at + 1:])
        self._kinds_of[name] = kinds
        for watcher in self._watchers:
            watcher.kinds_changed(name, kinds)

    def set_maintenance(self, endpoint: str, window: Window | None,
                        at: datetime) -> list[Transition]:
        """Put ``endpoint`` in ``window`` (None: out of any); returns what changed."""
        with self._lock:
            verdict = self._verdicts.get(endpoint)
            if verdict is None:
                return []
            url = self._endpoints.get(endpoint, (None, None, ()))[1] or None
            if window is None:
                transitions = verdict.leave_maintenance(endpoint, at, url)
            else:
                transitions = verdict.enter_maintenance(endpoint, window, at, url)
            self._keep_view(endpoint, verdict)
            return transitions

    def in_maintenance(self) -> dict[str, str]:
        """Endpoint -> the key of the window it is in (the windows' clock compares)."""
        with self._lock:
            return {name: v.maintenance.key for name, v in self._verdicts.items()
                    if v.maintenance is not None}

    def _note_model(self, result: ProbeResult) -> bool:
        """The served model and context length the view shows; whether they changed."""
        model, max_len = result.details.get("model"), result.details.get("max_model_len")
        before = self._model.get(result.endpoint)
        if isinstance(model, str) and isinstance(max_len, int) and max_len:
            if before is not None and before[1] == max_len and before[0] == model:
                return False  # (the label of a name already shown is the name)
            seen = self._model_labels.setdefault(result.endpoint, [])
            self._model[result.endpoint] = (bounded_label(model, seen), max_len)
        else:
            self._model.pop(result.endpoint, None)
        return self._model.get(result.endpoint) != before

    def verdict(self, endpoint: str) -> EndpointVerdict | None:
        """The endpoint's verdict object (owned here: read it in the event loop only)."""
        return self._verdicts.get(endpoint)

    def states(self) -> Counter[str]:
        """How many endpoints are in each state (for the daemon's status line); a standing
        pseudo-endpoint (discovery's ``runpod-api``) is not an endpoint and not counted."""
        with self._lock:
            standing = {endpoint for endpoint, _ in self._standing}
            return Counter(verdict.state.value for name, verdict in self._verdicts.items()
                           if name not in standing)

    def standing_outcomes(self) -> dict[str, str]:
        """Each standing check (``runpod-api/discovery``) and its latest outcome."""
        with self._lock:
            out = {}
            for endpoint, check in sorted(self._standing):
                kept = self._checks.get((endpoint, check))
                latest = kept.latest if kept is not None else None
                out[f"{endpoint}/{check}"] = "not run yet" if latest is None else \
                    str(latest.outcome)
            return out

    def durable(self, endpoint: str, check: str) -> dict[str, Any]:
        """What ``check`` keeps across runs and restarts for ``endpoint`` (its own dict)."""
        with self._lock:
            verdict = self._verdicts.get(endpoint)
            if verdict is None:
                return {}
            return verdict.durable.setdefault(check, {})

    def latest(self, endpoint: str, check: str) -> ProbeResult | None:
        with self._lock:
            state = self._checks.get((endpoint, check))
            return state.latest if state else None

    def rows(self, names: Iterable[str]) -> dict[str, Row]:
        """Each named endpoint's view and the latest result of each of its checks, taken
        together under the lock: a row never shows a state its own results have moved past."""
        with self._lock:
            out = {}
            for name in names:
                view = self._view_of.get(name)
                if view is not None:
                    out[name] = (view, tuple(s.latest if (s := self._checks.get((name, c)))
                                             else None for c in view.checks))
            return out

    def views(self) -> dict[str, EndpointView]:
        """Every endpoint's view, without its checks' counters (the status page)."""
        with self._lock:
            return dict(self._view_of)  # views are immutable: a copy of the mapping is enough

    def _keep_view(self, name: str, verdict: EndpointVerdict) -> None:
        self._view_of[name] = self._kept_view(name, verdict, self._view_of.get(name))

    def _kept_view(self, name: str, verdict: EndpointVerdict,
                   kept: EndpointView | None) -> EndpointView:
        """The endpoint's view as of ``verdict``: ``kept`` while nothing in it changed (what
        watchers made of it stays), else a new one, told to the watchers."""
        view = self._view(name, verdict)
        if kept is not None and view == kept:
            return kept
        for watcher in self._watchers:
            watcher.view_changed(name, view)
        return view

    def _view(self, name: str, verdict: EndpointVerdict) -> EndpointView:
        kind, url, planned = self._endpoints.get(name, (None, "", ()))
        label, max_len = self._model.get(name, (None, None))
        window = verdict.maintenance
        return EndpointView(kind, url, planned, verdict.state, verdict.cause, label, max_len,
                            verdict.since, f"{window.name}: {window.reason}" if window else None,
                            self._answers.get(name, ()))

    def _kind_views(self, name: str, planned: tuple[str, ...]) -> tuple[KindView, ...]:
        """The endpoint's kinds of check: a few, whatever the fleet's size."""
        kinds = self._kinds.get(name)
        if not kinds:
            return ()
        stale: dict[str, float] = {}
        for check in planned:
            state = self._checks.get((name, check))
            if state is not None and state.stale_at is not None:
                kind = check_kind(check)
                stale[kind] = min(stale.get(kind, state.stale_at), state.stale_at)
        return tuple(KindView(kind, stats, stale.get(kind)) for kind, stats in kinds.items())

    def _kind_view(self, name: str, kind: str) -> KindView:
        """The endpoint's view of one kind of check (its checks of other kinds not read)."""
        stale: float | None = None
        for check in checks_by_kind(self._endpoints.get(name, (None, "", ()))[2]).get(kind, ()):
            state = self._checks.get((name, check))
            if state is not None and state.stale_at is not None:
                stale = state.stale_at if stale is None else min(stale, state.stale_at)
        return KindView(kind, self._kinds[name][kind], stale)

    def snapshot(self) -> Snapshot:
        """What /metrics shows, as of now, whichever thread reads it: a check's state is
        never changed once held (a result replaces it with a changed copy, a few µs), so a
        snapshot shares them, copying only the mappings (in C: no work per check in Python).
        Read its states, never change them."""
        with self._lock:
            checks = dict(self._checks)
            daemon = DaemonStats(self.daemon.in_flight, self.daemon.lag.copy(),
                                 self.daemon.probes_total, self.daemon.reload_ok,
                                 self.daemon.reload_success_ts, self.daemon.reloads_total,
                                 self.daemon.skipped_runs_total,
                                 self.daemon.overload_skipped_total,
                                 self.daemon.overload_unobserved_total,
                                 self.daemon.loop_stalled_s)
            return Snapshot(dict(self._view_of), checks, daemon, dict(self._kinds_of),
                            self._intervals, self._ordered)

    def skipped_run(self, job_id: str) -> None:
        with self._lock:
            self.daemon.skipped_runs_total += 1

    def overload_skipped(self, checks: int = 1) -> None:
        """Checks not started: the probe is overloaded (``Prober._overloaded``), or one got
        its slot more than its interval late."""
        with self._lock:
            self.daemon.overload_skipped_total += checks

    def overload_unobserved(self) -> None:
        """A result taken as unknown: the event loop stalled during its check."""
        with self._lock:
            self.daemon.overload_unobserved_total += 1

    def loop_stalled(self, stalled_s: float) -> None:
        with self._lock:
            self.daemon.loop_stalled_s += stalled_s

    def observe_lag(self, lag_s: float) -> None:
        with self._lock:
            self.daemon.lag.observe(max(lag_s, 0.0))

    def add_in_flight(self, delta: int) -> None:
        with self._lock:
            self.daemon.in_flight += delta
