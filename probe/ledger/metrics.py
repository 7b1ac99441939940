"""The ledger's series on /metrics: the writes of the ledger, LEARNING.md and retention.
(Each endpoint's state is the core's verdict, exported by ``probe.metrics``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.metrics import P


class Identified(Protocol):
    @property
    def id(self) -> int: ...


class Counted(Protocol):
    """A writer's counters and the head it knows the table has (the ledger book)."""

    entries_total: int
    errors_total: int
    dropped_total: int

    @property
    def head(self) -> Identified | None: ...


class Chain(Protocol):
    valid: bool


class LearningCounts(Protocol):
    appended_total: int
    errors_total: int


class LedgerMetrics(Collector):
    """Counters written by the ledger's writer thread, read by the /metrics thread."""

    def __init__(self, book: Counted, chain: Chain,
                 exporter: LearningCounts | None = None) -> None:
        self.book, self.chain, self.exporter = book, chain, exporter

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(P + "ledger_chain_valid", "1 while the ledger's hash chain "
                                "verifies, 0 when an entry does not match (see the log).",
                                value=1 if self.chain.valid else 0)
        head = self.book.head  # one reference, replaced by the writer once per batch
        yield GaugeMetricFamily(P + "ledger_head_id", "Id of the ledger's last entry as its "
                                "writer knows it: the head found at start, then the last "
                                "entry committed (0: empty). `ledger verify --metrics` "
                                "fails when the table ends before it.",
                                value=head.id if head is not None else 0)
        yield CounterMetricFamily(P + "ledger_entries", "Ledger entries written by this "
                                  "process.", value=self.book.entries_total)
        yield CounterMetricFamily(P + "ledger_write_errors", "Failed ledger writes (retried).",
                                  value=self.book.errors_total)
        yield CounterMetricFamily(P + "ledger_dropped", "Ledger entries lost because shutdown "
                                  "could not write them (logged with their number).",
                                  value=self.book.dropped_total)
        if self.exporter is not None:
            yield CounterMetricFamily(P + "learning_rows_appended", "Rows appended to "
                                      "LEARNING.md.", value=self.exporter.appended_total)
            yield CounterMetricFamily(P + "learning_append_errors", "LEARNING.md appends "
                                      "refused or failed.", value=self.exporter.errors_total)
