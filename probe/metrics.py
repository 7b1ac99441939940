"""Prometheus exposition, rendered at scrape time from ``FleetState`` by a custom collector.

The registry is passed in (never the global one) so tests build a fresh one and read
values with ``registry.get_sample_value``. Features register collectors of their own on the
same registry (client_python's custom-collector pattern).

The families with a series per endpoint or check are ``probe.exposition.text.Family``: their
samples are read from one snapshot of the state per scrape (no ``Sample`` per series unless
asked for), their text from the collector's ``SeriesCache``, which watches the state: a
check's lines are written when its result arrives (``exposition.check_series``) and an endpoint's
when its view changes (``endpoint_lines``), so a scrape of 10,000 endpoints joins text
(about 40 ms of CPU).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, PlatformCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from probe import __version__
from probe.build import commit
from probe.exposition.check_series import CHECK_LABELS, CheckSeries
from probe.exposition.series_cache import Columns, SeriesCache
from probe.exposition.text import (
    Family,
    Kept,
    Lines,
    escape_value,
    go_number,
    histogram_lines,
    label_text,
)
from probe.procfs import ProcSelfCollector
from probe.state import (
    KIND_BUCKETS,
    DaemonStats,
    EndpointView,
    FleetState,
    KindView,
    Snapshot,
    les_of,
)
from probe.verdict import State

log = logging.getLogger(__name__)
V = TypeVar("V")
P = "runpod_probe_"
STATES = tuple(State)
STATE_LABELS = tuple(str(state) for state in STATES)
STATE_FAMILY = P + "endpoint_state"
INFO_FAMILY = P + "endpoint_info"


class StoreStats(Protocol):
    written_total: int
    errors_total: int
    dropped_total: int
    pending: int

    @property
    def pruned_total(self) -> int | None: ...


class ProbeCollector(Collector):
    """The core families, read from ``state``; with ``write_ahead`` (as the daemon runs) its
    series cache watches the state, so the lines are written as the state changes, else
    every scrape writes them all."""

    def __init__(self, state: FleetState, store: StoreStats | None = None,
                 write_ahead: bool = True, per_check: bool = False) -> None:
        self.state = state
        self.store = store
        self.texts = Texts()
        self.per_check = per_check  # ``metrics: {per_check: true}``
        self.checks = CheckSeries.of(per_check)
        self.series: SeriesCache | None = None
        if write_ahead:
            self.series = SeriesCache(self.checks.lines_of, endpoint_lines, kind_lines)
            state.watch(self.series)

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        self.texts.trim(len(snap.checks))
        views, checks = _in_order(snap.endpoints, snap), _in_order(snap.checks, snap)
        kinds = _in_order(snap.kinds, snap)
        if self.series is None:  # every line written by this scrape
            yield from _endpoint_metrics(views, partial(_views_written_now, views))
            yield from _kind_metrics(kinds, partial(_kinds_written_now, kinds))
            yield from self.checks.families(checks, partial(self.checks.written_now, checks))
        else:
            yield from _endpoint_metrics(views, self.series.views.in_order)
            yield from _kind_metrics(kinds, self.series.kinds.in_order)
            yield from self.checks.families(checks, self.series.checks.in_order)
        if self.per_check:
            yield from _schedule_metrics(snap, self.texts)
        yield from _daemon_metrics(snap, self.store)

    def describe(self) -> Iterator[Metric]:
        """The families without their series: what registering needs (names), without
        collecting the whole fleet."""
        empty = Snapshot({}, {}, DaemonStats())
        yield from _endpoint_metrics((), list)
        yield from _kind_metrics((), list)
        yield from self.checks.families((), list)
        if self.per_check:
            yield from _schedule_metrics(empty, Texts())
        yield from _daemon_metrics(empty, self.store)


CAUSE_FAMILY = P + "endpoint_cause"
UP_FAMILY = P + "endpoint_up"
MAX_LEN_FAMILY = P + "max_model_len"
MAINTENANCE_FAMILY = P + "maintenance"
OBSERVATIONS = P + "observations_total"
FAILURES = P + "observation_failures_total"
FAILURES_BY_OUTCOME = P + "failures_by_outcome_total"
LATENCY_FAMILY = P + "latency_seconds"
STALE_FAMILY = P + "stale_at_timestamp_seconds"
KIND_LABELS = ("endpoint", "check_kind")


@functools.cache
def _kind_histogram(kind: str) -> Callable[[str, Sequence[int], Any], str]:
    return histogram_lines(LATENCY_FAMILY, les_of(KIND_BUCKETS[kind]))


def _count(n: int) -> str:
    """A counter's value as ``go_number`` writes it, without its work below a million."""
    return f"{n}.0" if n < 1_000_000 else go_number(n)


