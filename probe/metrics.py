"""Prometheus exposition, rendered at scrape time from ``FleetState`` by a custom collector.

The registry is passed in (never the global one) so tests build a fresh one and read
values with ``registry.get_sample_value``. Features register collectors of their own on the
same registry (client_python's custom-collector pattern).

The families with a series per endpoint or check are ``probe.exposition.Family``: one
snapshot of the state is taken per scrape and written straight to text from it (no
``Sample`` per series). A check's lines are written when its result arrives
(``probe.check_series``) and an endpoint's label texts are kept from one scrape to the next,
so a scrape of 10,000 endpoints mostly joins text (about 0.1 s of CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from probe import __version__
from probe.check_series import CHECK_LABELS, families
from probe.exposition import Family, Kept, Lines, escape_value, go_number, label_text
from probe.state import DaemonStats, EndpointView, FleetState, Snapshot
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


class ProbeCollector(Collector):
    def __init__(self, state: FleetState, store: StoreStats | None = None) -> None:
        self.state = state
        self.store = store
        self.texts = Texts()

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        self.texts.trim(len(snap.endpoints), len(snap.checks))
        yield from _endpoint_metrics(snap, self.texts)
        yield from _check_metrics(snap, self.texts)
        yield from _schedule_metrics(snap, self.texts)
        yield from _daemon_metrics(snap, self.store)

    def describe(self) -> Iterator[Metric]:
        """The families without their series: what registering needs (names), without
        collecting the whole fleet."""
        empty = Snapshot({}, {}, DaemonStats())
        yield from _endpoint_metrics(empty, Texts())
        yield from _check_metrics(empty, Texts())
        yield from _schedule_metrics(empty, Texts())
        yield from _daemon_metrics(empty, self.store)


@dataclass(slots=True)
class EndpointTexts:
    """An endpoint's label texts, as the families write them."""

    kind: str | None
    url: str
    endpoint: str  # endpoint="…"
    info_line: str  # endpoint_info's line: endpoint_info{endpoint="…",kind="…",url="…"} 1.0
    up: str  # endpoint="…",kind="…"
    state: State | None = None  # the state its endpoint_state lines were written for
    state_text: str = ""  # those lines

    @classmethod
    def of(cls, name: str, kind: str | None, url: str) -> EndpointTexts:
        e = f'endpoint="{escape_value(name)}"'
        k = f'kind="{escape_value(kind or "")}"'
        return cls(kind, url, e, f'{INFO_FAMILY}{{{e},{k},url="{escape_value(url)}"}} 1.0\n',
                   f"{e},{k}")

    def state_lines(self, state: State) -> str:
        """The endpoint's ``endpoint_state`` lines while it is in ``state`` (written when it
        changes state)."""
        if state is not self.state:
            self.state_text = "".join(
                f'{STATE_FAMILY}{{{self.endpoint},state="{label}"}} '
                f"{'1.0' if value is state else '0.0'}\n"
                for value, label in zip(STATES, STATE_LABELS, strict=True))
            self.state = state
        return self.state_text


class Texts:
    """Label texts kept from one scrape to the next: a name's escaped text does not change,
    so a scrape of a large fleet builds only the texts of what is new. Cleared when the
    fleet has shrunk well below what is kept."""

    def __init__(self) -> None:
        self._endpoints: dict[str, EndpointTexts] = {}
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

    def of(self, name: str, view: EndpointView) -> EndpointTexts:
        texts = self._endpoints.get(name)
        if texts is None or texts.kind != view.kind or texts.url != view.url:
            texts = self._endpoints[name] = EndpointTexts.of(name, view.kind, view.url)
        return texts

    def check(self, key: tuple[str, ...]) -> str:
        text = self._checks.get(key)
        if text is None:
            text = self._checks[key] = label_text(CHECK_LABELS, key)
        return text

    def trim(self, endpoints: int, checks: int) -> None:
        if len(self._endpoints) > 2 * endpoints + 64:
            self._endpoints.clear()
        if len(self._checks) > 2 * checks + 64:
            self._checks.clear()


def _state_rows(item: tuple[str, EndpointView, EndpointTexts]) -> Iterator[tuple[Any, ...]]:
    name, view, _ = item
    return (((name, label), 1 if value is view.state else 0)
            for value, label in zip(STATES, STATE_LABELS, strict=True))


