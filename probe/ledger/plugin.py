"""The ledger feature as a value: the ``ledger:`` and ``learning:`` sections, the daemon
start-up hook that keeps the ledger beside the probing loop, and the ``ledger``/``learning``
commands."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from probe.config.model import Config, ConfigExtension
from probe.features import Attachment, Feature, Host
from probe.job import Job
from probe.ledger import cli
from probe.ledger.baselines import JUDGED_PER_BATCH, Baselines
from probe.ledger.book import LedgerBook, latest_entries, read_entries
from probe.ledger.chain import LedgerDraft, LedgerEntry, verify
from probe.ledger.groups import groups_of
from probe.ledger.learning import LearningFileError, append_learning
from probe.ledger.lessons import Hold, fold
from probe.ledger.metrics import LedgerMetrics
from probe.ledger.observer import Ledger
from probe.ledger.patterns import IncidentPatterns
from probe.ledger.settings import (
    LearningSettings,
    PatternSettings,
    Target,
    parse_learning,
    parse_ledger,
    validate,
)
from probe.ledger.watch import ChainWatch

log = logging.getLogger(__name__)
# an entry's severity as a log level (and so a journal priority)
LOG_LEVEL = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class LearningExporter:
    """Appends new lessons to every LEARNING.md target from the ledger writer thread: each
    target on its own (one that refuses does not stop the others), each with its filter.
    ``held``: a down entry a fleet incident may still claim holds rows back (``SETTLE``);
    the writer's upkeep tries again until it is decided."""

    def __init__(self, targets: tuple[Target, ...],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 probes: int = 1) -> None:
        self.targets = targets
        self.clock = clock
        self.probes = probes  # the fleet's probes: more than one, and rows name theirs
        self.appended_total = 0
        self.errors_total = 0
        self.held = False
        # each endpoint's probe interval, seconds (how long its down rows wait; per plan)
        self.intervals: Mapping[str, float] = MappingProxyType({})

    def __call__(self, conn: sqlite3.Connection, _written: list[LedgerEntry],
                 final: bool = False) -> None:
        """``final``: the daemon stops; nothing waits any longer (a row held back now would
        not be written until the next start)."""
        entries = read_entries(conn)
        report = verify(entries)
        if not report.ok:  # never export from a ledger that has been tampered with
            self.errors_total += 1
            log.error("not appending to LEARNING.md: %s", report.problem)
            return
        hold = None if final else Hold(self.clock(), self.intervals)
        for target in self.targets:
            try:
                self.appended_total += append_learning(target.path, entries, target.keep.keeps,
                                                       hold, self.probes)
            except (LearningFileError, OSError) as exc:
                self.errors_total += 1
                log.error("cannot append to %s: %s", target.path, exc)
        self.held = fold(entries, hold).held


