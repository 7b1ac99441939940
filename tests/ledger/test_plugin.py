"""The ledger feature's start-up hook, on a fake host: the book's metrics, the judged and
changed listeners, the status page's part and the verdicts kept from before a restart; each
new plan is recorded, and closing stops the book's writer."""

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


def test_start_wires_the_ledger_records_each_plan_and_closes_its_writer(
        tmp_path: Path) -> None:
    assert FEATURE.startup == (start_ledger,)
    db = tmp_path / "probe.db"
    config = replace(config_of(endpoint(name="qwen")), storage=StorageSettings(db))
    host = FakeHost(config, plan(config))
    threads = threading.active_count()
    attachment = start_ledger(as_host(host))
    assert [type(c) for c in host.collectors] == [LedgerMetrics]
    assert len(host.judged) == len(host.changed) == 1
    assert host.judged[0].__self__ is host.changed[0].__self__  # type: ignore[attr-defined]
    assert host.restored == [{}], "a new database: nothing kept from before"
    assert list(host.parts) == ["ledger"] and host.observers == [] and host.routes == {}
    assert host.parts["ledger"]()["entries"] == []
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
        shown = again.parts["ledger"]()["entries"]
    finally:
        assert restarted.close is not None
        restarted.close()
    assert [(e["endpoint"], e["event"]) for e in shown] == [("qwen", "appeared")]