def _endpoint_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    info = Family(INFO_FAMILY, "Configured endpoints (value 1).", "gauge",
                  labels=["endpoint", "kind", "url"])
    up = Family(P + "endpoint_up", "1 when the endpoint's verdict is up; 0 when it "
                "is down, degraded, in maintenance or not yet known.", "gauge",
                labels=["endpoint", "kind"])
    state = Family(STATE_FAMILY, "Each endpoint's verdict after hysteresis "
                   "(value 1 for the current state).", "gauge", labels=["endpoint", "state"])
    cause = Family(P + "endpoint_cause", "What put the endpoint in its current "
                   "state (value 1; stable for the episode; absent while up).", "gauge",
                   labels=["endpoint", "state", "check", "outcome"])
    max_len = Family(P + "max_model_len", "max_model_len reported by /v1/models "
                     "for the expected (or first) served model.", "gauge",
                     labels=["endpoint", "model"])
    maintenance = Family(P + "maintenance", "1 while the endpoint is in a maintenance window "
                         "(every alert on it is silenced), else 0.", "gauge",
                         labels=["endpoint"])
    # rows end with their label text (names sorted: endpoint, kind, model, state, url), kept
    # across scrapes: an endpoint's texts change only with its kind or URL
    views = _Views(_in_order(snap.endpoints, snap), texts)
    # each family writes its lines from the kept texts (rows are read only for samples)
    info.add_lines(lambda: (t.info_line for _, v, t in views if v.kind is not None),
                   Lines(lambda: (((name, v.kind, v.url), 1) for name, v, _ in views
                                  if v.kind is not None)))
    up_name = up.name
    up.add_lines(lambda: (f"{up_name}{{{t.up}}} {'1.0' if v.state is State.UP else '0.0'}\n"
                          for _, v, t in views if v.kind is not None),
                 Lines(lambda: (((name, v.kind), 1 if v.state is State.UP else 0)
                                for name, v, _ in views if v.kind is not None)))
    # an endpoint's five lines, written when it changes state
    state.add_lines(lambda: (t.state_lines(v.state) for _, v, t in views),
                    Lines(lambda: (row for item in views for row in _state_rows(item))))
    cause.add_rows(lambda: (((name, str(v.state), v.cause.check, v.cause.outcome), 1)
                            for name, v, _ in views
                            if v.cause is not None and v.state is not State.UP))
    len_name = max_len.name
    max_len.add_lines(lambda: (f'{len_name}{{{t.endpoint},model="{escape_value(v.model_label)}"}}'
                               f" {go_number(v.max_model_len)}\n" for _, v, t in views
                               if v.model_label is not None and v.max_model_len is not None),
                      Lines(lambda: (((name, v.model_label), v.max_model_len)
                                     for name, v, _ in views if v.model_label is not None
                                     and v.max_model_len is not None)))
    in_window = maintenance.name
    maintenance.add_lines(lambda: (f"{in_window}{{{t.endpoint}}} "
                                   f"{'1.0' if v.state is State.MAINTENANCE else '0.0'}\n"
                                   for _, v, t in views if v.kind is not None),
                          Lines(lambda: (((name,), 1 if v.state is State.MAINTENANCE else 0)
                                         for name, v, _ in views if v.kind is not None)))
    yield from (info, up, state, cause, max_len, maintenance)


def _schedule_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    interval = Family(P + "check_interval_seconds", "Seconds between two runs of the check, "
                      "as planned (a result older than a few of these is stale).", "gauge",
                      labels=CHECK_LABELS)
    lines = texts.intervals(snap.intervals)
    interval.add_lines(lambda: lines, Lines(lambda: sorted(snap.intervals.items())))
    yield interval


def _check_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    # each check's lines are written when its result arrives (``probe.check_series``)
    yield from families(_in_order(snap.checks, snap), texts.check)


def _in_order(items: dict[Any, V], snap: Snapshot) -> Collection[tuple[Any, V]]:
    """``items`` by name (kept so by the state, else sorted now). Read as they are, not
    listed: a scrape that keeps 10,000 new objects until it ends brings on a collection of
    the young generation in the middle of it."""
    return items.items() if snap.ordered else sorted(items.items())


class _Views:
    """Each endpoint's name, view and label texts, read by each endpoint family in turn."""

    def __init__(self, views: Collection[tuple[str, EndpointView]], texts: Texts) -> None:
        self.views, self.texts = views, texts

    def __iter__(self) -> Iterator[tuple[str, EndpointView, EndpointTexts]]:
        of = self.texts.of
        for name, view in self.views:
            yield name, view, of(name, view)


def _daemon_metrics(snap: Snapshot, store: StoreStats | None) -> Iterator[Metric]:
    d = snap.daemon
    build = GaugeMetricFamily(P + "build_info", "runpod-probe version (value 1).",
                              labels=["version"])
    build.add_metric([__version__], 1)
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


def make_registry(collector: ProbeCollector) -> CollectorRegistry:
    """The daemon's registry: its own collector, and the process's memory, CPU and file
    descriptors (``process_*``; memory against the unit's MemoryMax) and Python's version."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    ProcessCollector(registry=registry)
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
