"""The ledger feature's start-up hook, on a fake host: it declares the book's metrics, the
judged and changed listeners and the status page's part, and restores the verdicts kept from
before a restart; each new plan is recorded, and closing stops the book's writer."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

from fake_host import FakeHost, as_host
from helpers import config_of, endpoint, plan

from probe.config.model import StorageSettings
from probe.ledger.book import read_entries
from probe.ledger.metrics import LedgerMetrics
from probe.ledger.plugin import FEATURE, start_ledger


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
