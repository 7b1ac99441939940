"""Prometheus exposition, rendered at scrape time from ``FleetState`` by a custom collector.

The registry is passed in (never the global one) so tests build a fresh one and read
values with ``registry.get_sample_value``. Features register collectors of their own on the
same registry (client_python's custom-collector pattern).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from probe import __version__
from probe.outcome import Outcome
from probe.state import FleetState, Snapshot

log = logging.getLogger(__name__)
P = "runpod_probe_"


class StoreStats(Protocol):
    written_total: int
    errors_total: int
    dropped_total: int
    pending: int


class ProbeCollector(Collector):
    def __init__(self, state: FleetState, store: StoreStats | None = None) -> None:
        self.state = state
        self.store = store

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        yield from _endpoint_metrics(snap)
        yield from _check_metrics(snap)
        yield from _daemon_metrics(snap, self.store)


def _labels(*values: Any) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _endpoint_metrics(snap: Snapshot) -> Iterator[Metric]:
    info = GaugeMetricFamily(P + "endpoint_info", "Configured endpoints (value 1).",
                             labels=["endpoint", "kind", "url"])
    up = GaugeMetricFamily(P + "endpoint_up", "1 when every check of the endpoint last "
                           "passed; 0 when any failed, was never run or could not observe it.",
                           labels=["endpoint", "kind"])
    max_len = GaugeMetricFamily(P + "max_model_len", "max_model_len reported by /v1/models "
                                "for the expected (or first) served model.",
                                labels=["endpoint", "model"])
    for name, meta in sorted(snap.endpoints.items()):
        info.add_metric(_labels(name, meta["kind"], meta["url"]), 1)
        latest = [snap.checks.get((name, c)) for c in meta["checks"]]
        all_ok = bool(latest) and all(s is not None and s.latest is not None and s.latest.ok
                                      for s in latest)
        up.add_metric(_labels(name, meta["kind"]), 1 if all_ok else 0)
        models = snap.checks.get((name, "models"))
        if models and models.latest and models.latest.details.get("max_model_len"):
            details = models.latest.details
            max_len.add_metric(_labels(name, details.get("model")), details["max_model_len"])
    yield from (info, up, max_len)


def _check_metrics(snap: Snapshot) -> Iterator[Metric]:
    labels = ["endpoint", "check"]
    up = GaugeMetricFamily(P + "up", "1 only when the check's last result was ok; never-probed "
                           "and unknown are 0.", labels=labels)
    outcome = GaugeMetricFamily(P + "outcome", "The check's current outcome (value 1); "
                                '"unknown" before the first result.', labels=[*labels, "outcome"])
    results = CounterMetricFamily(P + "results", "Probe results by outcome.",
                                  labels=[*labels, "outcome"])
    retried = CounterMetricFamily(P + "retried_successes", "Passes that needed a retry.",
                                  labels=labels)
    latency = HistogramMetricFamily(P + "latency_seconds", "Duration of the last attempt of "
                                    "each check.", labels=labels)
    status = GaugeMetricFamily(P + "last_http_status", "HTTP status of the last response.",
                               labels=labels)
    attempts = GaugeMetricFamily(P + "last_attempts", "Attempts the last result needed.",
                                 labels=labels)
    success_ts = GaugeMetricFamily(P + "last_success_timestamp_seconds", "Unix time of the "
                                   "last ok result.", labels=labels)
    probe_ts = GaugeMetricFamily(P + "last_probe_timestamp_seconds", "Unix time of the last "
                                 "result.", labels=labels)
    for (endpoint, check), state in sorted(snap.checks.items()):
        lv = _labels(endpoint, check)
        latest = state.latest
        up.add_metric(lv, 1 if latest is not None and latest.ok else 0)
        current = latest.outcome if latest is not None else Outcome.UNKNOWN
        outcome.add_metric([*lv, str(current)], 1)
        for name, count in sorted(state.outcomes.items()):
            results.add_metric([*lv, name], count)
        retried.add_metric(lv, state.retried_ok_total)
        if latest is not None:
            latency.add_metric(lv, state.latency.buckets(), state.latency.total)
            attempts.add_metric(lv, latest.attempts)
            probe_ts.add_metric(lv, latest.started_at.timestamp())
            if latest.http_status is not None:
                status.add_metric(lv, latest.http_status)
        if state.last_success_ts is not None:
            success_ts.add_metric(lv, state.last_success_ts)
    yield from (up, outcome, results, retried, latency, status, attempts, success_ts, probe_ts)


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
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return registry


def serve(registry: CollectorRegistry, host: str, port: int) -> Any:
    """Start the /metrics HTTP server in a thread; returns the server (call .shutdown())."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


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
