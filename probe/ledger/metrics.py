"""The ledger's series on /metrics: each endpoint's state after hysteresis, and the writes
of the ledger, LEARNING.md and retention."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.metrics import P

STATES = ("up", "down", "unknown")


class Counted(Protocol):
    """A writer's counters (the ledger book)."""

    entries_total: int
    errors_total: int


class LearningCounts(Protocol):
    appended_total: int
    errors_total: int


class PruneCounts(Protocol):
    pruned_total: int


class LedgerMetrics(Collector):
    """States are set one endpoint at a time by the event loop (never a copy of the whole
    fleet per result) and read under a lock by the /metrics thread."""

    def __init__(self, book: Counted, pruner: PruneCounts | None = None,
                 exporter: LearningCounts | None = None) -> None:
        self.book, self.pruner, self.exporter = book, pruner, exporter
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}

    def set_state(self, endpoint: str, state: str | None) -> None:
        with self._lock:
            if state is None:
                self._states.pop(endpoint, None)
            else:
                self._states[endpoint] = state

    def replace_states(self, states: dict[str, str]) -> None:
        with self._lock:
            self._states = dict(states)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            states = sorted(self._states.items())
        family = GaugeMetricFamily(P + "endpoint_state", "The ledger's view of each endpoint "
                                   "after hysteresis (value 1 for the current state).",
                                   labels=["endpoint", "state"])
        for name, current in states:
            for value in STATES:
                family.add_metric([name, value], 1 if value == current else 0)
        yield family
        yield CounterMetricFamily(P + "ledger_entries", "Ledger entries written by this "
                                  "process.", value=self.book.entries_total)
        yield CounterMetricFamily(P + "ledger_write_errors", "Failed ledger writes (retried).",
                                  value=self.book.errors_total)
        if self.exporter is not None:
            yield CounterMetricFamily(P + "learning_rows_appended", "Rows appended to "
                                      "LEARNING.md.", value=self.exporter.appended_total)
            yield CounterMetricFamily(P + "learning_append_errors", "LEARNING.md appends "
                                      "refused or failed.", value=self.exporter.errors_total)
        if self.pruner is not None:
            yield CounterMetricFamily(P + "results_pruned", "Raw results rolled up and deleted "
                                      "by retention.", value=self.pruner.pruned_total)