def kind_lines(name: str, kind: KindView) -> tuple[str, ...]:
    """The endpoint's lines of one kind of check in each kind family (observations,
    failures, failures by outcome, latency, stale): the SLI's counters, the latency
    histogram and when the first check of the kind goes stale, written after each result
    of that kind (``SeriesCache``)."""
    text = f'check_kind="{kind.kind}",endpoint="{escape_value(name)}"'
    stats = kind.stats
    by_outcome = "".join(
        f'{FAILURES_BY_OUTCOME}{{{text},outcome="{escape_value(outcome)}"}} {_count(n)}\n'
        for outcome, n in sorted(stats.failed_by_outcome.items()))
    stale = ("" if kind.stale_at is None
             else f"{STALE_FAMILY}{{{text}}} {go_number(kind.stale_at)}\n")
    return (f"{OBSERVATIONS}{{{text}}} {_count(stats.observed_total)}\n",
            f"{FAILURES}{{{text}}} {_count(stats.failed_total)}\n",
            by_outcome,
            _kind_histogram(kind.kind)(text, stats.latency.counts, stats.latency.total),
            stale)


def endpoint_lines(name: str, view: EndpointView) -> tuple[str, ...]:
    """The endpoint's lines in each endpoint family (info, up, state, cause, max_model_len,
    maintenance; "" where it has none), from its view: written when the view changes (its
    state, cause, model or window; ``SeriesCache``), not by every scrape."""
    e = f'endpoint="{escape_value(name)}"'
    state = view.state
    states = f'{STATE_FAMILY}{{{e},state="{escape_value(str(state))}"}} 1.0\n'

    cause = view.cause
    caused = "" if cause is None or state is State.UP else (
        f'{CAUSE_FAMILY}{{check="{escape_value(cause.check)}",{e},'
        f'outcome="{escape_value(cause.outcome)}",state="{escape_value(str(state))}"}} 1.0\n')
    model, max_len = view.model_label, view.max_model_len
    sized = "" if model is None or max_len is None else (
        f'{MAX_LEN_FAMILY}{{{e},model="{escape_value(model)}"}} {go_number(max_len)}\n')
    if view.kind is None:  # a standing pseudo-endpoint (discovery's runpod-api): not an
        # endpoint, so no endpoint state or cause (its check's series, and its own alert,
        # RunpodDiscoveryFailing, say it; RunpodEndpointUnknown would repeat it)
        return ("", "", "", "", sized, "")
    k = f'kind="{escape_value(view.kind)}"'
    return (f'{INFO_FAMILY}{{{e},{k},url="{escape_value(view.url)}"}} 1.0\n',
            f"{UP_FAMILY}{{{e},{k}}} {'1.0' if state is State.UP else '0.0'}\n",
            states, caused, sized,
            f"{MAINTENANCE_FAMILY}{{{e}}} {'1.0' if state is State.MAINTENANCE else '0.0'}\n")


class Texts:
    """Label texts kept from one scrape to the next: a name's escaped text does not change,
    so a scrape of a large fleet builds only the texts of what is new. Cleared when the
    fleet has shrunk well below what is kept."""

    def __init__(self) -> None:
        self._checks: dict[tuple[str, ...], str] = {}
        # the plan's intervals (the state's dict, replaced when the plan changes) -> lines
        self._intervals: tuple[dict[tuple[str, str], float], Kept[str]] | None = None

    def intervals(self, intervals: dict[tuple[str, str], float]) -> Kept[str]:
        """``check_interval_seconds``'s lines: written once per plan."""
        if self._intervals is None or self._intervals[0] is not intervals:
            name = P + "check_interval_seconds"
            self._intervals = intervals, Kept(
                f"{name}{{{self.check(key)}}} {go_number(seconds)}\n"
                for key, seconds in sorted(intervals.items()))
        return self._intervals[1]

    def check(self, key: tuple[str, ...]) -> str:
        text = self._checks.get(key)
        if text is None:
            text = self._checks[key] = label_text(CHECK_LABELS, key)
        return text

    def trim(self, checks: int) -> None:
        if len(self._checks) > 2 * checks + 64:
            self._checks.clear()


def _kind_rows(kinds: Collection[tuple[str, tuple[KindView, ...]]],
               value: Callable[[KindView], Any]) -> Iterator[Any]:
    """(labels, value(kind view)) of every endpoint's kinds of check (None: no series)."""
    for name, views in kinds:
        for k in views:
            v = value(k)
            if v is not None:
                yield (name, k.kind), v