class PatternWatch:
    """Meta-Patterns from the entries as they are written (writer thread): the whole ledger
    once at start (what was said before a restart is not said again), then each batch's
    new entries; ``tick`` ends patterns that stopped holding. Drafts go back to the book."""

    def __init__(self, book: LedgerBook, settings: PatternSettings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.book = book
        self.detector = IncidentPatterns(settings)
        self.clock = clock
        self.loaded = False

    def load(self, conn: sqlite3.Connection) -> None:
        if not self.loaded:
            self.loaded = True
            self._submit(self.detector.load(read_entries(conn)))

    def written(self, entries: list[LedgerEntry]) -> None:
        if self.loaded:
            self._submit(self.detector.feed(entries))

    def tick(self) -> None:
        if self.loaded:
            self._submit(self.detector.tick(self.clock()))

    def _submit(self, drafts: list[LedgerDraft]) -> None:
        if drafts:
            self.book.submit({}, drafts)


STATUS_ENTRIES = 10  # ledger entries on the status page
HELD_RETRY = timedelta(seconds=10)  # how often held-back rows are tried again


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


class LedgerKeeper:
    """The ledger as the daemon keeps it: the book (its writer thread), the observer that
    drafts entries, and, after each batch in the writer's thread, the pattern watch, the
    LEARNING.md targets and the chain watch. ``clock``: the pattern watch's (tests travel in
    time with it). ``resume``: go on from the regressions the ledger says hold (a restart);
    False for a replay of recorded results from their beginning, judged from a clean slate
    (what it finds again is already in the ledger: the writer appends nothing twice)."""

    def __init__(self, db: Path, learning: LearningSettings | None, patterns: PatternSettings,
                 redact: Callable[[str], str] = lambda text: text,
                 standing: Mapping[str, str] = MappingProxyType({}),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 batch_interval_s: float | None = None, resume: bool = True,
                 instance: str | None = None, probes: int = 1) -> None:
        self.exporter = LearningExporter(learning.all_targets(), clock, probes) \
            if learning is not None else None
        self.closing = False
        self.retry_at: datetime | None = None  # held rows: when to try them again
        self.caught_up = self.exporter is None
        self.watch = ChainWatch(db=db)
        timing = {} if batch_interval_s is None else {"batch_interval_s": batch_interval_s}
        self.book = LedgerBook(db, on_written=self.written, maintenance=self.upkeep,
                               redact=redact, instance=instance, **timing)
        self.patterns = PatternWatch(self.book, patterns, clock)
        self.baselines = Baselines(patterns, self.book.held_regressions()
                                   if resume else set())
        if resume:  # a replay judges from a clean slate
            self.baselines.restore(self.book.hours)
        self.baselines.waiting = self.book.judgements  # filled and judged in its thread
        self.book.hours = []  # loaded once
        self.ledger = Ledger(self.book, redact=redact, standing=standing,
                             baselines=self.baselines)
        self.planned = False  # the group patterns wait for the endpoints' groups

    def sync(self, config: Config, jobs: Sequence[Job], verdict_of: Callable[..., Any],
             now: datetime | None = None) -> list[LedgerDraft]:
        """A new plan: the endpoints that came or went (entries), and each planned
        endpoint's GPU type and data centre for the group patterns (one dict, replaced)."""
        self.patterns.detector.groups.members = groups_of(job.endpoint for job in jobs)
        self.planned = True
        return self.ledger.sync_config(config, jobs, verdict_of, now)

    def close(self) -> None:
        """Keep every baseline's unfinished hour (a restart goes on with it) and the
        verdicts still waiting to be kept, then stop the writer; its last upkeep writes the
        rows still held back."""
        self.closing = True
        self.ledger.flush()
        self.book.keep_hours(self.baselines.unfinished())
        self.book.close()

    def upkeep(self, conn: sqlite3.Connection) -> None:
        if not self.caught_up and self.exporter is not None:  # entries from before a restart
            self.caught_up = True
            self.exporter(conn, [])
        if self.exporter is not None and (self.exporter.held or self.closing):
            now = self.patterns.clock()
            if self.closing or self.retry_at is None or now >= self.retry_at:
                self.retry_at = now + HELD_RETRY
                self.exporter(conn, [], final=self.closing)
        if self.planned:  # the whole ledger once, with the plan's groups known
            self.patterns.load(conn)
        self.patterns.tick()
        # a few series' hourly judgements per batch; at shutdown every one still waiting
        drafts = self.baselines.judge(conn, len(self.book.judgements) if self.closing
                                      else JUDGED_PER_BATCH)
        if drafts:
            self.book.submit({}, drafts)
        self.watch(conn)

    def written(self, conn: sqlite3.Connection, entries: list[LedgerEntry]) -> None:
        for entry in entries:  # what was learned, in the journal too (already redacted),
            # at its severity's level: `journalctl -p warning` shows what went wrong
            log.log(LOG_LEVEL.get(entry.severity, logging.INFO), "ledger #%d %s %s: %s",
                    entry.id, entry.severity, entry.endpoint, entry.pattern)
        self.patterns.written(entries)
        if self.exporter is not None:
            self.exporter(conn, entries)


def start_ledger(host: Host) -> Attachment:
    config = host.config
    keeper = LedgerKeeper(config.storage.path, LearningSettings.of(config),
                          LearningSettings.configured(config).patterns, host.redact,
                          host.standing, instance=config.instance, probes=config.probes)
    configured = LearningSettings.configured(config)
    if configured.enabled and not configured.writes(config.instance):
        log.info("learning: %s is not the LEARNING.md writer (learning.writer: %s); its "
                 "ledger keeps every entry", config.instance, configured.writer)
    ledger, book, watch = keeper.ledger, keeper.book, keeper.watch
    host.restore(ledger.saved)  # an episode (and its streaks) goes on across a restart

    def on_plan(config: Config, jobs: Sequence[Job]) -> None:
        """Endpoints may have come or gone (a reload, a discovery run); a reload may rename
        the probe (the next batch's entries carry the new name)."""
        book.instance = config.instance
        if keeper.exporter is not None:
            keeper.exporter.intervals = MappingProxyType(
                {e.name: e.interval_s for e in config.endpoints})
        keeper.sync(config, jobs, host.verdict)

    return Attachment(close=keeper.close, on_plan=on_plan,
                      collectors=(LedgerMetrics(book, watch, keeper.exporter),),
                      judged=(ledger.judged,), changed=(ledger.changed,),
                      status_parts={"ledger": lambda: status_part(config.storage.path, watch)})


FEATURE = Feature(
    name="ledger",
    config=ConfigExtension(sections={"ledger": parse_ledger, "learning": parse_learning},
                           validators=(validate,)),
    startup=(start_ledger,),
    commands=(cli.add_parser,),
)
