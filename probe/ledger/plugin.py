"""Wiring: the ledger's config sections, its daemon start-up hook and its metrics.

Imported by ``probe.config.features.register_features`` so that loading a config is
enough to make the daemon keep the ledger.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from probe.config import features
from probe.daemon import STARTUP_HOOKS, Daemon
from probe.ledger.book import LedgerBook, read_entries
from probe.ledger.chain import LedgerEntry, verify
from probe.ledger.learning import LearningFileError, append_learning
from probe.ledger.observer import Ledger
from probe.ledger.retention import Pruner
from probe.ledger.settings import LearningSettings, parse_learning, parse_ledger, validate
from probe.ledger.state import LedgerSettings
from probe.metrics import PROVIDERS, P
from probe.outcome import ProbeResult
from probe.state import Snapshot

log = logging.getLogger(__name__)
STATES = ("up", "down", "unknown")


class LearningExporter:
    """Appends new entries to LEARNING.md from the ledger writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.appended_total = 0
        self.errors_total = 0

    def __call__(self, conn: sqlite3.Connection, _written: list[LedgerEntry]) -> None:
        entries = read_entries(conn)
        report = verify(entries)
        if not report.ok:  # never export from a ledger that has been tampered with
            self.errors_total += 1
            log.error("not appending to %s: %s", self.path, report.problem)
            return
        try:
            self.appended_total += append_learning(self.path, entries)
        except (LearningFileError, OSError) as exc:
            self.errors_total += 1
            log.error("cannot append to %s: %s", self.path, exc)


class LedgerMetrics:
    """Read by the /metrics thread: states are replaced whole, counters are plain ints."""

    def __init__(self, book: LedgerBook, pruner: Pruner | None,
                 exporter: LearningExporter | None) -> None:
        self.book, self.pruner, self.exporter = book, pruner, exporter
        self.states: dict[str, str] = {}


def start_ledger(daemon: Daemon) -> Callable[[], None]:
    config = daemon.config
    exporter = None
    learning = config.sections.get("learning")
    if isinstance(learning, LearningSettings):
        exporter = LearningExporter(learning.path)
    pruner = Pruner(config.storage.retention_s) if config.storage.retention_s else None
    caught_up = [exporter is None]

    def upkeep(conn: sqlite3.Connection) -> None:
        if not caught_up[0] and exporter is not None:  # entries from before a restart
            caught_up[0] = True
            exporter(conn, [])
        if pruner is not None:
            pruner(conn)

    book = LedgerBook(config.storage.path, on_written=exporter, maintenance=upkeep)
    ledger = Ledger(book, _settings(config.sections), redact=lambda text: daemon.redactor(text))
    metrics = LedgerMetrics(book, pruner, exporter)
    daemon.state.extra["ledger"] = metrics
    seen = [config]
    ledger.sync_config(config)

    def observe(result: ProbeResult, row_id: int | None) -> None:
        if daemon.config is not seen[0]:  # reloaded: endpoints may have come or gone
            seen[0] = daemon.config
            ledger.sync_config(daemon.config, _settings(daemon.config.sections))
        ledger.observe(result, row_id)
        metrics.states = ledger.current_states()

    metrics.states = ledger.current_states()
    assert daemon.prober is not None
    daemon.prober.observers.append(observe)
    return book.close


def _settings(sections: dict[str, Any]) -> LedgerSettings:
    settings = sections.get("ledger")
    return settings if isinstance(settings, LedgerSettings) else LedgerSettings()


def ledger_metrics(snap: Snapshot) -> Iterator[Metric]:
    metrics = snap.extra.get("ledger")
    if not isinstance(metrics, LedgerMetrics):
        return
    state = GaugeMetricFamily(P + "endpoint_state", "The ledger's view of each endpoint after "
                              "hysteresis (value 1 for the current state).",
                              labels=["endpoint", "state"])
    for name, current in sorted(metrics.states.items()):
        for value in STATES:
            state.add_metric([name, value], 1 if value == current else 0)
    yield state
    yield CounterMetricFamily(P + "ledger_entries", "Ledger entries written by this process.",
                              value=metrics.book.entries_total)
    yield CounterMetricFamily(P + "ledger_write_errors", "Failed ledger writes (retried).",
                              value=metrics.book.errors_total)
    if metrics.exporter is not None:
        yield CounterMetricFamily(P + "learning_rows_appended", "Rows appended to LEARNING.md.",
                                  value=metrics.exporter.appended_total)
        yield CounterMetricFamily(P + "learning_append_errors", "LEARNING.md appends refused "
                                  "or failed.", value=metrics.exporter.errors_total)
    if metrics.pruner is not None:
        yield CounterMetricFamily(P + "results_pruned", "Raw results rolled up and deleted by "
                                  "retention.", value=metrics.pruner.pruned_total)


features.SECTIONS["ledger"] = parse_ledger
features.SECTIONS["learning"] = parse_learning
features.VALIDATORS.append(validate)
STARTUP_HOOKS.append(start_ledger)
PROVIDERS.append(ledger_metrics)