def _kinds_written_now(kinds: Collection[tuple[str, tuple[KindView, ...]]]
                       ) -> list[tuple[str, ...]]:
    return [kind_lines(name, view) for name, views in kinds for view in views]


def _views_written_now(views: Collection[tuple[str, EndpointView]]) -> list[tuple[str, ...]]:
    return [endpoint_lines(name, view) for name, view in views]


def _endpoint_metrics(views: Collection[tuple[str, EndpointView]],
                      lines: Callable[[], list[tuple[str, ...]]]) -> Iterator[Metric]:
    """The endpoint families: their text columns of ``lines()`` (every endpoint's lines, in
    order), their samples read from ``views`` (in the same order)."""
    info = Family(INFO_FAMILY, "Configured endpoints (value 1).", "gauge",
                  labels=["endpoint", "kind", "url"])
    up = Family(UP_FAMILY, "1 when the endpoint's verdict is up; 0 when it "
                "is down, degraded, in maintenance or not yet known.", "gauge",
                labels=["endpoint", "kind"])
    state = Family(STATE_FAMILY, "Each endpoint's verdict after hysteresis: one series, "
                   "labelled with the current state (value 1).", "gauge",
                   labels=["endpoint", "state"])
    cause = Family(CAUSE_FAMILY, "What put the endpoint in its current "
                   "state (value 1; stable for the episode; absent while up).", "gauge",
                   labels=["endpoint", "state", "check", "outcome"])
    max_len = Family(MAX_LEN_FAMILY, "max_model_len reported by /v1/models "
                     "for the expected (or first) served model.", "gauge",
                     labels=["endpoint", "model"])
    maintenance = Family(MAINTENANCE_FAMILY, "1 while the endpoint is in a maintenance window "
                         "(every alert on it is silenced), else 0.", "gauge",
                         labels=["endpoint"])
    columns = Columns(lines)
    info.add_lines(partial(columns.column, 0), Lines(lambda: (
        ((name, v.kind, v.url), 1) for name, v in views if v.kind is not None)))
    up.add_lines(partial(columns.column, 1), Lines(lambda: (
        ((name, v.kind), 1 if v.state is State.UP else 0)
        for name, v in views if v.kind is not None)))
    state.add_lines(partial(columns.column, 2), Lines(lambda: (
        ((name, str(v.state)), 1) for name, v in views if v.kind is not None)))
    cause.add_lines(partial(columns.column, 3), Lines(lambda: (
        ((name, str(v.state), v.cause.check, v.cause.outcome), 1) for name, v in views
        if v.cause is not None and v.state is not State.UP and v.kind is not None)))
    max_len.add_lines(partial(columns.column, 4), Lines(lambda: (
        ((name, v.model_label), v.max_model_len) for name, v in views
        if v.model_label is not None and v.max_model_len is not None)))
    maintenance.add_lines(partial(columns.column, 5), Lines(lambda: (
        ((name,), 1 if v.state is State.MAINTENANCE else 0)
        for name, v in views if v.kind is not None)))
    yield from (info, up, state, cause, max_len, maintenance)


def _kind_metrics(kinds: Collection[tuple[str, tuple[KindView, ...]]],
                  lines: Callable[[], list[tuple[str, ...]]]) -> Iterator[Metric]:
    """The families per endpoint and kind of check: their text columns of ``lines()``
    (every endpoint's kind lines, in order), their samples read from ``kinds``."""
    columns = Columns(lines)
    observed = Family(OBSERVATIONS, "Results that observed the endpoint (not unknown, "
                      "rate_limited, skipped_budget or error), per kind of check: the SLI's "
                      "events, declared at 0.", "counter", labels=KIND_LABELS)
    failed = Family(FAILURES, "Observations that were not ok, per kind of check: the SLI's "
                    "bad events, declared at 0.", "counter", labels=KIND_LABELS)
    by_outcome = Family(FAILURES_BY_OUTCOME, "Results that were not ok (observations or "
                        "not), per kind of check and outcome: a series exists once a result "
                        "had its outcome (a healthy endpoint has none).", "counter",
                        labels=(*KIND_LABELS, "outcome"))
    latency = Family(LATENCY_FAMILY, "Duration of the last attempt of each check, per "
                     "endpoint and kind of check.", "histogram", labels=KIND_LABELS)
    stale = Family(STALE_FAMILY, "Unix time at which the first check of this kind goes "
                   "stale: its last result (or its planning) plus three of its intervals "
                   "and 5 minutes.", "gauge", labels=KIND_LABELS)
    observed.add_lines(partial(columns.column, 0), Lines(lambda: _kind_rows(
        kinds, lambda k: k.stats.observed_total)))
    failed.add_lines(partial(columns.column, 1), Lines(lambda: _kind_rows(
        kinds, lambda k: k.stats.failed_total)))
    by_outcome.add_lines(partial(columns.column, 2), Lines(lambda: (
        ((name, k.kind, outcome), n) for name, views in kinds for k in views
        for outcome, n in sorted(k.stats.failed_by_outcome.items()))))
    latency.add_lines(partial(columns.column, 3), Lines(lambda: (
        (labels, *hist) for labels, hist in _kind_rows(
            kinds, lambda k: (k.stats.latency.buckets(), k.stats.latency.total)))))
    stale.add_lines(partial(columns.column, 4), Lines(lambda: _kind_rows(
        kinds, lambda k: k.stale_at)))
    yield from (observed, failed, by_outcome, latency, stale)


