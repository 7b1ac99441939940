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
from probe.exposition.protobuf import Spec, histogram_of, metrics_of
from probe.exposition.series_cache import Columns, Read, SeriesCache, by_column
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
                 write_ahead: bool = True, per_check: bool = False,
                 protobuf: bool = False) -> None:
        self.state = state
        self.store = store
        self.texts = Texts()
        self.per_check = per_check  # ``metrics: {per_check: true}``
        if per_check:  # each check's own latency histogram is shown: the state keeps it
            state.per_check_latency = True
        self.checks = CheckSeries.of(per_check)
        self.series: SeriesCache | None = None
        # the protobuf page's series (``protobuf``: the daemon offers it, with native
        # histograms), written ahead like the text's from the start; else from the first
        # scrape that reads it (``protobuf_series``)
        self.proto: SeriesCache | None = None
        if write_ahead:
            self.series = SeriesCache(self.checks.lines_of, endpoint_lines, kind_lines,
                                      self.checks.still)
            state.watch(self.series)
            if protobuf:
                self.protobuf_series()

    def protobuf_series(self) -> SeriesCache:
        """The protobuf page's cache, watching the state from the first scrape that reads it
        (told every check and view then, each change after)."""
        if self.proto is None:
            self.proto = SeriesCache(self.checks.proto_of, endpoint_proto, kind_proto,
                                     self.checks.still)
            self.state.watch(self.proto)
        return self.proto

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        self.texts.trim(len(snap.checks))
        views, checks = _in_order(snap.endpoints, snap), _in_order(snap.checks, snap)
        kinds = _in_order(snap.kinds, snap)
        if self.series is None:  # every line written by this scrape
            yield from _endpoint_metrics(views, lambda: by_column(_views_written_now(views)))
            yield from _kind_metrics(kinds, lambda: by_column(_kinds_written_now(kinds)))
            yield from self.checks.families(
                checks, lambda: by_column(self.checks.written_now(checks)))
        else:
            yield from _endpoint_metrics(views, self.series.views.columns,
                                         lambda: self.protobuf_series().views.columns())
            yield from _kind_metrics(kinds, self.series.kinds.columns,
                                     lambda: self.protobuf_series().kinds.columns())
            yield from self.checks.families(checks, self.series.checks.columns,
                                            lambda: self.protobuf_series().checks.columns())
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
    failed = stats.failed_by_outcome
    by_outcome = "" if not failed else "".join(  # (a healthy endpoint has none)
        f'{FAILURES_BY_OUTCOME}{{{text},outcome="{escape_value(outcome)}"}} {_count(n)}\n'
        for outcome, n in sorted(failed.items()))
    stale = ("" if kind.stale_at is None
             else f"{STALE_FAMILY}{{{text}}} {go_number(kind.stale_at)}\n")
    latency = stats.latency
    return (f"{OBSERVATIONS}{{{text}}} {_count(stats.observed_total)}\n",
            f"{FAILURES}{{{text}}} {_count(stats.failed_total)}\n",
            by_outcome,
            _kind_histogram(kind.kind)(text, latency.counts, latency.total),
            stale)


def kind_rows(name: str, kind: KindView) -> tuple[tuple[Any, ...], ...]:
    """The endpoint's series of one kind of check in each kind family, as rows
    (``Family.add_metric``'s): the samples and protobuf of ``kind_lines``'s lines."""
    labels = (name, kind.kind)
    stats = kind.stats
    latency = stats.latency
    return (((labels, stats.observed_total),),
            ((labels, stats.failed_total),),
            tuple(((name, kind.kind, outcome), n)
                  for outcome, n in sorted(stats.failed_by_outcome.items())),
            ((labels, latency.buckets(), latency.total, latency.native),),
            () if kind.stale_at is None else ((labels, kind.stale_at),))


def view_rows(name: str, v: EndpointView) -> tuple[tuple[Any, ...], ...]:
    """The endpoint's series in each endpoint family, as rows: the samples and protobuf of
    ``endpoint_lines``'s lines."""
    sized = () if v.model_label is None or v.max_model_len is None else (
        ((name, v.model_label), v.max_model_len),)
    if v.kind is None:  # a standing pseudo-endpoint (see endpoint_lines)
        return ((), (), (), (), sized, ())
    state = v.state
    cause = () if v.cause is None or state is State.UP else (
        ((name, str(state), v.cause.check, v.cause.outcome), 1),)
    return ((((name, v.kind, v.url), 1),),
            (((name, v.kind), 1 if state is State.UP else 0),),
            (((name, str(state)), 1),),
            cause, sized,
            (((name,), 1 if state is State.MAINTENANCE else 0),))


@functools.cache
def _specs(families: Callable[[], tuple[Family, ...]]) -> tuple[Spec, ...]:
    return tuple(Spec(f.type, f.labelnames) for f in families())


def kind_proto(name: str, kind: KindView) -> tuple[bytes, ...]:
    """``kind_rows`` as protobuf ``metric`` fields (the protobuf page's cache), written
    after each result of the kind: its labels encoded once for the families that share
    them, the histogram read from its counts."""
    observed, failed, by_outcome, latency, stale = _specs(_kind_families)
    labels = observed.labels((name, kind.kind))
    stats = kind.stats
    return (observed.value(labels, stats.observed_total),
            failed.value(labels, stats.failed_total),
            metrics_of(by_outcome, [((name, kind.kind, outcome), n) for outcome, n
                                    in sorted(stats.failed_by_outcome.items())]),
            latency.histogram(labels, histogram_of(stats.latency)),
            b"" if kind.stale_at is None else stale.value(labels, kind.stale_at))


