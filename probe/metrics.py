"""Prometheus exposition, rendered at scrape time from ``FleetState`` by a custom collector.

The registry is passed in (never the global one) so tests build a fresh one and read
values with ``registry.get_sample_value``. Features register collectors of their own on the
same registry (client_python's custom-collector pattern).

The families with a series per endpoint or check are ``probe.exposition.Family``: one
snapshot of the state is taken per scrape and written straight to text from it (no
``Sample`` per series), so a scrape of 10,000 endpoints stays well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from probe import __version__
from probe.exposition import Family, Written, escape_value, label_text
from probe.outcome import Outcome
from probe.state import DaemonStats, EndpointView, FleetState, Snapshot
from probe.verdict import State

log = logging.getLogger(__name__)
P = "runpod_probe_"
CHECK_LABELS = ("endpoint", "check")
STATES = tuple(State)
STATE_LABELS = tuple(str(state) for state in STATES)
STATE_FAMILY = P + "endpoint_state"


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
    info: str  # endpoint="…",kind="…",url="…"
    up: str  # endpoint="…",kind="…"
    states: tuple[str, ...]  # endpoint="…",state="…" for each State, in order
    lines: dict[State, str] = field(default_factory=dict)  # state -> endpoint_state's lines

    @classmethod
    def of(cls, name: str, kind: str | None, url: str) -> EndpointTexts:
        e = f'endpoint="{escape_value(name)}"'
        k = f'kind="{escape_value(kind or "")}"'
        return cls(kind, url, e, f'{e},{k},url="{escape_value(url)}"', f"{e},{k}",
                   tuple(f'{e},state="{value}"' for value in STATE_LABELS))

    def state_lines(self, state: State) -> str:
        """The endpoint's ``endpoint_state`` lines while it is in ``state``."""
        lines = self.lines.get(state)
        if lines is None:
            lines = self.lines[state] = "".join(
                f"{STATE_FAMILY}{{{text}}} {'1.0' if value is state else '0.0'}\n"
                for value, text in zip(STATES, self.states, strict=True))
        return lines


class Texts:
    """Label texts kept from one scrape to the next: a name's escaped text does not change,
    so a scrape of a large fleet builds only the texts of what is new. Cleared when the
    fleet has shrunk well below what is kept."""

    def __init__(self) -> None:
        self._endpoints: dict[str, EndpointTexts] = {}
        self._checks: dict[tuple[str, ...], str] = {}

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


def _with_outcome(lv: tuple[str, str], text: str, outcome: str,
                  value: float) -> tuple[tuple[str, ...], float, str]:
    """A row of a family labelled (endpoint, check, outcome): ``outcome`` sorts last."""
    return (*lv, str(outcome)), value, f'{text},outcome="{escape_value(str(outcome))}"'