def _schedule_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    interval = Family(P + "check_interval_seconds", "Seconds between two runs of the check, "
                      "as planned (a result older than a few of these is stale).", "gauge",
                      labels=CHECK_LABELS)
    lines = texts.intervals(snap.intervals)
    interval.add_lines(lambda: lines, Lines(lambda: sorted(snap.intervals.items())))
    yield interval


def _in_order(items: dict[Any, V], snap: Snapshot) -> Collection[tuple[Any, V]]:
    """``items`` by name (kept so by the state, else sorted now). Read as they are, not
    listed: a scrape that keeps 10,000 new objects until it ends brings on a collection of
    the young generation in the middle of it."""
    return items.items() if snap.ordered else sorted(items.items())


def _daemon_metrics(snap: Snapshot, store: StoreStats | None) -> Iterator[Metric]:
    d = snap.daemon
    build = GaugeMetricFamily(P + "build_info", "runpod-probe version and the git commit it "
                              "was installed or runs from (value 1).",
                              labels=["version", "commit"])
    build.add_metric([__version__, commit()], 1)
    yield build
    yield GaugeMetricFamily(P + "probes_in_flight", "Checks running now.", value=d.in_flight)
    lag = HistogramMetricFamily(P + "scheduler_lag_seconds", "Delay between a check's "
                                "scheduled time and its start.")
    lag.add_metric([], d.lag.buckets(), d.lag.total)
    yield lag
    yield CounterMetricFamily(P + "skipped_runs", "Scheduled runs skipped because the job's "
                              "previous run was still going (checks slower than the interval).",
                              value=d.skipped_runs_total)
    yield GaugeMetricFamily(P + "config_last_reload_successful", "1 if the last config "
                            "(re)load was applied.", value=1 if d.reload_ok else 0)
    yield GaugeMetricFamily(P + "config_last_reload_success_timestamp_seconds",
                            "Unix time of the last applied config.", value=d.reload_success_ts)
    if store is not None:
        yield CounterMetricFamily(P + "store_written", "Results written to SQLite.",
                                  value=store.written_total)
        yield CounterMetricFamily(P + "store_errors", "Failed SQLite writes (retried).",
                                  value=store.errors_total)
        yield CounterMetricFamily(P + "store_dropped", "Results lost because the pending "
                                  "buffer overflowed or shutdown could not write them.",
                                  value=store.dropped_total)
        yield GaugeMetricFamily(P + "store_pending_results", "Results queued, not yet on disk.",
                                value=store.pending)
        if store.pruned_total is not None:
            yield CounterMetricFamily(P + "results_pruned", "Raw results rolled up and deleted "
                                      "by retention.", value=store.pruned_total)


def make_registry(collector: ProbeCollector) -> CollectorRegistry:
    """The daemon's registry: its own collector, and the process's memory, CPU and file
    descriptors (``process_*``, read from /proc/self alone: the unit's ``ProcSubset=pid``
    hides what prometheus_client's collector needs; memory against the unit's MemoryMax)
    and Python's version."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    registry.register(ProcSelfCollector())
    PlatformCollector(registry=registry)
    return registry


class Guarded(Collector):
    """A feature's collector, kept from blanking /metrics: if it raises, its families are
    left out of this scrape and the error is logged."""

    def __init__(self, inner: Collector) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self.inner.collect())
        except Exception:  # noqa: BLE001 - one broken collector must not blank /metrics
            log.exception("metrics collector %s failed", type(self.inner).__name__)
            return iter(())
        return iter(families)
