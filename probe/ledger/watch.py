"""Keep verifying the ledger while the daemon runs, so a broken chain is a metric (and an
alert), not a surprise at the next ``ledger verify``.

Runs in the ledger's writer thread: the entries appended since the last check are verified
against the last good entry (cheap, every writer cycle), and the whole chain at start and
every ``full_every_s`` (an edit behind dropped triggers changes an old entry). Entries removed
from the end leave a valid chain: every cycle the last entry verified must still be there
(one primary-key read), and the full check holds the table against the anchor beside the
database (``probe.ledger.anchor``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from probe.ledger.anchor import (
    AnchorError,
    Head,
    anchor_path,
    anchor_problem,
    has_table,
    read_anchor,
)
from probe.ledger.book import read_entries
from probe.ledger.chain import GENESIS, ChainProblem, ChainReport, LedgerEntry, verify

log = logging.getLogger(__name__)


class ChainWatch:
    """``db``: the database whose anchor the full check reads (None: no anchor check)."""

    def __init__(self, full_every_s: float = 3600.0, db: Path | None = None) -> None:
        self.full_every_s = full_every_s
        self.db = db
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
        try:
            report, head = self._check(conn)
        except sqlite3.OperationalError as exc:  # the table dropped under us, say
            report, head = ChainReport(0, GENESIS, ChainProblem(1, f"cannot be read: {exc}")), None
        if report is None:
            return
        if report.ok:
            self._head = head or self._head
        elif self.valid or report.problem != self.problem:
            log.error("the ledger's hash chain fails verification: %s", report.problem)
        self.valid, self.problem = report.ok, report.problem

    def _check(self, conn: sqlite3.Connection) -> tuple[ChainReport | None, LedgerEntry | None]:
        now = time.monotonic()
        if self._last_full is None or now - self._last_full >= self.full_every_s:
            self._last_full = now
            if not has_table(conn):  # dropped: say what the anchor vouched for
                return self._anchored(conn, ChainReport(0, GENESIS)), None
            entries = read_entries(conn)
            report = verify(entries)
            if report.ok:
                report = self._anchored(conn, report)
            return report, entries[-1] if entries and report.ok else None
        if self._head is not None:  # still there: not removed from the end
            problem = anchor_problem(conn, Head(self._head.id, self._head.hash),
                                     "the running daemon")
            if problem is not None:
                return ChainReport(0, GENESIS, problem), None
        after = self._head.id if self._head is not None else 0
        entries = read_entries(conn, after_id=after)
        if not entries:
            return None, None
        report = verify(entries, after=self._head)
        return report, entries[-1] if report.ok else None

    def _anchored(self, conn: sqlite3.Connection, report: ChainReport) -> ChainReport:
        if self.db is None:
            return report
        try:
            anchor = read_anchor(self.db)
        except AnchorError as exc:
            return ChainReport(report.entries, report.head, ChainProblem(0, str(exc)))
        problem = anchor_problem(conn, anchor, anchor_path(self.db).name) \
            if anchor is not None else None
        return ChainReport(report.entries, report.head, problem)
