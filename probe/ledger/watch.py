"""Keep verifying the ledger while the daemon runs, so a broken chain is a metric (and an
alert), not a surprise at the next ``ledger verify``.

Runs in the ledger's writer thread: the entries appended since the last check are verified
against the last good entry (cheap, every writer cycle), and the whole chain at start and
every ``full_every_s`` (an edit behind dropped triggers changes an old entry).
"""

from __future__ import annotations

import logging
import sqlite3
import time

from probe.ledger.book import read_entries
from probe.ledger.chain import ChainProblem, LedgerEntry, verify

log = logging.getLogger(__name__)


class ChainWatch:
    def __init__(self, full_every_s: float = 3600.0) -> None:
        self.full_every_s = full_every_s
        self.valid = True
        self.problem: ChainProblem | None = None
        self._head: LedgerEntry | None = None  # the last entry verified
        self._last_full: float | None = None

    @property
    def checked(self) -> bool:
        """False until the first full verification ran: "not yet known" is not "valid"."""
        return self._last_full is not None

    @property
    def head(self) -> LedgerEntry | None:
        """The last entry verified."""
        return self._head

    def __call__(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if self._last_full is None or now - self._last_full >= self.full_every_s:
            self._last_full = now
            entries = read_entries(conn)
            report = verify(entries)
            head = entries[-1] if entries and report.ok else None
        else:
            after = self._head.id if self._head is not None else 0
            entries = read_entries(conn, after_id=after)
            if not entries:
                return
            report = verify(entries, after=self._head)
            head = entries[-1] if report.ok else None
        if report.ok:
            self._head = head or self._head
        elif self.valid or report.problem != self.problem:
            log.error("the ledger's hash chain fails verification: %s", report.problem)
        self.valid, self.problem = report.ok, report.problem