def _endpoint_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    info = Family(P + "endpoint_info", "Configured endpoints (value 1).", "gauge",
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
    views = [(name, v, texts.of(name, v)) for name, v in sorted(snap.endpoints.items())]
    info.add_rows(lambda: (((name, v.kind, v.url), 1, t.info)
                           for name, v, t in views if v.kind is not None), texts=True)
    up.add_rows(lambda: (((name, v.kind), 1 if v.state is State.UP else 0, t.up)
                         for name, v, t in views if v.kind is not None), texts=True)
    # an endpoint's five lines, written once for each state it has been in
    state.add_written(lambda: views, Written(lambda item: item[2].state_lines(item[1].state),
                                             _state_rows))
    cause.add_rows(lambda: (((name, str(v.state), v.cause.check, v.cause.outcome), 1)
                            for name, v, _ in views
                            if v.cause is not None and v.state is not State.UP))
    max_len.add_rows(lambda: (((name, v.model_label), v.max_model_len,
                               f'{t.endpoint},model="{escape_value(v.model_label)}"')
                              for name, v, t in views
                              if v.model_label is not None and v.max_model_len is not None),
                     texts=True)
    maintenance.add_rows(lambda: (((name,), 1 if v.state is State.MAINTENANCE else 0,
                                   t.endpoint)
                                  for name, v, t in views if v.kind is not None), texts=True)
    yield from (info, up, state, cause, max_len, maintenance)


def _schedule_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    interval = Family(P + "check_interval_seconds", "Seconds between two runs of the check, "
                      "as planned (a result older than a few of these is stale).", "gauge",
                      labels=CHECK_LABELS)
    interval.add_rows(lambda: ((key, seconds, texts.check(key))
                               for key, seconds in sorted(snap.intervals.items())), texts=True)
    yield interval


def _check_metrics(snap: Snapshot, texts: Texts) -> Iterator[Metric]:
    labels = ["endpoint", "check"]
    up = Family(P + "up", "1 only when the check's last result was ok; never-probed "
                "and unknown are 0.", "gauge", labels=labels)
    outcome = Family(P + "outcome", "The check's current outcome (value 1); "
                     '"unknown" before the first result.', "gauge", labels=[*labels, "outcome"])
    results = Family(P + "results", "Probe results by outcome.", "counter",
                     labels=[*labels, "outcome"])
    retried = Family(P + "retried_successes", "Passes that needed a retry.", "counter",
                     labels=labels)
    latency = Family(P + "latency_seconds", "Duration of the last attempt of "
                     "each check.", "histogram", labels=labels)
    status = Family(P + "last_http_status", "HTTP status of the last response.", "gauge",
                    labels=labels)
    attempts = Family(P + "last_attempts", "Attempts the last result needed.", "gauge",
                      labels=labels)
    success_ts = Family(P + "last_success_timestamp_seconds", "Unix time of the "
                        "last ok result.", "gauge", labels=labels)
    probe_ts = Family(P + "last_probe_timestamp_seconds", "Unix time of the last "
                      "result.", "gauge", labels=labels)
    observed = Family(P + "observations", "Results that observed the endpoint "
                      "(not unknown, rate_limited, skipped_budget or error): the "
                      "SLI's events, declared at 0.", "counter", labels=labels)
    failures = Family(P + "observation_failures", "Observations that were not ok: "
                      "the SLI's bad events, declared at 0.", "counter", labels=labels)
    # Each family reads the snapshot when it is written: no series is held before then. A
    # check's labels are written once per scrape and shared by every family (rows end with
    # their label text).
    checks = [(lv, s, texts.check(lv)) for lv, s in sorted(snap.checks.items())]
    up.add_rows(lambda: ((lv, 1 if s.latest is not None and s.latest.ok else 0, t)
                         for lv, s, t in checks), texts=True)
    outcome.add_rows(lambda: (_with_outcome(lv, t, s.latest.outcome if s.latest is not None
                                            else Outcome.UNKNOWN, 1)
                              for lv, s, t in checks), texts=True)
    # "ok" is declared at 0, so the first pass (and every rate) is visible from the start
    results.add_rows(lambda: (_with_outcome(lv, t, name, s.outcomes.get(name, 0))
                              for lv, s, t in checks
                              for name in sorted(s.outcomes.keys() | {"ok"})), texts=True)
    retried.add_rows(lambda: ((lv, s.retried_ok_total, t) for lv, s, t in checks), texts=True)
    observed.add_rows(lambda: ((lv, s.observed_total, t) for lv, s, t in checks), texts=True)
    failures.add_rows(lambda: ((lv, s.failed_total, t) for lv, s, t in checks), texts=True)
    latency.add_rows(lambda: ((lv, s.latency.buckets(), s.latency.total, t)
                              for lv, s, t in checks if s.latest is not None), texts=True)
    attempts.add_rows(lambda: ((lv, s.latest.attempts, t) for lv, s, t in checks
                               if s.latest is not None), texts=True)
    probe_ts.add_rows(lambda: ((lv, s.latest.started_at.timestamp(), t) for lv, s, t in checks
                               if s.latest is not None), texts=True)
    status.add_rows(lambda: ((lv, s.latest.http_status, t) for lv, s, t in checks
                             if s.latest is not None and s.latest.http_status is not None),
                    texts=True)
    success_ts.add_rows(lambda: ((lv, s.last_success_ts, t) for lv, s, t in checks
                                 if s.last_success_ts is not None), texts=True)
    yield from (up, outcome, results, retried, latency, status, attempts, success_ts, probe_ts,
                observed, failures)


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
