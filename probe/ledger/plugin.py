"""The ledger feature as a value: the ``ledger:`` and ``learning:`` sections, the daemon
start-up hook that keeps the ledger beside the probing loop, and the ``ledger``/``learning``
commands."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.config.model import Config, ConfigExtension
from probe.features import Attachment, Feature, Host
from probe.job import Job
from probe.ledger import cli
from probe.ledger.book import LedgerBook, latest_entries, read_entries
from probe.ledger.chain import LedgerEntry, verify
from probe.ledger.learning import LearningFileError, append_learning
from probe.ledger.metrics import LedgerMetrics
from probe.ledger.observer import Ledger
from probe.ledger.settings import LearningSettings, parse_learning, parse_ledger, validate
from probe.ledger.watch import ChainWatch

log = logging.getLogger(__name__)


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


STATUS_ENTRIES = 10  # ledger entries on the status page


def status_part(path: Path, watch: ChainWatch) -> dict[str, Any]:
    """The status page's view of the ledger: the last entries and the chain's state (read
    in the listener's thread with a connection of its own)."""
    head = watch.head
    chain = {"checked": watch.checked, "valid": watch.valid if watch.checked else None,
             "verified_through": head.id if head else None,
             "head": head.short_hash if head else None,
             "problem": str(watch.problem) if watch.problem else None}
    if not path.is_file():
        return {"chain": chain, "entries": []}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone():
            return {"chain": chain, "entries": []}
        entries = latest_entries(conn, STATUS_ENTRIES)
    finally:
        conn.close()
    return {"chain": chain, "entries": [
        {"id": e.id, "ts": e.ts, "severity": e.severity, "endpoint": e.endpoint,
         "event": e.event, "pattern": e.pattern, "hash": e.short_hash} for e in entries]}


def start_ledger(host: Host) -> Attachment:
    config = host.config
    learning = LearningSettings.of(config)
    exporter = LearningExporter(learning.path) \
        if learning is not None and learning.path is not None else None
    caught_up = [exporter is None]
    watch = ChainWatch(db=config.storage.path)

    def upkeep(conn: sqlite3.Connection) -> None:
        if not caught_up[0] and exporter is not None:  # entries from before a restart
            caught_up[0] = True
            exporter(conn, [])
        watch(conn)

    def written(conn: sqlite3.Connection, entries: list[LedgerEntry]) -> None:
        for entry in entries:  # what was learned, in the journal too (already redacted)
            log.info("ledger #%d %s %s: %s", entry.id, entry.severity, entry.endpoint,
                     entry.pattern)
        if exporter is not None:
            exporter(conn, entries)

    book = LedgerBook(config.storage.path, on_written=written, maintenance=upkeep,
                      redact=host.redact)
    ledger = Ledger(book, redact=host.redact, standing=host.standing)
    host.restore(ledger.saved)  # an episode (and its streaks) goes on across a restart

    def on_plan(config: Config, jobs: Sequence[Job]) -> None:
        """Endpoints may have come or gone (a reload, a discovery run)."""
        ledger.sync_config(config, jobs, host.verdict)

    return Attachment(close=book.close, on_plan=on_plan,
                      collectors=(LedgerMetrics(book, watch, exporter),),
                      judged=(ledger.judged,), changed=(ledger.changed,),
                      status_parts={"ledger": lambda: status_part(config.storage.path, watch)})


FEATURE = Feature(
    name="ledger",
    config=ConfigExtension(sections={"ledger": parse_ledger, "learning": parse_learning},
                           validators=(validate,)),
    startup=(start_ledger,),
    commands=(cli.add_parser,),
)