def endpoint_proto(name: str, view: EndpointView) -> tuple[bytes, ...]:
    """``view_rows`` as protobuf ``metric`` fields (the protobuf page's cache)."""
    return tuple([metrics_of(spec, rows) for spec, rows in
                  zip(_specs(_endpoint_families), view_rows(name, view), strict=True)])


def _each(items: Collection[tuple[str, V]],
          rows_of: Callable[[str, V], tuple[tuple[Any, ...], ...]], family: int) -> Iterator[Any]:
    """Every item's rows of one family, in order."""
    for name, item in items:
        yield from rows_of(name, item)[family]


def _each_kind(kinds: Collection[tuple[str, tuple[KindView, ...]]],
               family: int) -> Iterator[Any]:
    for name, views in kinds:
        for view in views:
            yield from kind_rows(name, view)[family]


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


def _kinds_written_now(kinds: Collection[tuple[str, tuple[KindView, ...]]]
                       ) -> list[tuple[str, ...]]:
    return [kind_lines(name, view) for name, views in kinds for view in views]


def _views_written_now(views: Collection[tuple[str, EndpointView]]) -> list[tuple[str, ...]]:
    return [endpoint_lines(name, view) for name, view in views]


def _endpoint_families() -> tuple[Family, ...]:
    """The endpoint families (info, up, state, cause, max_model_len, maintenance), empty."""
    return (Family(INFO_FAMILY, "Configured endpoints (value 1).", "gauge",
                   labels=["endpoint", "kind", "url"]),
            Family(UP_FAMILY, "1 when the endpoint's verdict is up; 0 when it "
                   "is down, degraded, in maintenance or not yet known.", "gauge",
                   labels=["endpoint", "kind"]),
            Family(STATE_FAMILY, "Each endpoint's verdict after hysteresis: one series, "
                   "labelled with the current state (value 1).", "gauge",
                   labels=["endpoint", "state"]),
            Family(CAUSE_FAMILY, "What put the endpoint in its current "
                   "state (value 1; stable for the episode; absent while up).", "gauge",
                   labels=["endpoint", "state", "check", "outcome"]),
            Family(MAX_LEN_FAMILY, "max_model_len reported by /v1/models "
                   "for the expected (or first) served model.", "gauge",
                   labels=["endpoint", "model"]),
            Family(MAINTENANCE_FAMILY, "1 while the endpoint is in a maintenance window "
                   "(every alert on it is silenced), else 0.", "gauge",
                   labels=["endpoint"]))


def _endpoint_metrics(views: Collection[tuple[str, EndpointView]],
                      lines: Read,
                      proto: Read | None = None
                      ) -> Iterator[Metric]:
    """The endpoint families: their text columns of ``lines()`` (every endpoint's lines, in
    order), their protobuf columns of ``proto()`` (else written from ``views``), their
    samples read from ``views`` (in the same order)."""
    columns = Columns(lines)
    protos = None if proto is None else Columns(proto)
    families = _endpoint_families()
    for i, family in enumerate(families):
        family.add_lines(partial(columns.column, i), Lines(
            partial(_each, views, view_rows, i),
            None if protos is None else partial(protos.column, i)))
    yield from families


def _kind_families() -> tuple[Family, ...]:
    """The families per endpoint and kind of check, empty."""
    return (Family(OBSERVATIONS, "Results that observed the endpoint (not unknown, "
                   "rate_limited, skipped_budget or error), per kind of check: the SLI's "
                   "events, declared at 0.", "counter", labels=KIND_LABELS),
            Family(FAILURES, "Observations that were not ok, per kind of check: the SLI's "
                   "bad events, declared at 0.", "counter", labels=KIND_LABELS),
            Family(FAILURES_BY_OUTCOME, "Results that were not ok (observations or "
                   "not), per kind of check and outcome: a series exists once a result "
                   "had its outcome (a healthy endpoint has none).", "counter",
                   labels=(*KIND_LABELS, "outcome")),
            Family(LATENCY_FAMILY, "Duration of the last attempt of each check, per "
                   "endpoint and kind of check.", "histogram", labels=KIND_LABELS),
            Family(STALE_FAMILY, "Unix time at which the first check of this kind goes "
                   "stale: its last result (or its planning) plus three of its intervals "
                   "and 5 minutes.", "gauge", labels=KIND_LABELS))


def _kind_metrics(kinds: Collection[tuple[str, tuple[KindView, ...]]],
                  lines: Read,
                  proto: Read | None = None
                  ) -> Iterator[Metric]:
    """The families per endpoint and kind of check: their text columns of ``lines()``
    (every endpoint's kind lines, in order), their protobuf columns of ``proto()`` (else
    written from ``kinds``), their samples read from ``kinds``."""
    columns = Columns(lines)
    protos = None if proto is None else Columns(proto)
    families = _kind_families()
    for i, family in enumerate(families):
        family.add_lines(partial(columns.column, i), Lines(
            partial(_each_kind, kinds, i),
            None if protos is None else partial(protos.column, i)))
    yield from families


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
    yield CounterMetricFamily(P + "overload_skipped_checks", "Checks not started because "
                              "the probe is overloaded (more checks than it can run): their "
                              "slot would come, or came, too late.",
                              value=d.overload_skipped_total)
    yield CounterMetricFamily(P + "overload_unobserved", "Check results taken as unknown "
                              "because the probe's event loop stalled for a good part of "
                              "their deadline: timeouts that are the probe's, not the "
                              "endpoint's.", value=d.overload_unobserved_total)
    yield CounterMetricFamily(P + "loop_stalled_seconds", "Seconds the probe's event loop "
                              "was stalled (late by more than 50 ms): time no answer was read.",
                              value=d.loop_stalled_s)
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
