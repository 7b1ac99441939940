"""The ledger feature's start-up hook, on a fake host: it declares the book's metrics, the
judged and changed listeners and the status page's part, and restores the verdicts kept from
before a restart; each new plan is recorded, and closing stops the book's writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from fake_host import FakeHost, as_host
from helpers import config_of, endpoint, plan
from test_patterns import T0, incidents

from probe.config.model import StorageSettings
from probe.ledger.book import append, connect, read_entries
from probe.ledger.chain import LedgerDraft
from probe.ledger.metrics import LedgerMetrics
from probe.ledger.patterns import IncidentPatterns
from probe.ledger.plugin import FEATURE, LedgerKeeper, start_ledger
from probe.ledger.settings import PatternSettings
from probe.storage.database import transaction


def test_start_declares_the_ledger_records_each_plan_and_closes_its_writer(
        tmp_path: Path) -> None:
    assert FEATURE.startup == (start_ledger,)
    db = tmp_path / "probe.db"
    config = replace(config_of(endpoint(name="qwen")), storage=StorageSettings(db))
    host = FakeHost(config, plan(config))
    threads = threading.active_count()
    attachment = start_ledger(as_host(host))
    assert [type(c) for c in attachment.collectors] == [LedgerMetrics]
    assert len(attachment.judged) == len(attachment.changed) == 1
    ledger = attachment.judged[0].__self__  # type: ignore[attr-defined]
    assert attachment.changed[0].__self__ is ledger  # type: ignore[attr-defined]
    assert host.restored == [{}], "a new database: nothing kept from before"
    assert list(attachment.status_parts) == ["ledger"]
    assert attachment.observers == () and not attachment.routes
    assert attachment.status_parts["ledger"]()["entries"] == []
    assert attachment.close is not None and attachment.on_plan is not None

    attachment.on_plan(config, host.jobs)  # the first plan: the endpoint is recorded
    attachment.close()
    assert threading.active_count() == threads, "the book's writer thread has stopped"
    with sqlite3.connect(db) as conn:
        entries = read_entries(conn)
    assert [(e.endpoint, e.event) for e in entries] == [("qwen", "appeared")]

    again = FakeHost(config, plan(config))
    restarted = start_ledger(as_host(again))
    try:
        shown = restarted.status_parts["ledger"]()["entries"]
    finally:
        assert restarted.close is not None
        restarted.close()
    assert [(e["endpoint"], e["event"]) for e in shown] == [("qwen", "appeared")]


def test_what_the_last_upkeep_drafts_at_shutdown_is_written(tmp_path: Path) -> None:
    """A pattern that stops holding is drafted by the writer's upkeep; when the draft is
    made in the very last upkeep (the daemon stops right after the pattern watch's clock
    passed the quiet week), its entry is in the ledger once the writer has stopped."""
    db = tmp_path / "probe.db"
    first = incidents(0, 5, 30)  # three incidents: a recurring pattern, said
    said = IncidentPatterns(PatternSettings()).feed(first)
    conn = connect(db)
    with transaction(conn):
        append(conn, [LedgerDraft(e.ts, e.severity, e.endpoint, e.event, e.pattern,
                                  e.evidence) for e in first] + said)
    conn.close()
    now = [T0 + timedelta(days=2)]
    # an hour between batches: after the first upkeeps the writer waits for the stop
    keeper = LedgerKeeper(db, None, PatternSettings(), clock=lambda: now[0],
                          batch_interval_s=3600)
    keeper.planned = True  # the groups are known: the next upkeep loads the ledger
    deadline = time.monotonic() + 10
    while not keeper.patterns.loaded:
        assert time.monotonic() < deadline, "the pattern watch never loaded the ledger"
        time.sleep(0.05)
    now[0] = T0 + timedelta(days=40)  # quiet for more than a week: the pattern ends
    keeper.close()
    conn = connect(db)
    events = [e.event for e in read_entries(conn)]
    conn.close()
    assert events.count("recurring") == 1 and events[-1] == "recurring_ended", events
